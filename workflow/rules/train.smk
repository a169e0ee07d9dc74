# Training: one nEMGNet per run of the folds table (scheme x seed x outer fold x inner fold).
# Library: nemg.train.train_run (loop, early stopping, resume), nemg.model (nEMGNet), nemg.data (memmap batches).
# Run ids (TRAIN_RUN_IDS), threads and GPU use come from common/settings.smk; TRAIN_OUTPUTS (every run's
# predictions, common/outputs.smk) is the stage's target.
# With pretrain.enabled every run starts from results/pretrain/<cohort>/best.pt: one network trained on the
# simulated cohort results/<stage>/pretrain_for_<cohort>/ (simulated and preprocessed by the usual rules) with
# pretrain.val_fraction of its patients per class for early stopping; or on pretrain.cohort's real cohort,
# which with pretrain.simulated_first itself starts from results/pretrain/<cohort>/simulated/best.pt (the same
# rules on the simulated cohort).


rule pretrain_split:
    input:
        subjects=f"results/cohort/{PRETRAIN_COHORT}/subjects.tsv",
        segments_index=f"results/segment/{PRETRAIN_COHORT}/segments_index.tsv",
    output:
        split="results/pretrain/{cohort}/split.tsv",
    log:
        "logs/pretrain/{cohort}/split.log",
    wildcard_constraints:
        cohort=cohort_regex([COHORT] if PRETRAIN_COHORT else []),
    priority: PRETRAIN_PRIORITY
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        seeds=[PRETRAIN["seed"]],
        val_fraction=PRETRAIN["val_fraction"],
    script:
        "../scripts/external_split.py"  # the same stratified patient split as external validation's


rule pretrain:
    input:
        segments=f"results/segment/{PRETRAIN_COHORT}/segments.npy",
        index=f"results/segment/{PRETRAIN_COHORT}/segments_index.tsv",
        folds="results/pretrain/{cohort}/split.tsv",
        init=PRETRAIN_SIM_BEST if PRETRAIN_SIM_COHORT else [],  # the simulated first stage (simulated_first)
        # train.aux_qemg's targets: the QEMG features of the store this job trains on
        aux_features=f"results/baseline/{PRETRAIN_COHORT}/features.npy" if PRETRAIN_AUX_QEMG else [],
    output:
        best=PRETRAIN_BEST,
        curve=report_item(
            "results/pretrain/{cohort}/curve.tsv",
            "pretrain_curve",
            "training",
            "Pretraining",
            "pretraining curve",
            "nEMGNet",
        ),
        predictions="results/pretrain/{cohort}/predictions.tsv",
    log:
        "logs/pretrain/{cohort}/pretrain.log",
    benchmark:
        "benchmarks/pretrain/{cohort}/pretrain.tsv"
    wildcard_constraints:
        cohort=cohort_regex([COHORT] if PRETRAIN_COHORT else []),
    priority: PRETRAIN_PRIORITY
    conda:
        "../../envs/train.yaml"
    # one thread on a CPU like every training job: the same weights whatever --cores (float sums are ordered
    # by the thread count)
    threads: TRAIN_THREADS
    resources:
        gpu=1 if TRAIN_ON_GPU else 0,
        mem_mb=16000 if TRAIN_ON_GPU else 2000,
        runtime=600 if TRAIN_ON_GPU else 30,
    params:
        model=MODEL_CFG,
        train=PRETRAIN_TRAIN,
        run_id=PRETRAIN_RUN,
    script:
        "../scripts/train_fold.py"


# The first stage of a two-stage pretraining: the same two rules on the simulated cohort, from random weights.
use rule pretrain_split as pretrain_simulated_split with:
    input:
        subjects=f"results/cohort/{PRETRAIN_SIM_COHORT}/subjects.tsv",
        segments_index=f"results/segment/{PRETRAIN_SIM_COHORT}/segments_index.tsv",
    output:
        split="results/pretrain/{cohort}/simulated/split.tsv",
    log:
        "logs/pretrain/{cohort}/simulated/split.log",
    wildcard_constraints:
        cohort=cohort_regex([COHORT] if PRETRAIN_SIM_COHORT else []),


use rule pretrain as pretrain_simulated with:
    input:
        segments=f"results/segment/{PRETRAIN_SIM_COHORT}/segments.npy",
        index=f"results/segment/{PRETRAIN_SIM_COHORT}/segments_index.tsv",
        folds="results/pretrain/{cohort}/simulated/split.tsv",
        aux_features=f"results/baseline/{PRETRAIN_SIM_COHORT}/features.npy" if PRETRAIN_AUX_QEMG else [],
    output:
        best=PRETRAIN_SIM_BEST,
        curve=report_item(
            "results/pretrain/{cohort}/simulated/curve.tsv",
            "pretrain_simulated_curve",
            "training",
            "Pretraining",
            "pretraining curve, simulated first stage",
            "nEMGNet",
        ),
        predictions="results/pretrain/{cohort}/simulated/predictions.tsv",
    log:
        "logs/pretrain/{cohort}/simulated/pretrain.log",
    benchmark:
        "benchmarks/pretrain/{cohort}/simulated/pretrain.tsv"
    wildcard_constraints:
        cohort=cohort_regex([COHORT] if PRETRAIN_SIM_COHORT else []),


rule train_fold:
    input:
        segments="results/segment/{cohort}/segments.npy",
        index="results/segment/{cohort}/segments_index.tsv",
        folds="results/folds/{cohort}/folds.tsv",
        leakage_check="results/folds/{cohort}/leakage_check.txt",  # the gate: no training on leaky folds
        init=INIT_WEIGHTS or [],  # the first weights: pretraining's network, train.init_from's, or none
        aux_features=f"{BL}features.npy" if AUX_QEMG else [],  # train.aux_qemg's targets
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
