# The run manifest (results/manifest/<cohort>/): the merged config as run, the code's git commit and whether its
# tree was dirty, package versions, and the SHA-256 and size of every output a reviewer audits, so that
# `nemg verify results/manifest/<cohort>` can show the files on disk are the ones the tables came from.
# Library: nemg.manifest. The last job of `all`: its inputs are every other target and intermediate of the run.
#
# The file list comes from run_outputs() (common.smk).


rule manifest:
    input:
        lambda wildcards: run_outputs(MANIFEST_OUTPUTS),  # at DAG time: `rules.all` exists only then
    output:
        files=f"{MANIFEST}files.tsv",
        run=f"{MANIFEST}run.yaml",
        config=f"{MANIFEST}config.yaml",
    log:
        "logs/manifest/{cohort}/manifest.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        repo=str(REPO),
        # the job's environment may lack Snakemake (--sdm conda); the running Snakemake is the one that matters
        versions={"snakemake": SNAKEMAKE_VERSION},
    script:
        "../scripts/manifest.py"
