# What the trained CNNs respond to: Fig 3 (class-maximising inputs), S4 Fig (mispredicted patients' signals),
# S1 Fig (nEMGNet's structure). Library: nemg.explain (numbers), nemg.model_figures (figures).
#
# Each torch step is its own rule (envs/train.yaml has no matplotlib, envs/plots.yaml no torch): the
# optimisation and the layer table write TSVs that the figure rules draw. Needs TRAIN_RUN_IDS / TRAIN_CFG /
# TRAIN_ON_GPU (train.smk) and the evaluation stage's patient_predictions.tsv. EXPLAIN_OUTPUTS is the target.

from nemg.explain import AM_DEFAULTS, select_runs

EXPLAIN_DEFAULTS = {
    "runs": "first_outer",  # first_outer | first_seed | all | [run ids]
    **AM_DEFAULTS,
    "device": None,  # None = train.device
    "method": None,  # stage-2 method whose mispredictions S4 shows; None = evaluate.primary_method
    "fit_on": None,  # None = evaluate.stage2_fit_on
    "n_examples": 3,
    "n_segments": 2,
}
EXPLAIN_CFG = {**EXPLAIN_DEFAULTS, **(config.get("explain") or {})}
_evaluate = config.get("evaluate") or {}
EXPLAIN_RUN_IDS = select_runs(TRAIN_RUN_IDS, EXPLAIN_CFG["runs"])
EXPLAIN_FS_HZ = float(config["preprocess"]["resample"]["rate_hz"])
EXPLAIN_WINDOW = int(round(config["preprocess"]["segment"]["window_s"] * EXPLAIN_FS_HZ))
EXPLAIN_OUTPUTS = expand(
    "results/figures/{cohort}/{name}.{ext}",
    cohort=COHORT,
    name=["fig3_activation_maximization", "s4_fig_mispredicted", "s1_fig_model_structure"],
    ext=["png", "pdf", "tsv"],
)


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
        am={k: EXPLAIN_CFG[k] for k in AM_DEFAULTS},
        fs_hz=EXPLAIN_FS_HZ,
        device=EXPLAIN_CFG["device"] or TRAIN_CFG.get("device", "auto"),
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
        method=EXPLAIN_CFG["method"] or _evaluate.get("primary_method") or "logreg",
        fit_on=EXPLAIN_CFG["fit_on"] or _evaluate.get("stage2_fit_on"),
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
