# What the trained CNNs respond to: Fig 3 (class-maximising inputs), S4 Fig (mispredicted patients' signals),
# S1 Fig (nEMGNet's structure). Library: nemg.explain (numbers), nemg.model_figures (figures).
#
# Each torch step is its own rule (envs/train.yaml has no matplotlib, envs/plots.yaml no torch): the
# optimisation and the layer table write TSVs that the figure rules draw. Settings: EXPLAIN_* in
# common/settings.smk; EXPLAIN_OUTPUTS is the target.


rule fig3_optimize_inputs:
    input:
        checkpoints=expand("results/train/{{cohort}}/{run_id}/best.pt", run_id=EXPLAIN_RUN_IDS),
        segments="results/segment/{cohort}/segments.npy",
        index="results/segment/{cohort}/segments_index.tsv",
    output:
        signals="results/figures/{cohort}/fig3_signals.tsv",
        summary=report_item(
            "results/figures/{cohort}/fig3_activation_maximization.tsv",
            "fig3_summary",
            "explain",
            "Fig 3",
            "Fig 3 summary",
            "nEMGNet",
        ),
    log:
        "logs/figures/{cohort}/fig3_optimize_inputs.log",
    benchmark:
        "benchmarks/figures/{cohort}/fig3_optimize_inputs.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        gpu=1 if TRAIN_ON_GPU else 0,
        mem_mb=8000 if TRAIN_ON_GPU else 2000,
        runtime=30,
    params:
        am=EXPLAIN_AM,
        fs_hz=EXPLAIN_FS_HZ,
        device=EXPLAIN_DEVICE,
    script:
        "../scripts/fig3_optimize_inputs.py"


rule fig3_activation_maximization:
    input:
        signals="results/figures/{cohort}/fig3_signals.tsv",
        summary="results/figures/{cohort}/fig3_activation_maximization.tsv",
    output:
        png=report_item(
            "results/figures/{cohort}/fig3_activation_maximization.png",
            "fig3_activation_maximization",
            "explain",
            "Fig 3",
            "Fig 3",
            "nEMGNet",
        ),
        pdf="results/figures/{cohort}/fig3_activation_maximization.pdf",
    log:
        "logs/figures/{cohort}/fig3_activation_maximization.log",
    benchmark:
        "benchmarks/figures/{cohort}/fig3_activation_maximization.tsv"
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=", ".join(EXPLAIN_RUN_IDS),  # for the caption
        objective=EXPLAIN_AM["objective"],  # for the caption
    script:
        "../scripts/fig3_activation_maximization.py"


rule s4_fig_mispredicted:
    input:
        patients="results/evaluate/{cohort}/patient_predictions.tsv",
        predictions=expand("results/train/{{cohort}}/{run_id}/predictions.tsv", run_id=TRAIN_RUN_IDS),
        segments="results/segment/{cohort}/segments.npy",
        index="results/segment/{cohort}/segments_index.tsv",
    output:
        png=report_item(
            "results/figures/{cohort}/s4_fig_mispredicted.png",
            "s4_fig_mispredicted",
            "explain",
            "Mispredicted patients",
            "S4 Fig",
            "nEMGNet",
        ),
        pdf="results/figures/{cohort}/s4_fig_mispredicted.pdf",
        tsv="results/figures/{cohort}/s4_fig_mispredicted.tsv",
    log:
        "logs/figures/{cohort}/s4_fig_mispredicted.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        method=EXPLAIN_METHOD,
        fit_on=EXPLAIN_FIT_ON,
        n_examples=EXPLAIN_CFG["n_examples"],
        n_segments=EXPLAIN_CFG["n_segments"],
        fs_hz=EXPLAIN_FS_HZ,
    script:
        "../scripts/s4_fig_mispredicted.py"


rule s1_model_structure_table:
    output:
        report_item(
            "results/figures/{cohort}/s1_fig_model_structure.tsv",
            "s1_fig_model_structure_table",
            "training",
            "Model structure",
            "S1 Fig table",
            "nEMGNet",
        ),
    log:
        "logs/figures/{cohort}/s1_model_structure_table.log",
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        model=MODEL_CFG,
        n_samples=EXPLAIN_WINDOW,
    script:
        "../scripts/s1_model_structure_table.py"


rule s1_fig_model_structure:
    input:
        table="results/figures/{cohort}/s1_fig_model_structure.tsv",
    output:
        png=report_item(
            "results/figures/{cohort}/s1_fig_model_structure.png",
            "s1_fig_model_structure",
            "training",
            "Model structure",
            "S1 Fig",
            "nEMGNet",
        ),
        pdf="results/figures/{cohort}/s1_fig_model_structure.pdf",
    log:
        "logs/figures/{cohort}/s1_fig_model_structure.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/s1_fig_model_structure.py"


rule explain:
    input:
        EXPLAIN_OUTPUTS,
