# Settings every stage derives from the config (CFG, common.smk), checked here at start-up, and the wildcard
# constraints of the stages. Included by common.smk, before any rule file.

##### training: train.smk, and train_external / predict_external in external.smk #####
TRAIN_CFG = CFG["train"]
# the training rules' params hold what a run learns from; the runtime keys (threads, progress bar, checkpoint
# cadence, ...) reach the job through its config, so changing them does not retrain every network
TRAIN_LEARN, _ = split_train_runtime(TRAIN_CFG)
# The weights every training job starts from: the pretraining's network (pretrain.enabled), a user's best.pt
# (train.init_from), or none (random initialisation). A file input of the training rules, so a new pretraining
# retrains the networks; the path itself is left out of their params (it differs between machines, not runs).
if PRETRAIN_COHORT and TRAIN_CFG["init_from"]:
    raise WorkflowError(
        f"train.init_from ({TRAIN_CFG['init_from']}) and pretrain.enabled both choose the first weights; set one"
    )
PRETRAIN_BEST = "results/pretrain/{cohort}/best.pt"
# the simulated first stage of a two-stage pretraining (pretrain.simulated_first), which PRETRAIN_BEST starts from
PRETRAIN_SIM_BEST = "results/pretrain/{cohort}/simulated/best.pt"
INIT_WEIGHTS = (
    PRETRAIN_BEST
    if PRETRAIN_COHORT
    else str(resolve_path(TRAIN_CFG["init_from"], REPO)) if TRAIN_CFG["init_from"] else None
)
TRAIN_LEARN.pop("init_from", None)
# finetune_lr is the rate of the networks that start from a pretrained network: not the pretraining's (below),
# and left out of the params when no network starts from one, so that it retrains nothing there
_FINETUNE_LR = TRAIN_LEARN.pop("finetune_lr", None)
# ... except for external networks when the pretraining saw one of their test cohorts (common.smk): they start
# from the simulated first stage, when there is one that did not see them either, or else from random weights
if not PRETRAINED_ON_TESTS:
    EXT_INIT_WEIGHTS = INIT_WEIGHTS
elif PRETRAIN_SIM_COHORT and not SIM_STAGE_ON_TESTS:
    EXT_INIT_WEIGHTS = PRETRAIN_SIM_BEST
else:
    EXT_INIT_WEIGHTS = None
if PRETRAINED_ON_TESTS:
    logger.info(
        "the pretraining cohort holds the patients of external test cohort(s) "
        + "; ".join(f"{name} ({why})" for name, why in PRETRAINED_ON_TESTS.items())
        + ": the external networks start from "
        + ("the simulated first stage" if EXT_INIT_WEIGHTS else "random weights")
        + ", the cross-validation networks from the pretraining"
    )
# the pretraining's recipe: the run's, with pretrain.train's keys changed; both stages learn at train.lr (the
# second stage too, though it starts from the first: finetune_lr is the rate of the networks that learn the run's
# own cohort)
if "finetune_lr" in PRETRAIN["train"]:
    raise WorkflowError(
        "pretrain.train.finetune_lr: the pretraining stages learn at their lr (set pretrain.train.lr); "
        "train.finetune_lr is the rate of the networks that start from the pretraining"
    )
PRETRAIN_TRAIN = {**TRAIN_LEARN, **PRETRAIN["train"]}
# train.aux_qemg (and pretrain.train.aux_qemg): the QEMG features of the store a job trains on are a file input of
# its rule (rule baseline_features of that cohort), like its first weights; their path is the workflow's to set
if TRAIN_CFG["aux_features"] or PRETRAIN_TRAIN["aux_features"]:
    raise WorkflowError(
        "train.aux_features: the workflow passes each training job the features of its own segment store "
        "(results/baseline/<cohort>/features.npy); leave it unset and set train.aux_qemg only"
    )
AUX_QEMG = float(TRAIN_CFG["aux_qemg"]) > 0
PRETRAIN_AUX_QEMG = float(PRETRAIN_TRAIN["aux_qemg"]) > 0
# switched off, neither key enters the params: they stay what they were before the switch existed (Snakemake's
# params trigger would otherwise retrain every finished network)
for _learn, _on in ((TRAIN_LEARN, AUX_QEMG), (PRETRAIN_TRAIN, PRETRAIN_AUX_QEMG)):
    _learn.pop("aux_features", None)
    if not _on:
        _learn.pop("aux_qemg", None)
if INIT_WEIGHTS:
    TRAIN_LEARN["finetune_lr"] = _FINETUNE_LR
# unknown keys stop the run here; values are checked by the pretrain job (nemg.train.resolve_train_cfg), so that
# parsing the workflow does not import torch
_unknown_pretrain = sorted(set(PRETRAIN["train"]) - set(TRAIN_CFG))
if _unknown_pretrain:
    raise WorkflowError(f"pretrain.train: unknown key(s) {_unknown_pretrain}; it takes the keys of train:")
PRETRAIN_RUN = ext_run_id(PRETRAIN["seed"])
MODEL_CFG = CFG["model"]  # preset (paper | cpu | small | tiny), width, head_width, deep_stride, head
# Whether training jobs run on a GPU: train.device, or for `auto` whether this machine has an NVIDIA driver.
TRAIN_ON_GPU = str(TRAIN_CFG["device"]).startswith("cuda") or (
    TRAIN_CFG["device"] == "auto" and shutil.which("nvidia-smi") is not None
)
# CPU threads per job: on a CPU, two 1-thread jobs beat one 2-thread job on 2 shared cores (docs/training.md);
# on a GPU the threads only feed batches.
TRAIN_THREADS = int(TRAIN_CFG["num_threads"] or (4 if TRAIN_ON_GPU else 1))
# Run ids come from the `folds:` config through nemg.folds.run_id, the function that writes them into folds.tsv,
# so the DAG is known before the folds table exists (no checkpoint needed).
_folds = CFG["folds"]


def nested_run_ids(seed):
    """The nested cross-validation's runs of one folds seed (outer x inner)."""
    return [
        fold_run_id("nested", seed, 0, o, i)
        for o in range(_folds["nested"]["outer"])
        for i in range(_folds["nested"]["inner"])
    ]


TRAIN_RUN_IDS = [r for seed in _folds["seeds"] if "nested" in _folds["schemes"] for r in nested_run_ids(seed)] + [
    fold_run_id("repeated_kfold", seed, r, o, -1)
    for seed in _folds["seeds"]
    if "repeated_kfold" in _folds["schemes"]
    for r in range(_folds["repeated_kfold"]["repeats"])
    for o in range(_folds["repeated_kfold"]["k"])
]

##### divide-and-vote and evaluation: evaluate.smk, and every other stage's vote #####
EVAL = CFG["evaluate"]
if EVAL["stage2_fit_on"] == "train" and not TRAIN_CFG["predict_train"]:
    raise WorkflowError(
        "evaluate.stage2_fit_on: train needs train.predict_train: true "
        "(the training jobs must also score their training patients)"
    )
if EVAL["primary_method"] not in EVAL["methods"]:
    raise WorkflowError(
        f"evaluate.primary_method {EVAL['primary_method']!r} is not in evaluate.methods " f"{EVAL['methods']}"
    )
# the stage-2 settings every divide-and-vote of this run shares: keywords of nemg.evaluate.patient_predictions
STAGE2 = stage2_settings(EVAL)
# The physician arm needs a ratings sheet: evaluate.ratings = auto takes the simulated physicians of a simulated
# cohort and none for the other sources; a path uses a real study's sheet (same format). Without ratings the
# physician outputs are simply not part of the DAG.
RATINGS = ratings_path()
PHYSICIAN_NOTE = (
    "Physicians are SIMULATED raters (nemg.simulate), not real physicians."
    if EVAL["ratings"] == "auto" and SOURCE == "simulated"
    else ""
)

##### model-centred figures: explain.smk (Fig 3, S4 Fig, S1 Fig) and the recording timeline #####
EXPLAIN_CFG = CFG["explain"]
EXPLAIN_RUN_IDS = select_runs(TRAIN_RUN_IDS, EXPLAIN_CFG["runs"])
EXPLAIN_AM = {k: EXPLAIN_CFG[k] for k in AM_KEYS}
# null in the explain section: the setting of the stage the figure explains
EXPLAIN_DEVICE = EXPLAIN_CFG["device"] or TRAIN_CFG["device"]
EXPLAIN_METHOD = EXPLAIN_CFG["method"] or EVAL["primary_method"]
EXPLAIN_FIT_ON = EXPLAIN_CFG["fit_on"] or EVAL["stage2_fit_on"]
EXPLAIN_FS_HZ = float(CFG["preprocess"]["resample"]["rate_hz"])
EXPLAIN_WINDOW = int(round(CFG["preprocess"]["segment"]["window_s"] * EXPLAIN_FS_HZ))

##### classical quantitative-EMG baseline: baseline.smk, and its arms in external.smk #####
BASELINE_CFG = CFG["baseline"]
_unknown_models = sorted(set(BASELINE_CFG["models"]) - set(BASELINE_MODELS))
if _unknown_models or not BASELINE_CFG["models"]:
    raise WorkflowError(
        f"baseline.models {BASELINE_CFG['models']}: expected a non-empty subset of " f"{list(BASELINE_MODELS)}"
    )
_bad_combine = sorted(set(BASELINE_CFG["combine"]) - set(BASELINE_CFG["models"]))
if _bad_combine:
    raise WorkflowError(
        f"baseline.combine {_bad_combine}: each must also be in baseline.models "
        f"{BASELINE_CFG['models']} (the combined arm reuses that model's segment scores)"
    )
# The combined arms (issue 12, item 4): a stage 2 that sees nEMGNet's and one QEMG model's patient scores
# together, reported beside (never instead of) nEMGNet alone.
COMBINED_ARMS = [f"combined_{m}" for m in BASELINE_CFG["combine"]]
# in the schema's key order, whatever order the config gives them in (the rules' params stay the same)
BASELINE_FEATURES = feature_params(BASELINE_CFG["features"])
BASELINE_CLF = classifier_params(BASELINE_CFG)

##### external validation: external.smk, and the model bundle (model.smk) built from its ensemble #####
EXT_RUN_IDS = [ext_run_id(s) for s in EXTERNAL["seeds"]]
EXT_TESTS = list(EXT_TEST_IDS)  # "<name>" and, with external.amplitude_calibration, "<name>.rms"
# the combined arms too: whether a stage 2 that sees both models transfers to a new site as well as it
# cross-validates (its segment scores are the two arms' own; only the stage 2 is new)
EXT_ARMS = ["nemgnet"] + (list(BASELINE_CFG["models"]) + COMBINED_ARMS if BASELINE_CFG["enabled"] else [])
BUNDLE = CFG["bundle"]
# The external networks are the model bundle (model.smk), and both are what the cross-validation estimated: they
# start from the CV networks' first weights. Except when the pretraining saw a test cohort's patients (above):
# configs/messekher.yaml pretrains on N2001 and tests on it. That cohort is then scored by networks from
# EXT_INIT_WEIGHTS (models/), a start that gave Messekher's CV 0.702 and 0.709 on two training seeds against the
# pretraining's 0.731 (three-seed mean; docs/training.md; on held-out patients 2.4 points per network, level as an
# ensemble: docs/external.md). Every other test cohort and the bundle get networks from the pretraining, the
# recipe the CV measured (models_pretrained/, rule train_external_pretrained), on the same split and seeds.
TWO_EXT_STARTS = EXT_INIT_WEIGHTS != INIT_WEIGHTS
EXT_NETS = "results/external/{cohort}/models/"
EXT_NETS_PRETRAINED = "results/external/{cohort}/models_pretrained/" if TWO_EXT_STARTS else EXT_NETS
# test ids ("<name>", "<name>.rms") scored by the networks that did not start from the pretraining
EXT_TESTS_SEEN = [t for t, (name, _) in EXT_TEST_IDS.items() if name in PRETRAINED_ON_TESTS]


def ext_networks(test):
    """The folder of the networks that score external test id ``test`` (a pattern with {cohort})."""
    return EXT_NETS if test in EXT_TESTS_SEEN else EXT_NETS_PRETRAINED


# for the model card: which test cohorts' figures are not the bundle's members', and what those networks started
# from
EXT_OTHER_START = (
    {
        "cohorts": sorted(PRETRAINED_ON_TESTS),
        "start": (
            f"the pretraining's simulated first stage (simulated patients only, seed {PRETRAIN['seed']})"
            if EXT_INIT_WEIGHTS
            else "random weights"
        ),
    }
    if TWO_EXT_STARTS
    else None
)

# The bundle's members (model.smk): the external ensemble (default), or with bundle.members: cv the nested
# cross-validation's networks of the first folds.seeds seed, each with a stage 2 of its own inner-validation
# patients: no training of their own, and the card's cross-validation figures are theirs.
BUNDLE_CV = BUNDLE["members"] == "cv"
if BUNDLE_CV and (EXTERNAL["only"] or "nested" not in _folds["schemes"]):
    raise WorkflowError(
        "bundle.members: cv takes the nested cross-validation's networks, but this run has none "
        f"(external.only: {EXTERNAL['only']}, folds.schemes: {_folds['schemes']}); use bundle.members: external"
    )
BUNDLE_RUN_IDS = nested_run_ids(_folds["seeds"][0]) if BUNDLE_CV else EXT_RUN_IDS
BUNDLE_NETS = "results/train/{cohort}/" if BUNDLE_CV else EXT_NETS_PRETRAINED
BUNDLE_SPLIT = "results/folds/{cohort}/folds.tsv" if BUNDLE_CV else "results/external/{cohort}/split.tsv"
# bundle.combined: the members also carry the combined arm's QEMG logistic regression and stage 2 (nemg.bundle),
# fit on the cohort's QEMG features (baseline.smk's store) and the baseline's settings
if BUNDLE["combined"]:
    if not (BASELINE_CFG["enabled"] and "logreg" in BASELINE_CFG["models"]):
        raise WorkflowError(
            "bundle.combined: true packs the QEMG logistic regression beside the networks, but this run has "
            f"baseline.enabled: {BASELINE_CFG['enabled']}, baseline.models: {BASELINE_CFG['models']}; enable the "
            "baseline with logreg, or set bundle.combined: false"
        )
    if EVAL["primary_method"] != "logreg":
        raise WorkflowError(
            f"bundle.combined: true needs evaluate.primary_method: logreg (the combined arm is a fitted stage 2), "
            f"not {EVAL['primary_method']!r}"
        )

##### what a reviewer looks at next: review.smk #####
REVIEW_BASELINES = list(BASELINE_CFG["models"]) if BASELINE_CFG["enabled"] else []
REVIEW_NOTE = f"cohort {COHORT}" + (", SIMULATED physicians" if PHYSICIAN_NOTE else "")


wildcard_constraints:
    run_id=run_id_regex("nested", "repeated_kfold"),
    baseline_model="|".join(BASELINE_MODELS),
    ext_run=run_id_regex(EXTERNAL_SCHEME),
    test=cohort_regex(EXT_TESTS),
    arm=cohort_regex(EXT_ARMS),
