# Preprocessing: trim edge artifacts -> resample to one rate -> cut into windows (+ S1 table).
# Library: nemg.trim, nemg.resample, nemg.segment, nemg.tables, nemg.qc_plots.


rule trim:
    input:
        subjects=cohort_sheet("subjects"),
        recordings=cohort_sheet("recordings"),
    output:
        signals="results/trim/{cohort}/signals.npy",
        index="results/trim/{cohort}/signals_index.tsv",
        qc=report_item(
            "results/trim/{cohort}/trim_qc.tsv",
            "trim_qc_table",
            "cohort",
            "Trimming",
            "trimming QC table",
        ),
    log:
        "logs/trim/{cohort}/trim.log",
    benchmark:
        "benchmarks/trim/{cohort}/trim.tsv"
    priority: pretrain_priority
    conda:
        "../../envs/preprocess.yaml"
    threads: 4
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        trim=trim_params(),
    script:
        "../scripts/trim.py"


rule trim_qc_figure:
    input:
        qc="results/trim/{cohort}/trim_qc.tsv",
        subjects=cohort_sheet("subjects"),
        recordings=cohort_sheet("recordings"),
    output:
        report_item(
            "results/trim/{cohort}/trim_qc.png",
            "trim_qc",
            "cohort",
            "Trimming",
            "trimming QC figure",
        ),
    log:
        "logs/trim/{cohort}/trim_qc_figure.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/trim_qc_figure.py"


rule resample:
    input:
        signals="results/trim/{cohort}/signals.npy",
        index="results/trim/{cohort}/signals_index.tsv",
    output:
        signals="results/resample/{cohort}/signals.npy",
        index="results/resample/{cohort}/signals_index.tsv",
    log:
        "logs/resample/{cohort}/resample.log",
    benchmark:
        "benchmarks/resample/{cohort}/resample.tsv"
    priority: pretrain_priority
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        rate_hz=CFG["preprocess"]["resample"]["rate_hz"],
        method=CFG["preprocess"]["resample"]["method"],
    script:
        "../scripts/resample.py"


rule segment:
    input:
        signals=resampled("signals.npy"),  # results/resample/{cohort}/ (an external variant may share its twin's)
        index=resampled("signals_index.tsv"),
        gain=amplitude_gain_file,  # only for amplitude-calibrated external test cohorts (external.smk)
    output:
        segments="results/segment/{cohort}/segments.npy",
        index="results/segment/{cohort}/segments_index.tsv",
        s1=report_item(
            "results/segment/{cohort}/s1_table.tsv",
            "s1_table",
            "cohort",
            "Cohort",
            "S1 Table",
        ),
    log:
        "logs/segment/{cohort}/segment.log",
    benchmark:
        "benchmarks/segment/{cohort}/segment.tsv"
    priority: pretrain_priority
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        window_s=CFG["preprocess"]["segment"]["window_s"],
        hop_s=CFG["preprocess"]["segment"]["hop_s"],
    script:
        "../scripts/segment.py"


# One signal under two patients (a file copied under another name) passes the sheets and every patient-level
# split; its windows are identical. The votes of both models wait for this gate, so no table is made from such a
# store; training does not, so that a finished run does not retrain when the check is added.
rule check_shared_signals:
    input:
        segments="results/segment/{cohort}/segments.npy",
        index="results/segment/{cohort}/segments_index.tsv",
    output:
        "results/segment/{cohort}/shared_signals_check.txt",
    log:
        "logs/segment/{cohort}/check_shared_signals.log",
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/check_shared_signals.py"


rule preprocess:
    input:
        expand(
            [
                "results/segment/{cohort}/segments.npy",
                "results/segment/{cohort}/s1_table.tsv",
                "results/trim/{cohort}/trim_qc.png",
            ],
            cohort=COHORT,
        ),
