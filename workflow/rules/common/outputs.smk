# Path prefixes, every stage's target list and the report's file map, from the settings of common/settings.smk.
# Included by common.smk, before any rule file: the rules' inputs and outputs, and the Snakefile's `all`, use these
# instead of another rule file's rules.<name>.output, so that no rule file depends on another's include order.

EV = "results/evaluate/{cohort}/"
FIG = "results/figures/{cohort}/"
BL = "results/baseline/{cohort}/"
XV = "results/external/{cohort}/"
MD = "results/model/{cohort}/"
MANIFEST = "results/manifest/{cohort}/"
RESULTS_README = f"results/README.{COHORT}.md"

# A killed training job leaves results/train/<cohort>/<run_id>/last.pt (not a declared output, so Snakemake keeps
# it); rerunning the job resumes from it. Every run's predictions are the training stage's target.
TRAIN_OUTPUTS = expand("results/train/{cohort}/{run_id}/predictions.tsv", cohort=COHORT, run_id=TRAIN_RUN_IDS)
EVALUATE_OUTPUTS = expand(
    [
        f"{EV}table1.html",
        f"{EV}table2.html",
        f"{EV}s2_table.html",
        f"{EV}failure_summary.html",
        f"{FIG}fig1_roc_pr.png",
        f"{FIG}fig2_confusion.png",
    ],
    cohort=COHORT,
)

EXPLAIN_OUTPUTS = expand(
    "results/figures/{cohort}/{name}.{ext}",
    cohort=COHORT,
    name=["fig3_activation_maximization", "s4_fig_mispredicted", "s1_fig_model_structure"],
    ext=["png", "pdf", "tsv"],
)

BASELINE_OUTPUTS = (
    expand(
        [f"{EV}model_comparison.html", f"{EV}model_comparison.tsv", f"{EV}model_comparison_tests.tsv"],
        cohort=COHORT,
    )
    if BASELINE_CFG["enabled"]
    else []
)

EXTERNAL_OUTPUTS = (
    expand([f"{XV}external_validation.tsv", f"{XV}external_validation.html"], cohort=COHORT) if EXT_TESTS else []
)

MODEL_OUTPUTS = expand([f"{MD}model.json", f"{MD}MODEL_CARD.md"], cohort=COHORT)
# external.only (inference-only runs) has no cross-validation, so only the external figure
REVIEW_OUTPUTS = (
    []
    if EXTERNAL["only"]
    else expand(
        f"{FIG}{{name}}.png",
        cohort=COHORT,
        name=["training_curves", "calibration", "patient_probabilities", "recording_timeline"],
    )
) + (expand(f"{FIG}external_confusion.png", cohort=COHORT) if EXT_TESTS else [])

MANIFEST_OUTPUTS = expand([f"{MANIFEST}files.tsv", f"{MANIFEST}run.yaml", f"{MANIFEST}config.yaml"], cohort=COHORT)

# evaluate's physician-arm outputs: only with a ratings sheet
PHYSICIAN_OUTPUTS = (
    dict(
        physicians=f"{EV}physician_metrics.tsv",
        physicians_html=report_item(
            f"{EV}physician_metrics.html",
            "physician_metrics",
            "diagnosis",
            "Physicians",
            "per-physician metrics",
            "physicians",
        ),
        comparisons=f"{EV}model_vs_physicians.tsv",
        comparisons_html=report_item(
            f"{EV}model_vs_physicians.html",
            "model_vs_physicians",
            "diagnosis",
            "Physicians",
            "nEMGNet vs physicians, paired tests",
            "physicians",
        ),
    )
    if RATINGS
    else {}
)


##### results/README.<cohort>.md (report.smk): every table and figure of the study mapped to its file #####
_ev = f"results/evaluate/{COHORT}"
_fig = f"results/figures/{COHORT}"
_xv = f"results/external/{COHORT}"
_preprocessing_items = [
    {
        "item": "S1 Table",
        "what": "recordings, proximal/distal and duration per class",
        "files": [f"results/segment/{COHORT}/s1_table.tsv"],
    },
]
_external_items = (
    [
        {
            "item": "external validation",
            "what": "trained on every patient here, tested on other cohorts (docs/external.md)",
            "files": [f"{_xv}/external_validation.tsv", f"{_xv}/external_validation.html"],
        },
    ]
    if EXT_TESTS
    else []
)
_cv_items = [
    {
        "item": "Table 1",
        "what": "demographics per class with tests",
        "files": [f"{_ev}/table1.tsv", f"{_ev}/table1.html"],
    },
    {
        "item": "Table 2",
        "what": "model vs physicians, mean (95 % CI)",
        "files": [f"{_ev}/table2.tsv", f"{_ev}/table2.html"],
    },
    {
        "item": "S2 Table",
        "what": "divide-and-vote with vs without muscle location",
        "files": [f"{_ev}/s2_table.tsv", f"{_ev}/s2_table.html"],
    },
    {
        "item": "Fig 1",
        "what": "per-class ROC and PR curves, physicians as points",
        "files": [f"{_fig}/fig1_roc_pr.png", f"{_fig}/fig1_roc_pr.pdf"],
    },
    {
        "item": "S2 Fig",
        "what": "ROC and PR with vs without location",
        "files": [f"{_fig}/s2_fig_roc_pr_location.png", f"{_fig}/s2_fig_roc_pr_location.pdf"],
    },
    {
        "item": "Fig 2",
        "what": "confusion matrices, physicians vs model",
        "files": [f"{_fig}/fig2_confusion.png", f"{_fig}/fig2_confusion.pdf"],
    },
    {
        "item": "S3 Fig",
        "what": "confusion matrices without / with location",
        "files": [f"{_fig}/s3_fig_confusion_location.png", f"{_fig}/s3_fig_confusion_location.pdf"],
    },
    {
        "item": "Fig 3",
        "what": "class-maximising input signals (activation maximisation)",
        "files": [
            f"{_fig}/fig3_activation_maximization.png",
            f"{_fig}/fig3_activation_maximization.pdf",
            f"{_fig}/fig3_activation_maximization.tsv",
        ],
    },
    {
        "item": "S4 Fig",
        "what": "examples of mispredicted signals",
        "files": [
            f"{_fig}/s4_fig_mispredicted.png",
            f"{_fig}/s4_fig_mispredicted.pdf",
            f"{_fig}/s4_fig_mispredicted.tsv",
        ],
    },
    {
        "item": "S1 Fig",
        "what": "model structure: layer shapes, parameters, FLOPs",
        "files": [
            f"{_fig}/s1_fig_model_structure.png",
            f"{_fig}/s1_fig_model_structure.pdf",
            f"{_fig}/s1_fig_model_structure.tsv",
        ],
    },
    {
        "item": "nEMGNet vs classical baseline",
        "what": "Table 2-style comparison with paired tests (docs/baseline.md)",
        "files": [f"{_ev}/model_comparison.tsv", f"{_ev}/model_comparison.html", f"{_ev}/model_comparison_tests.tsv"],
    },
    {
        "item": "failure analysis (v2)",
        "what": "unanimously misclassified patients, model vs physicians",
        "files": [f"{_ev}/failure_summary.tsv", f"{_ev}/failure_analysis.tsv"],
    },
    {
        "item": "per-class correct ratio (v1 text)",
        "what": "model vs physicians per class",
        "files": [f"{_ev}/per_class_correct.tsv"],
    },
    {
        "item": "metrics per run",
        "what": "every run and divide-and-vote variant; bootstrap CIs",
        "files": [f"{_ev}/per_run_metrics.tsv", f"{_ev}/bootstrap_ci.tsv", f"{_ev}/patient_predictions.tsv"],
    },
] + (
    [
        {
            "item": "physician arm",
            "what": "per-rater metrics; paired tests and Fleiss' kappa",
            "files": [f"{_ev}/physician_metrics.tsv", f"{_ev}/model_vs_physicians.tsv"],
        }
    ]
    if RATINGS
    else []
)
_review_items = [
    {
        "item": "training curves",
        "what": "training loss and validation accuracy per update, kept checkpoint marked",
        "files": [f"{_fig}/training_curves.png", f"{_fig}/training_curves.pdf", f"{_fig}/training_curves.tsv"],
    },
    {
        "item": "calibration",
        "what": "reliability diagrams and Brier scores, nEMGNet and QEMG baselines (docs/review.md)",
        "files": [
            f"{_fig}/calibration.png",
            f"{_fig}/calibration.pdf",
            f"{_fig}/calibration_summary.tsv",
            f"{_fig}/calibration_bins.tsv",
        ],
    },
    {
        "item": "per-patient view",
        "what": "every patient's class probabilities, misdiagnoses, physicians' majority call",
        "files": [
            f"{_fig}/patient_probabilities.png",
            f"{_fig}/patient_probabilities.pdf",
            f"{_fig}/patient_probabilities.tsv",
        ],
    },
    {
        "item": "recording timeline",
        "what": "S4 Fig patients: segment probabilities over time under the signal",
        "files": [f"{_fig}/recording_timeline.png", f"{_fig}/recording_timeline.pdf", f"{_fig}/recording_timeline.tsv"],
    },
]
_external_review_items = (
    [
        {
            "item": "external confusion matrices",
            "what": "every test cohort and model, consensus calls",
            "files": [f"{_fig}/external_confusion.png", f"{_fig}/external_confusion.pdf"],
        },
    ]
    if EXT_TESTS
    else []
)
# external.only (inference-only runs) has no cross-validation of its own cohort
RESULTS_ITEMS = (
    _preprocessing_items
    + ([] if EXTERNAL["only"] else _cv_items + _review_items)
    + _external_items
    + _external_review_items
)


# snakemake --report renders the landing page with nothing but the config in scope: what else it states (config
# files, commit, the cohort's counts, what ran) rides along under the config key "report_context", which no rule
# reads. Values are those of the report's build: build it from the checkout that made the results.
config[REPORT_CONTEXT_KEY] = report_context(
    REPO,
    configfiles=workflow.configfiles,
    subjects=Path(f"results/cohort/{COHORT}/subjects.tsv"),
    n_runs=0 if EXTERNAL["only"] else len(TRAIN_RUN_IDS),
    baselines=REVIEW_BASELINES,
    external_tests=EXT_TESTS,
    physicians=(
        "SIMULATED raters (nemg.simulate), not real physicians"
        if PHYSICIAN_NOTE
        else f"ratings sheet {RATINGS}" if RATINGS else ""
    ),
    snakemake_version=SNAKEMAKE_VERSION,
)
