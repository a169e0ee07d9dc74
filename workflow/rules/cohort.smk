# Cohort stage: whatever the source, it ends in results/cohort/<cohort>/{subjects,recordings}.tsv.
# Exactly one of these rules exists per run, chosen by config["cohort"]["source"].

if SOURCE == "simulated":

    rule simulate_cohort:
        output:
            subjects=cohort_sheet("subjects"),
            recordings=cohort_sheet("recordings"),
            ratings=cohort_sheet("ratings"),
            signals=directory("results/cohort/{cohort}/signals"),
        params:
            sim=simulation_params(),
            seed=config["cohort"]["seed"],
            keep=config["cohort"]["subjects"],
        log:
            "logs/cohort/{cohort}/simulate_cohort.log",
        benchmark:
            "benchmarks/cohort/{cohort}/simulate_cohort.tsv"
        threads: 4
        resources:
            mem_mb=4000,
            runtime=60,
        conda:
            "../../envs/preprocess.yaml"
        script:
            "../scripts/simulate_cohort.py"

elif SOURCE == "public":

    rule import_cohort:
        output:
            subjects=cohort_sheet("subjects"),
            recordings=cohort_sheet("recordings"),
        params:
            dataset=config["cohort"]["public"]["dataset"],
            source_dir=public_source_dir(),
            keep=config["cohort"]["subjects"],
        log:
            "logs/cohort/{cohort}/import_cohort.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        conda:
            "../../envs/preprocess.yaml"
        script:
            "../scripts/import_cohort.py"

else:

    rule register_sheets:
        input:
            subjects=user_sheet("subjects"),
            recordings=user_sheet("recordings"),
        output:
            subjects=cohort_sheet("subjects"),
            recordings=cohort_sheet("recordings"),
        params:
            keep=config["cohort"]["subjects"],
        log:
            "logs/cohort/{cohort}/register_sheets.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        conda:
            "../../envs/preprocess.yaml"
        script:
            "../scripts/register_sheets.py"
