# Training: one nEMGNet per run of the folds table (scheme x seed x outer fold x inner fold).
# Library: nemg.train.train_run (loop, early stopping, resume), nemg.model (nEMGNet), nemg.data (memmap batches).
# Run ids (TRAIN_RUN_IDS), threads and GPU use come from common/settings.smk; TRAIN_OUTPUTS (every run's
# predictions, common/outputs.smk) is the stage's target.


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
        # a plain value, not a function of threads: Snakemake records only such params, and its params
        # trigger must see the train: section, or a changed recipe would keep the old networks. The runtime
        # keys (nemg.config.TRAIN_RUNTIME_KEYS) are left out: the script reads them from the config
        train=TRAIN_LEARN,
    script:
        "../scripts/train_fold.py"


rule train:
    input:
        TRAIN_OUTPUTS,
