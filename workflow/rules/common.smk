# Shared set-up, included first: config validation, cohort paths, wildcard constraints, every setting derived
# from the config, every path prefix and target list, and every input function. The rule files hold rules only,
# so they may be included in any order (tests/test_workflow.py includes them reversed and shuffled). Settings and
# target lists per stage are in common/settings.smk and common/outputs.smk, included at the end of this file.
import os
import re
import shutil
import sys
from pathlib import Path

import yaml

# The library lives in src/; put it first on the path of this process and of every job (scripts run as
# subprocesses, possibly in a conda env that does not have nemg installed).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH", "")) if p))

from snakemake import __version__ as SNAKEMAKE_VERSION
from snakemake.logging import logger

from nemg.baseline import MODELS as BASELINE_MODELS, classifier_params
from nemg.config import (
    ConfigError,
    fill_defaults,
    resolve_path,
    split_train_runtime,
    stage2_settings,
    validate_config,
)
from nemg.explain import AM_KEYS, select_runs
from nemg.external import (
    cohort_key,
    describe_cohort,
    external_cohorts,
    external_test_ids,
    pretraining_cohort,
    same_patients,
)
from nemg.features import feature_params
from nemg.folds import EXTERNAL_SCHEME, external_run_id as ext_run_id, run_id as fold_run_id, run_id_regex
from nemg.report_context import CONFIG_KEY as REPORT_CONTEXT_KEY, report_context
from nemg.results_table import git_commit

# CFG, not `config`, is what the rules read: the config with every key it leaves out set to the schema's default
# (workflow/schemas/config.schema.yaml, the one home of defaults). `config` stays as the user's files give it,
# because the run manifest records it (results/manifest/<cohort>/config.yaml).
try:
    CFG = fill_defaults(validate_config(config, source="config (config.yaml + --configfile/--config)"))
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

REPO = Path(workflow.basedir)
COHORT = CFG["cohort"]["name"]
SOURCE = CFG["cohort"]["source"]

# External validation (workflow/rules/external.smk): test cohorts preprocessed for this run's model live under
# results/<stage>/<test>_for_<cohort>/. Each has its own cohort section (source, data folder, subjects); every
# other setting is this run's.
EXTERNAL = CFG["external"]
try:
    with open(REPO / "config.yaml") as _fh:  # external config files are overlays on config.yaml, like --configfile
        _base_cohort = yaml.safe_load(_fh)["cohort"]
    EXTERNAL_COHORTS = external_cohorts(CFG, REPO, base_cohort=_base_cohort)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
# test id -> (external cohort, amplitude calibration): "<name>" as recorded, "<name>.rms" amplitude-calibrated,
# "<name>.rmsp" amplitude- and polarity-calibrated
EXT_TEST_IDS = external_test_ids(EXTERNAL_COHORTS, EXTERNAL["amplitude_calibration"])
# Pretraining (pretrain.enabled; workflow/rules/train.smk): a simulated cohort of its own, results/<stage>/
# pretrain_for_<cohort>/, preprocessed with this run's settings like a test cohort and simulated with the pretrain
# section's parameters instead of the run's (every data set pretrains on the same simulated patients); or, with
# pretrain.cohort, a real cohort under the same key; with pretrain.simulated_first as well, the simulated cohort
# under pretrain_simulated_for_<cohort> is a first stage whose network the real cohort's pretraining starts from.
PRETRAIN = CFG["pretrain"]
PRETRAIN_COHORT = cohort_key("pretrain", COHORT) if PRETRAIN["enabled"] else None
if PRETRAIN["simulated_first"] and PRETRAIN["cohort"] is None:
    raise WorkflowError(
        "pretrain.simulated_first: a first stage on simulated patients before pretrain.cohort's; without "
        "pretrain.cohort the pretraining is on simulated patients already (set pretrain.cohort or drop the key)"
    )
PRETRAIN_SIM_COHORT = (
    cohort_key("pretrain_simulated", COHORT) if PRETRAIN_COHORT and PRETRAIN["simulated_first"] else None
)
# Every network waits for the pretraining, and nothing else waits for the QEMG jobs: its chain (simulate,
# trim, resample, segment, split, pretrain) runs first when jobs compete for cores.
PRETRAIN_PRIORITY = 10


def pretrain_priority(wildcards):
    return PRETRAIN_PRIORITY if PRETRAIN_COHORT and wildcards.cohort in (PRETRAIN_COHORT, PRETRAIN_SIM_COHORT) else 0


for _name in ("pretrain", "pretrain_simulated") if PRETRAIN_COHORT else ():
    if _name in EXTERNAL_COHORTS:
        raise WorkflowError(
            f"external.cohorts: {_name!r} names a pretraining cohort (pretrain.enabled); rename that entry"
        )
COHORTS = {
    COHORT: CFG["cohort"],
    **{cohort_key(name, COHORT): c for name, c in EXTERNAL_COHORTS.items()},
    **{cohort_key(t, COHORT): EXTERNAL_COHORTS[name] for t, (name, _) in EXT_TEST_IDS.items()},
}
if PRETRAIN_COHORT and PRETRAIN["cohort"] is not None:
    # a real cohort (pretrain.cohort): read, trimmed and resampled like an external test cohort
    try:
        COHORTS[PRETRAIN_COHORT] = pretraining_cohort(CFG, REPO, PRETRAIN_COHORT, base_cohort=_base_cohort)
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None
# the simulated pretraining cohort: the only one without pretrain.cohort, the first stage with simulated_first
_sim_key = PRETRAIN_SIM_COHORT or (PRETRAIN_COHORT if PRETRAIN["cohort"] is None else None)
if _sim_key:
    COHORTS[_sim_key] = {
        **CFG["cohort"],
        "name": _sim_key,
        "source": "simulated",
        "seed": PRETRAIN["seed"],
        "subjects": [],
        "recordings_where": {},
    }
# what the pretraining network learnt from, in words (the model card names it)
if PRETRAIN_SIM_COHORT:
    PRETRAINING_DESCRIPTION = (
        f"simulated patients (seed {PRETRAIN['seed']}), then the patients of "
        f"{describe_cohort(COHORTS[PRETRAIN_COHORT])}"
    )
elif PRETRAIN_COHORT and PRETRAIN["cohort"] is not None:
    PRETRAINING_DESCRIPTION = f"the patients of {describe_cohort(COHORTS[PRETRAIN_COHORT])}"
elif PRETRAIN_COHORT:
    PRETRAINING_DESCRIPTION = f"simulated patients only (seed {PRETRAIN['seed']})"
else:
    PRETRAINING_DESCRIPTION = None


def _pretrained_on_tests(key):
    """External cohort -> why it may hold the patients of pretraining cohort ``key``."""
    if not key:
        return {}
    return {name: why for name, c in EXTERNAL_COHORTS.items() if (why := same_patients(COHORTS[key], c, REPO))}


# External test cohorts that hold the pretraining's patients: their networks must not start from it (they would
# have seen the test patients with their diagnoses). They start from the simulated first stage when there is one
# and it does not hold them too, otherwise from random weights.
PRETRAINED_ON_TESTS = _pretrained_on_tests(PRETRAIN_COHORT)
SIM_STAGE_ON_TESTS = _pretrained_on_tests(PRETRAIN_SIM_COHORT)
# cohort key of a calibrated test cohort -> its test id (its segments are scaled by the gain of rule external_gain)
CALIBRATED = {cohort_key(t, COHORT): t for t, (_, cal) in EXT_TEST_IDS.items() if cal != "none"}
# ... and -> the key of its uncalibrated twin: the same recordings, so the twin's sheets and trimmed and resampled
# signals serve both; only the calibrated segments (and features) are its own
TWIN = {cohort_key(t, COHORT): cohort_key(name, COHORT) for t, (name, cal) in EXT_TEST_IDS.items() if cal != "none"}


def cohort_regex(names):
    """A wildcard constraint matching exactly ``names`` (a pattern that never matches when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def cohorts_from(source):
    return [name for name, c in COHORTS.items() if c["source"] == source]


wildcard_constraints:
    cohort=cohort_regex(COHORTS),


def cohort_sheet(name):
    """results/cohort/<cohort>/<name>.tsv -- every source ends here (subjects, recordings)."""
    return f"results/cohort/{{cohort}}/{name}.tsv"


def public_source_dir(cohort):
    """The public data set's folder (never copied; the sheets point into it)."""
    from nemg.datasets import get

    pub = COHORTS[cohort]["public"]
    return str(resolve_path(pub["data_dir"], REPO) / get(pub["dataset"]).folder)


def user_sheet(key):
    """Input function: the cohort's own subjects / recordings sheet."""
    return lambda wildcards: str(resolve_path(COHORTS[wildcards.cohort]["sheets"][key], REPO))


def simulation_params(cohort=None):
    """The simulation section merged into nemg.simulate.DEFAULT_PARAMS (wrong keys fail here, at start-up); for the
    pretraining cohort, pretrain.simulation instead of the run's section."""
    from nemg.simulate import merge_params

    if cohort is not None and cohort == _sim_key:
        return merge_params(PRETRAIN["simulation"])
    return merge_params(CFG["simulation"])


if _sim_key:
    try:
        simulation_params(_sim_key)
    except (KeyError, ValueError, TypeError) as exc:
        raise WorkflowError(f"pretrain.simulation: {exc}") from None


def trim_params():
    return CFG["preprocess"]["trim"]


def final_outputs():
    """Targets of the default run: the QC figure, the S1 table, the segment store and the checked folds table.

    An inference-only run (external.only) has no cross-validation, so no folds table: folds it never uses must
    not fail it (a cohort too small for the configured folds is a FoldError at fold-making time).
    """
    folds = [] if EXTERNAL["only"] else ["results/folds/{cohort}/folds.tsv", "results/folds/{cohort}/leakage_check.txt"]
    return expand(
        [
            "results/trim/{cohort}/trim_qc.png",
            "results/segment/{cohort}/s1_table.tsv",
            "results/segment/{cohort}/segments.npy",
            "results/segment/{cohort}/shared_signals_check.txt",
            *folds,
        ],
        cohort=COHORT,
    )


def ratings_path():
    """The ratings sheet of this cohort, or None."""
    r = CFG["evaluate"]["ratings"]
    if r in (None, "none"):
        return None
    if r == "auto":
        return "results/cohort/{cohort}/ratings.tsv" if SOURCE == "simulated" else None
    return str(resolve_path(r, REPO))


# The report's sections in reading order (snakemake --report lists categories and subcategories sorted by name,
# hence the numbers); workflow/report/workflow.rst, the landing page, introduces each one.
REPORT_SECTIONS = {
    "cohort": "1 Cohort and preprocessing",
    "training": "2 Training",
    "diagnosis": "3 Diagnosis",
    "review": "4 Calibration and patients",
    "explain": "5 What the network responds to",
    "external": "6 External validation",
}


def ratings_inputs():
    """The ratings sheet and the sheets its ids are checked against (nemg.physicians.read_ratings): the cohort's,
    plus for source sheets the user's own before cohort.subjects / recordings_where, so that rows of filtered-out
    ids are dropped and only ids in no sheet are errors (the simulator drops its filtered-out rows itself)."""
    ratings = ratings_path()
    if not ratings:
        return {}
    ins = {"ratings": ratings, "recordings": cohort_sheet("recordings")}
    if SOURCE == "sheets":
        ins.update(all_subjects=user_sheet("subjects"), all_recordings=user_sheet("recordings"))
    return ins


def report_item(path, caption, section, subcategory, item, model=None):
    """A report() output with its caption file workflow/report/<caption>.rst, in one of REPORT_SECTIONS.

    Labels: ``item`` (first, it names the entry and must be unique within the subcategory), the cohort (from the
    rule's wildcard) and, where one applies, the model."""
    labels = {"item": item, "cohort": "{cohort}", **({"model": model} if model else {})}
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category=REPORT_SECTIONS[section],
        subcategory=subcategory,
        labels=labels,
    )


def resampled(name):
    """Input function: a cohort's resampled-store file (a calibrated test cohort reads its uncalibrated twin's)."""
    return lambda wildcards: f"results/resample/{TWIN.get(wildcards.cohort, wildcards.cohort)}/{name}"


def test_path(pattern, shared=False):
    """Input function: a test cohort's artifact, preprocessed for this run (results/<stage>/<test>_for_<cohort>).

    shared: a file that a calibrated variant takes from its uncalibrated twin (sheets, trimmed or resampled
    signals)."""

    def path(wildcards):
        key = cohort_key(wildcards.test, wildcards.cohort)
        return pattern.format(cohort=TWIN.get(key, key) if shared else key)

    return path


def external_arm_predictions(wildcards):
    """Input function of external_vote: the arm's segment scores (a combined arm: nEMGNet's)."""
    if wildcards.arm == "nemgnet" or wildcards.arm in COMBINED_ARMS:
        # validation (stage-2 fit) scores of the training cohort + the test cohort's scores, per model
        nets = ext_networks(wildcards.test)
        return expand(f"{nets}{{ext_run}}/predictions.tsv", cohort=wildcards.cohort, ext_run=EXT_RUN_IDS) + expand(
            f"{XV}{{test}}/nemgnet/{{ext_run}}_predictions.tsv",
            cohort=wildcards.cohort,
            test=wildcards.test,
            ext_run=EXT_RUN_IDS,
        )
    return [f"results/external/{wildcards.cohort}/{wildcards.test}/{wildcards.arm}/predictions.tsv"]


def external_arm_extra(wildcards):
    """Input function of external_vote: a combined arm's QEMG segment scores, which its stage 2 sees too."""
    if wildcards.arm not in COMBINED_ARMS:
        return []
    model = wildcards.arm.removeprefix("combined_")
    return [f"results/external/{wildcards.cohort}/{wildcards.test}/{model}/predictions.tsv"]


def amplitude_gain_file(wildcards):
    """Input function of the segment rule: the gain of an amplitude-calibrated test cohort, nothing otherwise."""
    if wildcards.cohort in CALIBRATED:
        return [f"results/external/{COHORT}/{CALIBRATED[wildcards.cohort]}/amplitude_gain.tsv"]
    return []


def external_gain_file(wildcards):
    """Input function of the external_evaluate rule: the test cohort's gain file when it is calibrated."""
    return (
        [f"results/external/{wildcards.cohort}/{wildcards.test}/amplitude_gain.tsv"]
        if EXT_TEST_IDS[wildcards.test][1] != "none"
        else []
    )


def _outputs(step, **wildcards):
    """Every output file of the rule ``step`` for each combination of the listed wildcard values."""
    return expand(list(step.output), **wildcards)


def run_outputs(exclude=()):
    """Every output of this run's jobs: sheets (and simulated signals), trimmed / resampled signals, segments,
    folds, checkpoints and per-run predictions, tables, figures, the external validation and the results map,
    plus whatever else `all` asks for except ``exclude`` (the manifest itself). Mirrors what the targets of `all`
    pull into the DAG, built from the rules' own output declarations (rules.<name>.output) over the wildcard values
    this run uses, so a renamed output cannot drift from it. Call it only once every rule file is parsed."""
    cv = [] if EXTERNAL["only"] else [COHORT]  # this cohort's cross-validation
    tests = [cohort_key(t, COHORT) for t in EXT_TESTS]  # external test cohorts, calibrated variants included
    # cohorts with their own sheets, trimmed and resampled signals (a calibrated variant shares its twin's)
    preprocessed = [COHORT] + sorted({TWIN.get(k, k) for k in tests})
    # the pretraining cohort, when a network is trained at all (cross-validation or external)
    pretrained = [k for k in (PRETRAIN_SIM_COHORT, PRETRAIN_COHORT) if k] if cv or EXT_TESTS else []
    preprocessed += pretrained
    sheet_rules = {"simulated": rules.simulate_cohort, "public": rules.import_cohort, "sheets": rules.register_sheets}
    files = [f for k in preprocessed for f in _outputs(sheet_rules[COHORTS[k]["source"]], cohort=k)]
    files += _outputs(rules.trim, cohort=preprocessed) + _outputs(rules.resample, cohort=preprocessed)
    files += _outputs(rules.trim_qc_figure, cohort=COHORT)
    files += _outputs(rules.segment, cohort=[COHORT] + tests + pretrained)
    if pretrained:
        files += _outputs(rules.pretrain_split, cohort=COHORT) + _outputs(rules.pretrain, cohort=COHORT)
    if pretrained and PRETRAIN_SIM_COHORT:
        files += _outputs(rules.pretrain_simulated_split, cohort=COHORT)
        files += _outputs(rules.pretrain_simulated, cohort=COHORT)
    for step in (
        rules.make_folds,
        rules.check_leakage,
        rules.vote,
        rules.evaluate,
        rules.table1,
        rules.evaluation_figures,
        rules.fig3_optimize_inputs,
        rules.fig3_activation_maximization,
        rules.s4_fig_mispredicted,
        rules.s1_model_structure_table,
        rules.s1_fig_model_structure,
    ):
        files += _outputs(step, cohort=cv)
    files += _outputs(rules.train_fold, cohort=cv, run_id=TRAIN_RUN_IDS)
    if BASELINE_CFG["enabled"]:
        # the external arms train on this cohort's features even in an inference-only run
        featured = sorted(set(cv + ([COHORT] + tests if EXT_TESTS else [])))
        files += _outputs(rules.baseline_features, cohort=featured)
        for step in (rules.baseline_predictions, rules.baseline_vote, rules.baseline_evaluate):
            files += _outputs(step, cohort=cv, baseline_model=BASELINE_CFG["models"])
        for step in (rules.combined_vote, rules.combined_evaluate):
            files += _outputs(step, cohort=cv, baseline_model=BASELINE_CFG["combine"])
        files += _outputs(rules.model_comparison, cohort=cv)
    if EXT_TESTS:
        calibrated = [t for t in EXT_TESTS if EXT_TEST_IDS[t][1] != "none"]
        files += _outputs(rules.external_split, cohort=COHORT)
        files += _outputs(rules.train_external, cohort=COHORT, ext_run=EXT_RUN_IDS)
        if TWO_EXT_STARTS and set(EXT_TESTS) - set(EXT_TESTS_SEEN):
            files += _outputs(rules.train_external_pretrained, cohort=COHORT, ext_run=EXT_RUN_IDS)
        files += _outputs(rules.predict_external, cohort=COHORT, test=EXT_TESTS, ext_run=EXT_RUN_IDS)
        if BASELINE_CFG["enabled"]:
            files += _outputs(
                rules.external_baseline_predictions,
                cohort=COHORT,
                test=EXT_TESTS,
                baseline_model=BASELINE_CFG["models"],
            )
        files += _outputs(rules.external_vote, cohort=COHORT, test=EXT_TESTS, arm=EXT_ARMS)
        files += _outputs(rules.external_gain, cohort=COHORT, test=calibrated)
        files += _outputs(rules.external_evaluate, cohort=COHORT, test=EXT_TESTS)
        files += _outputs(rules.external_table, cohort=COHORT)
    for step in (rules.training_curves, rules.calibration, rules.patient_probabilities, rules.recording_timeline):
        files += _outputs(step, cohort=cv)
    if EXT_TESTS:
        files += _outputs(rules.external_confusion, cohort=COHORT)
    files += list(rules.results_readme.output)
    # anything `all` asks for beyond these (a target added later is covered without touching this list)
    files += [f for f in rules.all.input if f not in exclude]
    return sorted(set(map(str, files)))


def model_card_tables(wildcards):
    """Input function of model_bundle (model.smk): the run's own tables its model card quotes, the
    cross-validation's (absent with external.only) and the external-validation table when there are test cohorts."""
    tables = (
        {}
        if EXTERNAL["only"]
        else {
            "table2": f"results/evaluate/{wildcards.cohort}/table2.tsv",
            "per_class": f"results/evaluate/{wildcards.cohort}/per_class_correct.tsv",
        }
    )
    if EXT_TESTS:
        tables["external"] = f"results/external/{wildcards.cohort}/external_validation.tsv"
    return tables


include: "common/settings.smk"
include: "common/outputs.smk"
