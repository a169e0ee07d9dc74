# Training: one nEMGNet per run of the folds table (scheme x seed x outer fold x inner fold).
# Library: nemg.train.train_run (loop, early stopping, resume), nemg.model (nEMGNet), nemg.data (memmap batches).
#
# Run ids come from the `folds:` config through nemg.folds.run_id, the function that writes them into
# folds.tsv, so the DAG is known before the folds table exists (no checkpoint needed).
# A killed job leaves results/train/<cohort>/<run_id>/last.pt (not a declared output, so Snakemake keeps it);
# rerunning the job resumes from it. TRAIN_OUTPUTS (every run's predictions) is the stage's target.

import shutil

from nemg.folds import run_id as fold_run_id, run_id_regex

TRAIN_CFG = dict(config.get("train") or {})  # nemg.train.TRAIN_DEFAULTS fill the gaps
MODEL_CFG = dict(config.get("model") or {})  # preset (paper | small | cpu), width, head_width
_device = str(TRAIN_CFG.get("device", "auto"))
# Whether training jobs run on a GPU: train.device, or for `auto` whether this machine has an NVIDIA driver.
TRAIN_ON_GPU = _device.startswith("cuda") or (_device == "auto" and shutil.which("nvidia-smi") is not None)
# CPU threads per job: on a CPU, two 1-thread jobs beat one 2-thread job on 2 shared cores (docs/training.md);
# on a GPU the threads only feed batches.
TRAIN_THREADS = int(TRAIN_CFG.get("num_threads") or (4 if TRAIN_ON_GPU else 1))
_folds = config["folds"]
TRAIN_RUN_IDS = [
    fold_run_id("nested", seed, 0, o, i)
    for seed in _folds["seeds"]
    if "nested" in _folds["schemes"]
    for o in range(_folds["nested"]["outer"])
    for i in range(_folds["nested"]["inner"])
] + [
    fold_run_id("repeated_kfold", seed, r, o, -1)
    for seed in _folds["seeds"]
    if "repeated_kfold" in _folds["schemes"]
    for r in range(_folds["repeated_kfold"]["repeats"])
    for o in range(_folds["repeated_kfold"]["k"])
]
TRAIN_OUTPUTS = expand("results/train/{cohort}/{run_id}/predictions.tsv", cohort=COHORT, run_id=TRAIN_RUN_IDS)


wildcard_constraints:
    run_id=run_id_regex("nested", "repeated_kfold"),


rule train_fold:
    input:
        segments="results/segment/{cohort}/segments.npy",
        index="results/segment/{cohort}/segments_index.tsv",
        folds="results/folds/{cohort}/folds.tsv",
        leakage_check="results/folds/{cohort}/leakage_check.txt",  # the gate: no training on leaky folds
    output:
        best="results/train/{cohort}/{run_id}/best.pt",
        curve="results/train/{cohort}/{run_id}/curve.tsv",
        predictions="results/train/{cohort}/{run_id}/predictions.tsv",
    log:
        "logs/train/{cohort}/{run_id}.log",
    benchmark:
        "benchmarks/train/{cohort}/{run_id}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: TRAIN_THREADS
    resources:
        # one GPU per job; the profile caps the total at the machine's GPUs (profiles/default: gpu=1).
        # 0 on a CPU-only machine, so CPU jobs share the cores instead of queueing for a GPU.
        gpu=1 if TRAIN_ON_GPU else 0,
        mem_mb=16000 if TRAIN_ON_GPU else 2000,
        runtime=600 if TRAIN_ON_GPU else 30,
    params:
        model=MODEL_CFG,
        train=lambda wildcards, threads: {**TRAIN_CFG, "num_threads": threads},
    script:
        "../scripts/train_fold.py"


rule train:
    input:
        TRAIN_OUTPUTS,
