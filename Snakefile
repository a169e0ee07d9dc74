# nemg: needle-EMG diagnosis (normal / myopathy / neuropathy) -- the whole pipeline on one screen.
#
# Output-path conventions (every stage, every cohort):
#   results/<stage>/<cohort>/...   artifacts; <cohort> is config["cohort"]["name"]
#   logs/<stage>/<cohort>/...      one log per job (stderr of the rule's script)
#   benchmarks/<stage>/<cohort>... runtime and memory of the heavy jobs
# Stages: cohort (sample sheets) -> trim -> resample -> segment -> folds -> train -> evaluate (+ explain,
# baseline, external validation on other cohorts: results/external/<cohort>/, review figures; the model
# bundle for new patients: results/model/<cohort>/, target `model`).
# Run:  snakemake --cores all                          (default: simulated cohort, config.yaml)
#       snakemake --cores all --configfile configs/n2001.yaml    (a named alternative on top of config.yaml)

import os

from snakemake.utils import min_version

min_version("9.0")


# Snakemake's own message for a broken config.yaml names neither the file nor the line; read it first.
# (Files given with --configfile are read by Snakemake's command line before this file runs.)
from nemg.config import ConfigError, read_config_file

try:
    read_config_file(os.path.join(workflow.basedir, "config.yaml"))
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None


configfile: os.path.join(workflow.basedir, "config.yaml")


include: "workflow/rules/common.smk"
##### cohort: simulated, public or your own sample sheets #####
include: "workflow/rules/cohort.smk"
##### preprocessing: trim artifacts, resample, segment #####
include: "workflow/rules/preprocess.smk"
##### patient-level folds and the leakage gate #####
include: "workflow/rules/folds.smk"
##### one nEMGNet per run of the folds table #####
include: "workflow/rules/train.smk"
##### divide-and-vote, metrics, statistics, tables and figures #####
include: "workflow/rules/evaluate.smk"
##### model-centred figures: Fig 3 (activation maximisation), S4 Fig, S1 Fig #####
include: "workflow/rules/explain.smk"
##### classical quantitative-EMG baseline: same folds, same divide-and-vote #####
include: "workflow/rules/baseline.smk"
##### external validation: train on every patient here, diagnose another cohort #####
include: "workflow/rules/external.smk"
##### the model bundle: the external ensemble + stage 2 + model card, for `nemg predict` #####
include: "workflow/rules/model.smk"
##### what a reviewer looks at next: training curves, calibration, patients, external confusion, timelines #####
include: "workflow/rules/review.smk"
##### results/README.<cohort>.md and the report's landing page (snakemake --report) #####
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


##### run manifest: config, commit, versions, SHA-256 of every output (nemg verify) #####
include: "workflow/rules/manifest.smk"


# Jobs that take about a second (most of it Python start-up) and the targets that run nothing: on a cluster they
# run beside Snakemake instead of each waiting in the queue for a node.
localrules:
    all,
    preprocess,
    folds,
    train,
    evaluate_all,
    explain,
    baseline,
    external,
    import_cohort,
    register_sheets,
    make_folds,
    check_leakage,
    table1,
    model_comparison,
    external_table,
    results_readme,


rule all:
    default_target: True
    input:
        final_outputs(),
        # external.only: an inference-only run (configs/emgdb.yaml) skips this cohort's cross-validation
        [] if EXTERNAL["only"] else [TRAIN_OUTPUTS, EVALUATE_OUTPUTS, EXPLAIN_OUTPUTS, BASELINE_OUTPUTS],
        EXTERNAL_OUTPUTS,
        REVIEW_OUTPUTS,
        RESULTS_README,
        MANIFEST_OUTPUTS,  # last: it hashes everything above
