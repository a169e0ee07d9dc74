# The model bundle (issue 14): the external-validation ensemble (external.smk: one nEMGNet per external.seeds
# seed, trained on every patient of this cohort) or, with bundle.members: cv, the nested cross-validation's
# networks, with their fitted stage 2, preprocessing and model card, in one self-contained folder that
# `nemg predict` reads. Library: nemg.bundle, nemg.model_card.
# Its networks start from the cross-validation's first weights: when the pretraining saw a test cohort, those of
# rule train_external_pretrained (results/external/<cohort>/models_pretrained/), not the ones that score that cohort.
#
# results/model/<cohort>/model.json        classes, preprocessing, network config, stage-2 coefficients,
#                                          training cohort summary, nemg version, git commit, weights sha256
# results/model/<cohort>/weights/<run>.pt  one state dict per member (torch.load(..., weights_only=True))
# results/model/<cohort>/MODEL_CARD.md     generated from the run's own evaluate / external tables


rule model_bundle:
    input:
        unpack(model_card_tables),
        best=expand(f"{BUNDLE_NETS}{{member}}/best.pt", member=BUNDLE_RUN_IDS, allow_missing=True),
        predictions=expand(f"{BUNDLE_NETS}{{member}}/predictions.tsv", member=BUNDLE_RUN_IDS, allow_missing=True),
        split=BUNDLE_SPLIT,
        subjects=cohort_sheet("subjects"),
        recordings=cohort_sheet("recordings"),
        segments_index="results/segment/{cohort}/segments_index.tsv",
        signals="results/resample/{cohort}/signals.npy",  # its median frame RMS: nemg predict --calibrate's reference
        signals_index="results/resample/{cohort}/signals_index.tsv",
        qemg=[f"{BL}features.npy", f"{BL}feature_names.txt"] if BUNDLE["combined"] else [],
    output:
        model_json=f"{MD}model.json",
        card=f"{MD}MODEL_CARD.md",
        weights=expand(f"{MD}weights/{{member}}.pt", member=BUNDLE_RUN_IDS, allow_missing=True),
    log:
        "logs/model/{cohort}/model_bundle.log",
    benchmark:
        "benchmarks/model/{cohort}/model_bundle.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        run_ids=BUNDLE_RUN_IDS,
        members=BUNDLE["members"],
        preprocess=CFG["preprocess"],
        stage2=dict(method=EVAL["primary_method"], with_location=BUNDLE["with_location"], **STAGE2),
        eval_batch_size=TRAIN_CFG["eval_batch_size"],
        source=SOURCE,
        git_commit=git_commit(REPO),
        config_files=[str(f) for f in workflow.configfiles],
        pretraining=PRETRAINING_DESCRIPTION,
        external_start=EXT_OTHER_START,
        combined=(
            dict(feature_params=BASELINE_FEATURES, classifier_params=BASELINE_CLF) if BUNDLE["combined"] else None
        ),
    script:
        "../scripts/model_bundle.py"


rule model:
    input:
        MODEL_OUTPUTS,
