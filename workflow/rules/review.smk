# What a reviewer looks at next (issue 15): training curves, calibration, every patient's probabilities, the
# external confusion matrices and one recording's segment timeline. Library: nemg.review_plots (docs/review.md).
# REVIEW_OUTPUTS is the stage's target.


rule training_curves:
    input:
        curves=expand("results/train/{{cohort}}/{run_id}/curve.tsv", run_id=TRAIN_RUN_IDS),
    output:
        png=report_item(
            f"{FIG}training_curves.png", "training_curves", "training", "Training curves", "training curves", "nEMGNet"
        ),
        pdf=f"{FIG}training_curves.pdf",
        tsv=f"{FIG}training_curves.tsv",
    log:
        "logs/figures/{cohort}/training_curves.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cohort_note=REVIEW_NOTE,
    script:
        "../scripts/training_curves.py"


rule calibration:
    input:
        # nEMGNet first, then the baselines, in params.models order
        consensus=(
            [f"{EV}patient_consensus.tsv"]
            + expand(f"{BL}{{model}}/patient_consensus.tsv", model=REVIEW_BASELINES, allow_missing=True)
        ),
    output:
        png=report_item(
            f"{FIG}calibration.png",
            "calibration",
            "review",
            "Calibration",
            "calibration",
            "nEMGNet and QEMG baselines",
        ),
        pdf=f"{FIG}calibration.pdf",
        bins=f"{FIG}calibration_bins.tsv",
        summary=report_item(
            f"{FIG}calibration_summary.tsv",
            "calibration_summary",
            "review",
            "Calibration",
            "Brier scores and calibration errors",
            "nEMGNet and QEMG baselines",
        ),
    log:
        "logs/figures/{cohort}/calibration.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        models=["nemgnet"] + REVIEW_BASELINES,
        method=EVAL["primary_method"],
        # 5 bins: a cohort of ~60 patients leaves ~10 per bin; finer bins would mostly show noise
        n_bins=5,
        cohort_note=REVIEW_NOTE,
    script:
        "../scripts/calibration.py"


rule patient_probabilities:
    input:
        **({"ratings": RATINGS} if RATINGS else {}),
        consensus=f"{EV}patient_consensus.tsv",
        subjects=cohort_sheet("subjects"),
    output:
        png=report_item(
            f"{FIG}patient_probabilities.png",
            "patient_probabilities",
            "review",
            "Patients",
            "every patient's probabilities",
            "nEMGNet" + (" and physicians" if RATINGS else ""),
        ),
        pdf=f"{FIG}patient_probabilities.pdf",
        tsv=f"{FIG}patient_probabilities.tsv",
    log:
        "logs/figures/{cohort}/patient_probabilities.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        method=EVAL["primary_method"],
        cohort_note=REVIEW_NOTE,
    script:
        "../scripts/patient_probabilities.py"


rule recording_timeline:
    input:
        s4="results/figures/{cohort}/s4_fig_mispredicted.tsv",
        predictions=expand("results/train/{{cohort}}/{run_id}/predictions.tsv", run_id=TRAIN_RUN_IDS),
        index="results/segment/{cohort}/segments_index.tsv",
        signals=resampled("signals.npy"),
        signals_index=resampled("signals_index.tsv"),
    output:
        png=report_item(
            f"{FIG}recording_timeline.png",
            "recording_timeline",
            "explain",
            "Mispredicted patients",
            "recording timeline",
            "nEMGNet",
        ),
        pdf=f"{FIG}recording_timeline.pdf",
        tsv=f"{FIG}recording_timeline.tsv",
    log:
        "logs/figures/{cohort}/recording_timeline.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        fs_hz=EXPLAIN_FS_HZ,
        window=EXPLAIN_WINDOW,
        cohort_note=REVIEW_NOTE,
    script:
        "../scripts/recording_timeline.py"


rule external_confusion:
    input:
        consensus=expand(f"{XV}{{test}}/patient_consensus.tsv", test=EXT_TESTS, allow_missing=True),
    output:
        png=report_item(
            f"{FIG}external_confusion.png",
            "external_confusion",
            "external",
            "Confusion matrices",
            "external confusion matrices",
            ", ".join(EXT_ARMS),
        ),
        pdf=f"{FIG}external_confusion.pdf",
    log:
        "logs/figures/{cohort}/external_confusion.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        tests=EXT_TESTS,
        models=EXT_ARMS,
        method=EVAL["primary_method"],
        cohort=COHORT,
    script:
        "../scripts/external_confusion.py"


rule review:
    input:
        REVIEW_OUTPUTS,
