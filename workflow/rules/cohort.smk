# Cohort stage: whatever the source, it ends in results/cohort/<cohort>/{subjects,recordings}.tsv.
# One rule per source; each is constrained to the cohorts of its source (this run's cohort and any external
# test cohort, see common.smk), so a run can mix e.g. a public training cohort with your own test sheets.


rule simulate_cohort:
    output:
        subjects=cohort_sheet("subjects"),
        recordings=cohort_sheet("recordings"),
        ratings=cohort_sheet("ratings"),
        signals=directory("results/cohort/{cohort}/signals"),
    log:
        "logs/cohort/{cohort}/simulate_cohort.log",
    benchmark:
        "benchmarks/cohort/{cohort}/simulate_cohort.tsv"
    wildcard_constraints:
        cohort=cohort_regex(cohorts_from("simulated")),
    priority: pretrain_priority
    conda:
        "../../envs/preprocess.yaml"
    threads: 4
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        sim=lambda wildcards: simulation_params(wildcards.cohort),
        seed=lambda wildcards: COHORTS[wildcards.cohort]["seed"],
        keep=lambda wildcards: COHORTS[wildcards.cohort]["subjects"],
        where=lambda wildcards: COHORTS[wildcards.cohort]["recordings_where"],
    script:
        "../scripts/simulate_cohort.py"


rule import_cohort:
    output:
        subjects=cohort_sheet("subjects"),
        recordings=cohort_sheet("recordings"),
    log:
        "logs/cohort/{cohort}/import_cohort.log",
    wildcard_constraints:
        cohort=cohort_regex(cohorts_from("public")),
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        dataset=lambda wildcards: COHORTS[wildcards.cohort]["public"]["dataset"],
        source_dir=lambda wildcards: public_source_dir(wildcards.cohort),
        keep=lambda wildcards: COHORTS[wildcards.cohort]["subjects"],
        where=lambda wildcards: COHORTS[wildcards.cohort]["recordings_where"],
    script:
        "../scripts/import_cohort.py"


rule register_sheets:
    input:
        subjects=user_sheet("subjects"),
        recordings=user_sheet("recordings"),
    output:
        subjects=cohort_sheet("subjects"),
        recordings=cohort_sheet("recordings"),
    log:
        "logs/cohort/{cohort}/register_sheets.log",
    wildcard_constraints:
        cohort=cohort_regex(cohorts_from("sheets")),
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        keep=lambda wildcards: COHORTS[wildcards.cohort]["subjects"],
        where=lambda wildcards: COHORTS[wildcards.cohort]["recordings_where"],
    script:
        "../scripts/register_sheets.py"
