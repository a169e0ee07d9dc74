# Evaluation: divide-and-vote per run, metrics, statistics, and the study's tables and figures.
# Library: nemg.vote, nemg.evaluate, nemg.metrics, nemg.stats, nemg.physicians, nemg.plots.
# The physician arm (PHYSICIAN_OUTPUTS) exists only with a ratings sheet (RATINGS, common/settings.smk).


rule vote:
    input:
        predictions=TRAIN_OUTPUTS,
        subjects=cohort_sheet("subjects"),
        recordings=cohort_sheet("recordings"),
        shared_signals="results/segment/{cohort}/shared_signals_check.txt",  # no patient's signal under another's
    output:
        patients=f"{EV}patient_predictions.tsv",
    log:
        "logs/evaluate/{cohort}/vote.log",
    benchmark:
        "benchmarks/evaluate/{cohort}/vote.tsv"
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        methods=EVAL["methods"],
        stage2=STAGE2,
    script:
        "../scripts/vote.py"


rule evaluate:
    input:
        **ratings_inputs(),
        patients=f"{EV}patient_predictions.tsv",
        folds="results/folds/{cohort}/folds.tsv",
        subjects=cohort_sheet("subjects"),
    output:
        **PHYSICIAN_OUTPUTS,
        per_run=f"{EV}per_run_metrics.tsv",
        consensus=f"{EV}patient_consensus.tsv",
        bootstrap=f"{EV}bootstrap_ci.tsv",
        table2=f"{EV}table2.tsv",
        table2_html=report_item(f"{EV}table2.html", "table2", "diagnosis", "Tables", "Table 2", "nEMGNet"),
        s2_table=f"{EV}s2_table.tsv",
        s2_table_html=report_item(f"{EV}s2_table.html", "s2_table", "diagnosis", "Tables", "S2 Table", "nEMGNet"),
        per_class=f"{EV}per_class_correct.tsv",
        per_class_html=report_item(
            f"{EV}per_class_correct.html",
            "per_class_correct",
            "diagnosis",
            "Tables",
            "per-class correct ratio",
            "nEMGNet",
        ),
        failures=f"{EV}failure_analysis.tsv",
        failure_summary=f"{EV}failure_summary.tsv",
        failure_summary_html=report_item(
            f"{EV}failure_summary.html", "failure_summary", "diagnosis", "Tables", "failure analysis", "nEMGNet"
        ),
    log:
        "logs/evaluate/{cohort}/evaluate.log",
    benchmark:
        "benchmarks/evaluate/{cohort}/evaluate.tsv"
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        method=EVAL["primary_method"],
        n_boot=EVAL["n_bootstrap"],
        seed=EVAL["seed"],
        physician_note=PHYSICIAN_NOTE,
    script:
        "../scripts/evaluate.py"


rule table1:
    input:
        subjects=cohort_sheet("subjects"),
    output:
        tsv=f"{EV}table1.tsv",
        html=report_item(f"{EV}table1.html", "table1", "cohort", "Cohort", "Table 1"),
    log:
        "logs/evaluate/{cohort}/table1.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        note="Subjects of a simulated cohort." if SOURCE == "simulated" else "",
    script:
        "../scripts/table1.py"


rule evaluation_figures:
    input:
        **ratings_inputs(),
        consensus=f"{EV}patient_consensus.tsv",
        subjects=cohort_sheet("subjects"),
    output:
        fig1_png=report_item(f"{FIG}fig1_roc_pr.png", "fig1", "diagnosis", "Figures", "Fig 1", "nEMGNet"),
        fig1_pdf=f"{FIG}fig1_roc_pr.pdf",
        s2_fig_png=report_item(
            f"{FIG}s2_fig_roc_pr_location.png", "s2_fig", "diagnosis", "Figures", "S2 Fig", "nEMGNet"
        ),
        s2_fig_pdf=f"{FIG}s2_fig_roc_pr_location.pdf",
        fig2_png=report_item(f"{FIG}fig2_confusion.png", "fig2", "diagnosis", "Figures", "Fig 2", "nEMGNet"),
        fig2_pdf=f"{FIG}fig2_confusion.pdf",
        s3_fig_png=report_item(
            f"{FIG}s3_fig_confusion_location.png", "s3_fig", "diagnosis", "Figures", "S3 Fig", "nEMGNet"
        ),
        s3_fig_pdf=f"{FIG}s3_fig_confusion_location.pdf",
    log:
        "logs/evaluate/{cohort}/evaluation_figures.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        method=EVAL["primary_method"],
        cohort_note=f"cohort {COHORT}" + (", simulated physicians" if PHYSICIAN_NOTE else ""),
    script:
        "../scripts/evaluation_figures.py"


rule evaluate_all:
    input:
        EVALUATE_OUTPUTS,
