# Classical quantitative-EMG baseline (issue 7, item 2): interference-pattern, spectral and MUAP-level features
# per segment, logistic regression and random forest per run of the SAME folds table, the SAME divide-and-vote
# (nemg.evaluate.patient_predictions with evaluate.methods / stage2_fit_on / seed), and a Table 2-style
# comparison with nEMGNet. Library: nemg.features, nemg.baseline (docs/baseline.md).
#
# Settings: BASELINE_* in common/settings.smk (defaults: the schema's `baseline:` section); BASELINE_OUTPUTS is
# the stage's target.


rule baseline_features:
    input:
        segments="results/segment/{cohort}/segments.npy",
        index="results/segment/{cohort}/segments_index.tsv",
        signals_index=resampled("signals_index.tsv"),  # the sampling rate of the segments
    output:
        features=f"{BL}features.npy",
        names=f"{BL}feature_names.txt",
    log:
        "logs/baseline/{cohort}/features.log",
    benchmark:
        "benchmarks/baseline/{cohort}/features.tsv"
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        features=BASELINE_FEATURES,
    script:
        "../scripts/baseline_features.py"


rule baseline_predictions:
    input:
        features=f"{BL}features.npy",
        names=f"{BL}feature_names.txt",
        index="results/segment/{cohort}/segments_index.tsv",
        folds="results/folds/{cohort}/folds.tsv",
        leakage_check="results/folds/{cohort}/leakage_check.txt",  # the same gate as training
        shared_signals="results/segment/{cohort}/shared_signals_check.txt",  # and as the network's vote
    output:
        predictions=f"{BL}{{baseline_model}}/predictions.tsv",
        timing=f"{BL}{{baseline_model}}/fit_times.tsv",
    log:
        "logs/baseline/{cohort}/{baseline_model}_predictions.log",
    benchmark:
        "benchmarks/baseline/{cohort}/{baseline_model}_predictions.tsv"
    conda:
        "../../envs/plots.yaml"
    threads: lambda wildcards: int(BASELINE_CFG["threads"]) if wildcards.baseline_model == "rf" else 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        classifier=BASELINE_CLF,
        # the stage-2 fit on training patients needs their scores too, as train.predict_train for the CNN
        predict_train=EVAL["stage2_fit_on"] == "train",
    script:
        "../scripts/baseline_predictions.py"


rule baseline_vote:
    input:
        predictions=f"{BL}{{baseline_model}}/predictions.tsv",
        subjects=cohort_sheet("subjects"),
        recordings=cohort_sheet("recordings"),
    output:
        patients=f"{BL}{{baseline_model}}/patient_predictions.tsv",
    log:
        "logs/baseline/{cohort}/{baseline_model}_vote.log",
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
        "../scripts/vote.py"


use rule baseline_vote as combined_vote with:
    input:
        predictions=TRAIN_OUTPUTS,
        extra=f"{BL}{{baseline_model}}/predictions.tsv",
        subjects=cohort_sheet("subjects"),
        recordings=cohort_sheet("recordings"),
    output:
        patients=f"{EV}combined_{{baseline_model}}/patient_predictions.tsv",
    log:
        "logs/baseline/{cohort}/combined_{baseline_model}_vote.log",


rule baseline_evaluate:
    input:
        patients=f"{BL}{{baseline_model}}/patient_predictions.tsv",
        folds="results/folds/{cohort}/folds.tsv",
    output:
        per_run=f"{BL}{{baseline_model}}/per_run_metrics.tsv",
        consensus=f"{BL}{{baseline_model}}/patient_consensus.tsv",
        bootstrap=f"{BL}{{baseline_model}}/bootstrap_ci.tsv",
    log:
        "logs/baseline/{cohort}/{baseline_model}_evaluate.log",
    benchmark:
        "benchmarks/baseline/{cohort}/{baseline_model}_evaluate.tsv"
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        n_boot=EVAL["n_bootstrap"],
        seed=EVAL["seed"],
    script:
        "../scripts/baseline_evaluate.py"


use rule baseline_evaluate as combined_evaluate with:
    input:
        patients=f"{EV}combined_{{baseline_model}}/patient_predictions.tsv",
        folds="results/folds/{cohort}/folds.tsv",
    output:
        per_run=f"{EV}combined_{{baseline_model}}/per_run_metrics.tsv",
        consensus=f"{EV}combined_{{baseline_model}}/patient_consensus.tsv",
        bootstrap=f"{EV}combined_{{baseline_model}}/bootstrap_ci.tsv",
    log:
        "logs/baseline/{cohort}/combined_{baseline_model}_evaluate.log",
    benchmark:
        "benchmarks/baseline/{cohort}/combined_{baseline_model}_evaluate.tsv"


rule model_comparison:
    input:
        nemgnet_per_run=f"{EV}per_run_metrics.tsv",
        nemgnet_consensus=f"{EV}patient_consensus.tsv",
        nemgnet_bootstrap=f"{EV}bootstrap_ci.tsv",
        per_run=expand(
            f"{BL}{{baseline_model}}/per_run_metrics.tsv", baseline_model=BASELINE_CFG["models"], allow_missing=True
        ),
        consensus=expand(
            f"{BL}{{baseline_model}}/patient_consensus.tsv", baseline_model=BASELINE_CFG["models"], allow_missing=True
        ),
        bootstrap=expand(
            f"{BL}{{baseline_model}}/bootstrap_ci.tsv", baseline_model=BASELINE_CFG["models"], allow_missing=True
        ),
        combined_per_run=expand(f"{EV}{{arm}}/per_run_metrics.tsv", arm=COMBINED_ARMS, allow_missing=True),
        combined_consensus=expand(f"{EV}{{arm}}/patient_consensus.tsv", arm=COMBINED_ARMS, allow_missing=True),
        combined_bootstrap=expand(f"{EV}{{arm}}/bootstrap_ci.tsv", arm=COMBINED_ARMS, allow_missing=True),
    output:
        table=f"{EV}model_comparison.tsv",
        tests=f"{EV}model_comparison_tests.tsv",
        per_class=f"{EV}model_comparison_per_class.tsv",
        html=report_item(
            f"{EV}model_comparison.html",
            "model_comparison",
            "diagnosis",
            "Classical baseline",
            "nEMGNet vs QEMG baselines",
            "nEMGNet and QEMG baselines",
        ),
    log:
        "logs/baseline/{cohort}/model_comparison.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=BASELINE_CFG["models"],
        combined=COMBINED_ARMS,
        method=EVAL["primary_method"],
        n_boot=EVAL["n_bootstrap"],
        seed=EVAL["seed"],
    script:
        "../scripts/model_comparison.py"


rule baseline:
    input:
        BASELINE_OUTPUTS,
