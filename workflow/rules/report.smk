# results/README.<cohort>.md: every table and figure of the study mapped to its file, one per cohort so that runs
# of several configs in one folder keep their own (snakemake --report builds the navigable HTML report from the
# report() outputs of every stage, behind the landing page workflow/report/workflow.rst). The file map
# (RESULTS_ITEMS) and the landing page's context are in common/outputs.smk.


rule results_readme:
    input:
        [f for it in RESULTS_ITEMS for f in it["files"]],
    output:
        readme=RESULTS_README,
    log:
        f"logs/report/{COHORT}/results_readme.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        entries=RESULTS_ITEMS,
        note=PHYSICIAN_NOTE,
    script:
        "../scripts/results_readme.py"
