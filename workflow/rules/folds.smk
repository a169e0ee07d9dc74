# Patient-level, diagnosis-stratified folds (nested outer x inner, repeated k-fold) for several seeds, and the
# leakage gate every later stage depends on. Library: nemg.folds.


rule make_folds:
    input:
        segments_index="results/segment/{cohort}/segments_index.tsv",
        subjects=cohort_sheet("subjects"),
    output:
        folds="results/folds/{cohort}/folds.tsv",
        summary=report_item(
            "results/folds/{cohort}/folds_summary.tsv",
            "folds",
            "cohort",
            "Folds",
            "folds summary",
        ),
    log:
        "logs/folds/{cohort}/make_folds.log",
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        folds=CFG["folds"],
    script:
        "../scripts/make_folds.py"


rule check_leakage:
    input:
        folds="results/folds/{cohort}/folds.tsv",
        segments_index="results/segment/{cohort}/segments_index.tsv",
    output:
        "results/folds/{cohort}/leakage_check.txt",
    log:
        "logs/folds/{cohort}/check_leakage.log",
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/check_leakage.py"


rule folds:
    input:
        expand(
            ["results/folds/{cohort}/folds.tsv", "results/folds/{cohort}/leakage_check.txt"],
            cohort=COHORT,
        ),
