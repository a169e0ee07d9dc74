# results/README.<cohort>.md: every table and figure of the study mapped to its file, one per cohort so that runs
# of several configs in one folder keep their own (snakemake --report builds the navigable HTML report from the
# report() outputs of every stage, behind the landing page workflow/report/workflow.rst).
from snakemake import __version__ as SNAKEMAKE_VERSION

from nemg.report_context import report_context

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


rule results_readme:
    input:
        [f for it in RESULTS_ITEMS for f in it["files"]],
    output:
        readme=f"results/README.{COHORT}.md",
    log:
        f"logs/report/{COHORT}/results_readme.log",
    conda:
        "../../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        entries=RESULTS_ITEMS,
        note=PHYSICIAN_NOTE,
    script:
        "../scripts/results_readme.py"


# snakemake --report renders the landing page with nothing but the config in scope: what else it states (config
# files, commit, the cohort's counts, what ran) rides along under the config key "report_context", which no rule
# reads. Values are those of the report's build: build it from the checkout that made the results.
config["report_context"] = report_context(
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
