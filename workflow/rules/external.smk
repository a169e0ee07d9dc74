# External validation (issue 7, item 3): train nEMGNet (and the classical baseline) on every patient of this
# run's cohort, diagnose every patient of each cohort in external.cohorts, one metrics table per run.
# Library: nemg.external (docs/external.md).
#
# results/external/<cohort>/split.tsv                      training / validation patients per seed (no test role)
# results/external/<cohort>/models/ext_s<seed>/            best.pt, curve.tsv, predictions.tsv (validation patients)
# results/external/<cohort>/models_pretrained/ext_s<seed>/ the same from the pretraining, when models/ cannot start there
# results/external/<cohort>/<test>/<model>/                segment and patient predictions of the test cohort
# results/external/<cohort>/<test>/                        per-run metrics, consensus, bootstrap CIs, paired tests
# (<test> = <name>, or <name>.rms / <name>.rmsp for the amplitude-calibrated variants: segments x amplitude_gain.tsv)
# results/external/<cohort>/external_validation.{tsv,html} the table (in the report)
# The test cohort itself is preprocessed under results/<stage>/<test>_for_<cohort>/ with THIS run's settings; the
# calibrated variant has only its own segment store and features (results/{segment,baseline}/<test>.rms_for_<cohort>/).
#
# Settings: EXTERNAL, EXT_* (common.smk, common/settings.smk); EXTERNAL_OUTPUTS is the stage's target.


rule external_split:
    input:
        subjects=cohort_sheet("subjects"),
        segments_index="results/segment/{cohort}/segments_index.tsv",
    output:
        split=f"{XV}split.tsv",
    log:
        "logs/external/{cohort}/split.log",
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        seeds=EXTERNAL["seeds"],
        val_fraction=EXTERNAL["val_fraction"],
    script:
        "../scripts/external_split.py"


rule train_external:
    input:
        segments="results/segment/{cohort}/segments.npy",
        index="results/segment/{cohort}/segments_index.tsv",
        folds=f"{XV}split.tsv",
        # the first weights, as in train_fold, unless the pretraining saw a test cohort (EXT_INIT_WEIGHTS)
        init=EXT_INIT_WEIGHTS or [],
        aux_features=f"{BL}features.npy" if AUX_QEMG else [],  # train.aux_qemg's targets
    output:
        best=f"{XV}models/{{ext_run}}/best.pt",
        curve=f"{XV}models/{{ext_run}}/curve.tsv",
        predictions=f"{XV}models/{{ext_run}}/predictions.tsv",
    log:
        "logs/external/{cohort}/train_{ext_run}.log",
    benchmark:
        "benchmarks/external/{cohort}/train_{ext_run}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: TRAIN_THREADS
    resources:
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
        "../scripts/train_fold.py"  # the same training loop as the cross-validation runs


# The same job from the cross-validation networks' first weights, when train_external's start elsewhere
# (TWO_EXT_STARTS, common/settings.smk): these score the test cohorts the pretraining did not see, and are the bundle.
use rule train_external as train_external_pretrained with:
    input:
        segments="results/segment/{cohort}/segments.npy",
        index="results/segment/{cohort}/segments_index.tsv",
        folds=f"{XV}split.tsv",
        init=INIT_WEIGHTS or [],
        aux_features=f"{BL}features.npy" if AUX_QEMG else [],
    output:
        best=f"{XV}models_pretrained/{{ext_run}}/best.pt",
        curve=f"{XV}models_pretrained/{{ext_run}}/curve.tsv",
        predictions=f"{XV}models_pretrained/{{ext_run}}/predictions.tsv",
    log:
        "logs/external/{cohort}/train_pretrained_{ext_run}.log",
    benchmark:
        "benchmarks/external/{cohort}/train_pretrained_{ext_run}.tsv"
    wildcard_constraints:
        cohort=cohort_regex([COHORT] if TWO_EXT_STARTS else []),


rule predict_external:
    input:
        best=lambda w: f"{ext_networks(w.test)}{w.ext_run}/best.pt".format(cohort=w.cohort),
        segments=test_path("results/segment/{cohort}/segments.npy"),
        index=test_path("results/segment/{cohort}/segments_index.tsv"),
    output:
        predictions=f"{XV}{{test}}/nemgnet/{{ext_run}}_predictions.tsv",
    log:
        "logs/external/{cohort}/{test}_predict_{ext_run}.log",
    benchmark:
        "benchmarks/external/{cohort}/{test}_predict_{ext_run}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1 if TRAIN_ON_GPU else 0,
        mem_mb=8000 if TRAIN_ON_GPU else 2000,
        runtime=60,
    params:
        batch_size=TRAIN_CFG["eval_batch_size"],
        device=TRAIN_CFG["device"],
    script:
        "../scripts/predict_external.py"


rule external_baseline_predictions:
    input:
        train_features="results/baseline/{cohort}/features.npy",
        train_names="results/baseline/{cohort}/feature_names.txt",
        train_index="results/segment/{cohort}/segments_index.tsv",
        test_features=test_path("results/baseline/{cohort}/features.npy"),
        test_names=test_path("results/baseline/{cohort}/feature_names.txt"),
        test_index=test_path("results/segment/{cohort}/segments_index.tsv"),
        split=f"{XV}split.tsv",
    output:
        predictions=f"{XV}{{test}}/{{baseline_model}}/predictions.tsv",
    log:
        "logs/external/{cohort}/{test}_{baseline_model}_predictions.log",
    benchmark:
        "benchmarks/external/{cohort}/{test}_{baseline_model}_predictions.tsv"
    conda:
        "../../envs/plots.yaml"
    threads: lambda wildcards: int(BASELINE_CFG["threads"]) if wildcards.baseline_model == "rf" else 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        classifier=BASELINE_CLF,
        predict_train=EVAL["stage2_fit_on"] == "train",
    script:
        "../scripts/external_baseline_predictions.py"


rule external_vote:
    input:
        predictions=external_arm_predictions,
        extra=external_arm_extra,
        train_subjects=cohort_sheet("subjects"),
        train_recordings=cohort_sheet("recordings"),
        test_subjects=test_path("results/cohort/{cohort}/subjects.tsv", shared=True),
        test_recordings=test_path("results/cohort/{cohort}/recordings.tsv", shared=True),
    output:
        patients=f"{XV}{{test}}/{{arm}}/patient_predictions.tsv",
    log:
        "logs/external/{cohort}/{test}_{arm}_vote.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        methods=EVAL["methods"],
        stage2=STAGE2,
    script:
        "../scripts/external_vote.py"


rule external_gain:
    input:
        train_signals="results/resample/{cohort}/signals.npy",
        train_index="results/resample/{cohort}/signals_index.tsv",
        test_signals=test_path("results/resample/{cohort}/signals.npy", shared=True),
        test_index=test_path("results/resample/{cohort}/signals_index.tsv", shared=True),
    output:
        gain=f"{XV}{{test}}/amplitude_gain.tsv",
    log:
        "logs/external/{cohort}/{test}_gain.log",
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        calibration=lambda wc: EXT_TEST_IDS[wc.test][1],
    script:
        "../scripts/external_gain.py"


rule external_evaluate:
    input:
        patients=expand(f"{XV}{{test}}/{{arm}}/patient_predictions.tsv", arm=EXT_ARMS, allow_missing=True),
        gain=external_gain_file,
    output:
        per_run=f"{XV}{{test}}/per_run_metrics.tsv",
        consensus=f"{XV}{{test}}/patient_consensus.tsv",
        bootstrap=f"{XV}{{test}}/bootstrap_ci.tsv",
        summary=f"{XV}{{test}}/summary.tsv",
        tests=f"{XV}{{test}}/model_tests.tsv",
    log:
        "logs/external/{cohort}/{test}_evaluate.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        arms=EXT_ARMS,
        calibration=lambda wildcards: EXT_TEST_IDS[wildcards.test][1],
        method=EVAL["primary_method"],
        n_boot=EVAL["n_bootstrap"],
        seed=EVAL["seed"],
    script:
        "../scripts/external_evaluate.py"


rule external_table:
    input:
        summaries=expand(f"{XV}{{test}}/summary.tsv", test=EXT_TESTS, allow_missing=True),
        tests=expand(f"{XV}{{test}}/model_tests.tsv", test=EXT_TESTS, allow_missing=True),
    output:
        tsv=f"{XV}external_validation.tsv",
        html=report_item(
            f"{XV}external_validation.html",
            "external_validation",
            "external",
            "Table",
            "external validation table",
            ", ".join(EXT_ARMS),
        ),
    log:
        "logs/external/{cohort}/external_table.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/external_table.py"


rule external:
    input:
        EXTERNAL_OUTPUTS,
