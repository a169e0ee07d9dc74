"""scripts/real_data_table.py (nemg.results_table): docs/results/real_data.tsv from the DAG's outputs and the
README's marked tables from it.

The fixture outputs are made by the library functions the rules call (nemg.evaluate, nemg.baseline,
nemg.external), on fabricated segment scores, so a change of the tables' format breaks these tests rather than
the README.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import f1_score

from nemg import baseline as bl
from nemg import evaluate as ev
from nemg.folds import make_folds
from nemg.labels import CLASSES, PROB_COLS
from nemg.manifest import cpu_info
from nemg.tables import write_table

REPO = Path(__file__).resolve().parents[1]
# argmax: no stage-2 fit, so the fixture builds in seconds; the tables' format is the same for every method, and
# the script must take it from the fixture's config.yaml, not assume the default logreg
METHOD = "argmax"
N_BOOT = 20
README = """# toy

intro stays

## Results on real public data
<!-- real-data-table:begin -->
stale table
<!-- real-data-table:end -->

prose between stays

<!-- default-run-table:begin -->
<!-- default-run-table:end -->

tail stays
"""


def run_script(*argv) -> int:
    spec = importlib.util.spec_from_file_location("real_data_table", REPO / "scripts/real_data_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # the script itself, not only the library: its imports must work
    return mod.main([str(a) for a in argv])


def toy(prefix, n_per_class=6, recs=2, segs=4):
    """Subjects, recordings and a segment index."""
    subjects, recordings, index = [], [], []
    for cls in CLASSES:
        for s in range(n_per_class):
            sid = f"{prefix}{cls[:3]}{s}"
            subjects.append({"subject_id": sid, "diagnosis": cls})
            for r in range(recs):
                rid = f"{sid}_r{r}"
                recordings.append({"recording_id": rid, "subject_id": sid, "location": ("proximal", "distal")[r]})
                index += [{"segment": len(index), "recording_id": rid, "subject_id": sid, "diagnosis": cls}
                          for _ in range(segs)]
    return pd.DataFrame(subjects), pd.DataFrame(recordings), pd.DataFrame(index)


def predictions(index, roles, skill, seed):
    """Segment scores in the training stage's predictions.tsv format (nemg.baseline.PREDICTION_COLUMNS) for the
    val / test patients of each run; ``roles``: run_id -> subject_id -> role. Each patient's segments lean to its
    true class with probability ``skill``, else to another, so the arms differ and no metric is trivially 1."""
    rng = np.random.default_rng(seed)
    truth = index.drop_duplicates("subject_id").set_index("subject_id")["diagnosis"].map(CLASSES.index)
    lean = {s: t if rng.random() < skill else (t + rng.integers(1, 3)) % 3 for s, t in truth.items()}
    frames = []
    for run_id, role in roles.items():
        seg = index[index["subject_id"].map(role).isin(["val", "test"])]
        p = rng.dirichlet(np.ones(3), len(seg))
        p[np.arange(len(seg)), seg["subject_id"].map(lean).to_numpy()] += 0.5
        p /= p.sum(axis=1, keepdims=True)
        frames.append(pd.DataFrame({"run_id": run_id, "segment": seg["segment"].to_numpy(),
                                    "recording_id": seg["recording_id"].to_numpy(),
                                    "subject_id": seg["subject_id"].to_numpy(),
                                    "role": seg["subject_id"].map(role).to_numpy(),
                                    **{c: p[:, j] for j, c in enumerate(PROB_COLS)}}))
    return pd.concat(frames, ignore_index=True)[bl.PREDICTION_COLUMNS]


def evaluate_arm_like_the_dag(pred, subjects, recordings, folds, out_dir):
    """What rules vote + evaluate (and baseline_vote + baseline_evaluate) write for one arm."""
    pp = ev.patient_predictions(pred, subjects, recordings, methods=[METHOD])
    arm = ev.evaluate_arm(pp, ev.replicate_of(folds), n_boot=N_BOOT, seed=0)
    for key, name in (("per_run", "per_run_metrics"), ("consensus", "patient_consensus"),
                      ("bootstrap", "bootstrap_ci")):
        write_table(arm[key], out_dir / f"{name}.tsv")
    return arm["per_run"], arm["consensus"], arm["bootstrap"]


def bench(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t100.0\n")


def git(root, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()


def build_cv(root, cohort, prefix, arms, seed):
    """``arms``: model_comparison name -> (folder, skill); a comparison table when there is more than one."""
    subjects, recordings, index = toy(prefix)
    folds = make_folds(subjects, seeds=[0], schemes=["nested"], outer=2, inner=2)
    roles = {r: g.set_index("subject_id")["role"] for r, g in folds.groupby("run_id")}
    tables = {}
    for k, (name, (folder, skill)) in enumerate(arms.items()):
        tables[name] = evaluate_arm_like_the_dag(predictions(index, roles, skill, seed + k), subjects, recordings,
                                                 folds, root / folder)
    if len(arms) > 1:
        table = bl.model_comparison({n: (t[0], t[2]) for n, t in tables.items()}, METHOD)
        write_table(table, root / f"results/evaluate/{cohort}/model_comparison.tsv")
    return subjects, recordings, index, folds


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    """n2001: nEMGNet + two baselines + a fourth arm, external validation on messekher2023 (as recorded and
    calibrated); simulated: nEMGNet alone (baseline disabled)."""
    from nemg.external import SCHEME, external_split

    root = tmp_path_factory.mktemp("repo")
    (root / "config.yaml").write_text(f"evaluate:\n  primary_method: {METHOD}\n")
    (root / "src").mkdir()
    (root / "src/code.py").write_text("x = 1\n")
    (root / "README.md").write_text(README)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "fixture")

    subj_a, rec_a, idx_a, folds = build_cv(root, "n2001", "a_", {
        "nEMGNet": ("results/evaluate/n2001", 0.5),
        "baseline_logreg": ("results/baseline/n2001/logreg", 0.8),
        "baseline_rf": ("results/baseline/n2001/rf", 0.7),
        "combined_rf": ("results/evaluate/n2001/combined_rf", 0.6)}, seed=1)
    build_cv(root, "simulated", "s_", {"nEMGNet": ("results/evaluate/simulated", 0.6)}, seed=2)

    # external validation n2001 -> messekher2023 (and its .rms variant), as rules external_* write it
    subj_b, rec_b, idx_b = toy("b_", n_per_class=5)
    split = external_split(subj_a, seeds=[0, 1], val_fraction=0.34)
    roles = {r: pd.concat([g.set_index("subject_id")["role"], pd.Series("test", index=subj_b["subject_id"])])
             for r, g in split.groupby("run_id")}
    both = pd.concat([idx_a, idx_b.assign(segment=idx_b["segment"] + len(idx_a))], ignore_index=True)
    arms = {}
    for k, (arm, skill) in enumerate((("nemgnet", 0.4), ("logreg", 0.6), ("rf", 0.5))):
        pp = ev.external_patient_predictions(predictions(both, roles, skill, 10 + k), subj_a, rec_a, subj_b, rec_b,
                                             methods=[METHOD])
        arms[arm] = ev.evaluate_arm(pp, SCHEME, n_boot=N_BOOT, seed=0)
    summaries = []
    # the calibrated variant reuses the uncalibrated one's predictions: only the rows' labels differ, which is
    # all the table reads of them
    for test, cal, gain in (("messekher2023", "none", 1.0), ("messekher2023.rms", "median_rms", 0.25)):
        summaries += [ev.external_summary_row("n2001", test, arm, res, METHOD, calibration=cal, gain=gain)
                      for arm, res in arms.items()]
        d = root / f"results/external/n2001/{test}"
        d.mkdir(parents=True)
        pd.concat([r["consensus"].assign(model=a) for a, r in arms.items()]).to_csv(
            d / "patient_consensus.tsv", sep="\t", index=False, float_format="%.6g")
    pd.DataFrame(summaries).to_csv(root / "results/external/n2001/external_validation.tsv", sep="\t", index=False,
                                   float_format="%.6g")

    for run in folds["run_id"].unique():
        bench(root / f"benchmarks/train/n2001/{run}.tsv", 10.0)
    bench(root / "benchmarks/train/n2001/nested_s9_o0_i0.tsv", 1000.0)  # stale: a run of an earlier config
    bench(root / "benchmarks/baseline/n2001/features.tsv", 2.5)
    bench(root / "benchmarks/baseline/n2001/logreg_predictions.tsv", 1.5)
    bench(root / "benchmarks/baseline/n2001/rf_predictions.tsv", 4.0)
    for s in (0, 1):
        bench(root / f"benchmarks/external/n2001/train_ext_s{s}.tsv", 30.0)
        bench(root / f"benchmarks/external/n2001/messekher2023_predict_ext_s{s}.tsv", 5.0)
    bench(root / "benchmarks/external/n2001/messekher2023.rms_predict_ext_s0.tsv", 5.0)  # s1's is missing
    bench(root / "benchmarks/external/n2001/messekher2023_logreg_predictions.tsv", 3.0)
    # simulated: no benchmark files at all
    return root


@pytest.fixture
def root(fixture_root, tmp_path):
    dst = tmp_path / "repo"
    shutil.copytree(fixture_root, dst)
    return dst


def primary(df):
    return df[(df["method"] == METHOD) & (~df["with_location"].astype(bool))]


def independent(cons):
    """Accuracy, macro F1 and per-class recall of consensus calls, mean over replicates, without nemg."""
    acc, f1, rec = [], [], {c: [] for c in CLASSES}
    for _, g in primary(cons).groupby("replicate"):
        acc.append((g["predicted"] == g["diagnosis"]).mean())
        f1.append(f1_score(g["diagnosis"], g["predicted"], labels=list(CLASSES), average="macro", zero_division=0))
        for c in CLASSES:
            rec[c].append((g.loc[g["diagnosis"] == c, "predicted"] == c).mean())
    return np.mean(acc), np.mean(f1), {c: np.mean(v) for c, v in rec.items()}


def row(tsv, dataset, model, variant):
    r = tsv[(tsv["dataset"] == dataset) & (tsv["model"] == model) & (tsv["variant"] == variant)]
    assert len(r) == 1, (dataset, model, variant)
    return r.iloc[0]


def read(path):
    return pd.read_csv(path, sep="\t", dtype={"subject_id": str, "replicate": str})


def test_rows_values_and_wall_times(root):
    out = root / "docs/results/real_data.tsv"
    assert run_script("--root", root, "--cohorts", "n2001", "simulated") == 0
    # str: a short hash can be all digits (8366838), which pandas would read as a number
    tsv = pd.read_csv(out, sep="\t", dtype={"commit": str})
    head = git(root, "rev-parse", "--short", "HEAD")
    assert list(tsv.columns) == ["dataset", "model", "variant", "method", "n_patients", "n_runs", "accuracy",
                                 "accuracy_ci_low", "accuracy_ci_high", "macro_f1", "recall_normal",
                                 "recall_myopathy", "recall_neuropathy", "amplitude_gain", "wall_s", "commit",
                                 "cpu"]
    assert list(zip(tsv["dataset"], tsv["model"], tsv["variant"])) == [
        ("n2001", m, "cv") for m in ("nemgnet", "qemg_logreg", "qemg_rf", "combined_rf")] + [
        ("n2001", m, f"external:{t}") for t in ("messekher2023", "messekher2023.rms")
        for m in ("nemgnet", "qemg_logreg", "qemg_rf")] + [("simulated", "nemgnet", "cv")]
    assert (tsv["commit"] == head).all() and (tsv["method"] == METHOD).all()
    assert (tsv["cpu"] == cpu_info()["label"]).all()  # no manifest: a run made here
    assert tsv["accuracy"].nunique() >= 4 and tsv["accuracy"].max() < 1  # arms differ: a mix-up would show

    for model, folder in (("nemgnet", "results/evaluate/n2001"), ("qemg_rf", "results/baseline/n2001/rf"),
                          ("combined_rf", "results/evaluate/n2001/combined_rf"),
                          ("nemgnet", "results/evaluate/simulated")):
        dataset = folder.split("/")[2]
        r = row(tsv, dataset, model, "cv")
        acc, f1, rec = independent(read(root / folder / "patient_consensus.tsv"))
        boot = primary(read(root / folder / "bootstrap_ci.tsv")).set_index("metric")
        assert r["accuracy"] == pytest.approx(acc, abs=1e-6)
        assert r["macro_f1"] == pytest.approx(f1, abs=1e-6)
        assert (r["accuracy_ci_low"], r["accuracy_ci_high"]) == pytest.approx(
            (boot.loc["accuracy", "boot_low"], boot.loc["accuracy", "boot_high"]), abs=1e-6)
        assert [r[f"recall_{c}"] for c in CLASSES] == pytest.approx([rec[c] for c in CLASSES], abs=1e-6)
        assert r["n_patients"] == 18 and r["n_runs"] == 4 and np.isnan(r["amplitude_gain"])

    ext = read(root / "results/external/n2001/messekher2023.rms/patient_consensus.tsv")
    for arm, model in (("nemgnet", "nemgnet"), ("rf", "qemg_rf")):
        r = row(tsv, "n2001", model, "external:messekher2023.rms")
        acc, f1, rec = independent(ext[ext["model"] == arm])
        assert (r["accuracy"], r["macro_f1"]) == pytest.approx((acc, f1), abs=1e-6)
        assert [r[f"recall_{c}"] for c in CLASSES] == pytest.approx([rec[c] for c in CLASSES], abs=1e-6)
        assert r["n_patients"] == 15 and r["n_runs"] == 2 and r["amplitude_gain"] == 0.25
        assert r["accuracy_ci_low"] <= r["accuracy"] <= r["accuracy_ci_high"]

    n2001 = tsv[tsv["dataset"] == "n2001"]
    wall = {(m, v): w for m, v, w in zip(n2001["model"], n2001["variant"], n2001["wall_s"])}
    assert wall[("nemgnet", "cv")] == 40.0  # four runs; the stale run's 1000 s is not one of them
    assert wall[("qemg_logreg", "cv")] == 4.0 and wall[("qemg_rf", "cv")] == 6.5
    assert wall[("combined_rf", "cv")] == 46.5  # its CNN runs and its QEMG model's jobs
    assert wall[("nemgnet", "external:messekher2023")] == 70.0
    assert wall[("qemg_logreg", "external:messekher2023")] == 3.0
    assert np.isnan(wall[("nemgnet", "external:messekher2023.rms")])  # one prediction job's file is missing
    assert np.isnan(wall[("qemg_rf", "external:messekher2023")])
    assert np.isnan(row(tsv, "simulated", "nemgnet", "cv")["wall_s"])


def test_external_job_time_counts_the_networks_that_scored_the_cohort(root):
    """With two sets of external networks (models/, models_pretrained/) a test cohort's job time sums the training
    of the set its prediction jobs' logs name; without logs (older runs) models/'s."""
    bench_dir, logs = root / "benchmarks/external/n2001", root / "logs/external/n2001"
    for s in (0, 1):
        bench(bench_dir / f"train_pretrained_ext_s{s}.tsv", 100.0)
    out = root / "docs/results/real_data.tsv"

    def wall():
        assert run_script("--root", root, "--cohorts", "n2001") == 0
        tsv = pd.read_csv(out, sep="\t", dtype={"commit": str})
        return row(tsv, "n2001", "nemgnet", "external:messekher2023")["wall_s"]

    assert wall() == 70.0  # no logs: train_ext_s*
    logs.mkdir(parents=True)
    for s in (0, 1):
        (logs / f"messekher2023_predict_ext_s{s}.log").write_text(
            f"INFO root: network: results/external/n2001/models/ext_s{s}/best.pt\n")
    assert wall() == 70.0
    for s in (0, 1):
        (logs / f"messekher2023_predict_ext_s{s}.log").write_text(
            f"INFO root: network: results/external/n2001/models_pretrained/ext_s{s}/best.pt\n")
    assert wall() == 210.0  # 2 x 100 s of training + 2 x 5 s of scoring


def test_readme_blocks_are_regenerated_from_the_tsv_and_idempotent(root):
    readme = root / "README.md"
    assert run_script("--root", root, "--cohorts", "n2001", "simulated") == 0
    first, tsv_first = readme.read_text(), (root / "docs/results/real_data.tsv").read_text()
    assert run_script("--root", root, "--cohorts", "n2001", "simulated") == 0
    assert readme.read_text() == first
    assert (root / "docs/results/real_data.tsv").read_text() == tsv_first

    # everything outside the markers is untouched
    outside = first.split("<!-- real-data-table:begin -->")[0] + first.split("<!-- real-data-table:end -->")[1]
    assert "stale table" not in first
    for text in ("# toy\n\nintro stays\n\n## Results on real public data\n", "prose between stays", "tail stays"):
        assert text in outside
    real = first.split("<!-- real-data-table:begin -->")[1].split("<!-- real-data-table:end -->")[0]
    default = first.split("<!-- default-run-table:begin -->")[1].split("<!-- default-run-table:end -->")[0]
    assert "| n2001 |" in real and "| simulated |" not in real
    assert "| simulated |" in default and "| n2001 |" not in default

    tsv = pd.read_csv(root / "docs/results/real_data.tsv", sep="\t", dtype={"commit": str})
    for _, r in tsv.iterrows():
        cell = f"{r['accuracy']:.3f} ({r['accuracy_ci_low']:.3f}–{r['accuracy_ci_high']:.3f}) | {r['macro_f1']:.3f}"
        block = default if r["dataset"] == "simulated" else real
        assert cell in block
    line = next(ln for ln in real.splitlines() if "external → messekher2023.rms" in ln and "| nEMGNet |" in ln)
    assert "(amplitude × 0.25)" in line and line.endswith("| — |")
    assert "| 1 min 10 s |" in next(ln for ln in real.splitlines()
                                    if "external → messekher2023 |" in ln and "| nEMGNet |" in ln)


def test_partial_cohort_is_an_error_naming_the_missing_files(root, caplog):
    # a baseline evaluated, its CNN not (yet): no rows from half a run
    shutil.copytree(root / "results/baseline/n2001/logreg", root / "results/baseline/messekher2023/logreg")
    before = (root / "README.md").read_text()
    assert run_script("--root", root, "--cohorts", "n2001", "messekher2023") == 1
    assert "results/evaluate/messekher2023/patient_consensus.tsv" in caplog.text
    assert "results/evaluate/messekher2023/model_comparison.tsv" in caplog.text
    assert not (root / "docs/results/real_data.tsv").exists() and (root / "README.md").read_text() == before

    # external validation begun but its table not written
    caplog.clear()
    (root / "results/external/n2001/external_validation.tsv").unlink()
    assert run_script("--root", root, "--cohorts", "n2001") == 1
    assert "results/external/n2001/external_validation.tsv" in caplog.text


def test_missing_cohort_is_skipped_and_other_rows_are_kept(root, caplog):
    out = root / "docs/results/real_data.tsv"
    assert run_script("--root", root, "--cohorts", "n2001", "simulated", "emgdb") == 0
    assert "emgdb: no model outputs" in caplog.text
    # a later call for one data set keeps the other's rows; --fresh drops them
    assert run_script("--root", root, "--cohorts", "n2001") == 0
    assert "simulated" in set(pd.read_csv(out, sep="\t")["dataset"])
    assert run_script("--root", root, "--cohorts", "n2001", "--fresh") == 0
    assert set(pd.read_csv(out, sep="\t")["dataset"]) == {"n2001"}
    # no data set with outputs: nothing is written over
    caplog.clear()
    assert run_script("--root", root, "--cohorts", "emgdb") == 1
    assert set(pd.read_csv(out, sep="\t")["dataset"]) == {"n2001"}


def test_malformed_markers_change_nothing(root, caplog):
    readme = root / "README.md"
    readme.write_text(README + "<!-- real-data-table:begin -->\n")
    assert run_script("--root", root, "--cohorts", "simulated") == 1
    assert "real-data-table:begin" in caplog.text and not (root / "docs/results/real_data.tsv").exists()


def test_commit_is_dirty_only_for_tracked_code_and_configs(root):
    from nemg.results_table import git_commit

    head = git(root, "rev-parse", "--short", "HEAD")
    (root / "README.md").write_text("edited\n")  # docs: not the code that made the numbers
    (root / "src/untracked.py").write_text("")
    assert git_commit(root) == head
    (root / "config.yaml").write_text("evaluate: {primary_method: argmax}\n")
    assert git_commit(root) == f"{head}-dirty"
    assert git_commit(root / "results") == f"{head}-dirty"  # any folder of the checkout
    assert git_commit(Path("/")) == "unknown"


def test_the_repository_readme_has_one_real_data_block():
    from nemg.results_table import COLUMNS, render_readme

    text = (REPO / "README.md").read_text()
    new, done = render_readme(text, pd.DataFrame(columns=COLUMNS), "docs/results/real_data.tsv")
    assert {"real-data-table", "default-run-table", "cross-cpu-table"} <= set(done)
    begin = new.index("<!-- real-data-table:begin -->")
    assert new.startswith("\n## Results on real public data", new.rindex("\n## ", 0, begin))  # in that section
    # outside the marked blocks nothing changes
    def outside(t):
        for name in ("real-data-table", "default-run-table", "default-table2", "cross-cpu-table"):
            if f"<!-- {name}:begin -->" in t:
                t = t.split(f"<!-- {name}:begin -->")[0] + t.split(f"<!-- {name}:end -->")[1]
        return t
    assert outside(new) == outside(text)


def test_library_imports_neither_torch_nor_snakemake():
    code = "import sys, nemg.results_table; sys.exit(bool({'torch', 'snakemake'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_default_run_table2_block_comes_from_the_runs_table2(root):
    """The README's default-run Table 2 is the simulated run's own table2.tsv, never typed by hand."""
    from nemg.evaluate import table2

    per_run = pd.DataFrame({"run_id": ["a", "b"], "method": ["logreg"] * 2, "with_location": [False] * 2,
                            **{m: [0.5, 0.7] for m in ("accuracy", "precision", "recall", "specificity", "f1")}})
    boot = pd.DataFrame([{"method": "logreg", "with_location": False, "metric": m, "estimate": 0.61,
                          "boot_low": 0.5, "boot_high": 0.72} for m in ("accuracy", "precision", "recall",
                                                                        "specificity", "f1")])
    t2 = table2(per_run, boot, "logreg", None)
    (root / "results/evaluate/simulated").mkdir(parents=True, exist_ok=True)
    t2.to_csv(root / "results/evaluate/simulated/table2.tsv", sep="\t", index=False)
    readme = root / "README.md"
    readme.write_text(readme.read_text() + "\n<!-- default-table2:begin -->\nold\n<!-- default-table2:end -->\n")
    assert run_script("--root", root, "--cohorts", "n2001", "simulated") == 0
    block = readme.read_text().split("<!-- default-table2:begin -->")[1].split("<!-- default-table2:end -->")[0]
    assert "old" not in block and "| accuracy |" in block and "0.610 (0.500–0.720)" in block
    assert "0.875 / 0.694" in block  # the published anchors beside it

    # the simulated run redone on another kind of CPU: its rows join the table, its Table 2 does not replace the
    # reference run's in the README
    manifest = root / "results/manifest/simulated/run.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(yaml.safe_dump({"git_commit": "abcdef0123456789", "cpu": {"label": "Other family 1"}}))
    boot["estimate"] = 0.99
    table2(per_run, boot, "logreg", None).to_csv(root / "results/evaluate/simulated/table2.tsv", sep="\t", index=False)
    assert run_script("--root", root, "--cohorts", "simulated") == 0
    again = readme.read_text().split("<!-- default-table2:begin -->")[1].split("<!-- default-table2:end -->")[0]
    assert again == block
    tsv = read_table_(root / "docs/results/real_data.tsv")
    assert set(tsv.loc[tsv["dataset"] == "simulated", "cpu"]) == {cpu_info()["label"], "Other family 1"}


def test_rows_carry_the_commit_of_their_own_run(root):
    """A cohort with a run manifest is stamped with the commit it was run at (dirty only for code edits), the
    others with the working tree's; the README footer names each data set's commit."""
    head = git(root, "rev-parse", "--short", "HEAD")
    manifest = root / "results/manifest/n2001/run.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(yaml.safe_dump({"git_commit": "abcdef0123456789", "git_dirty": True,
                                        "git_changes": [" M docs/notes.md", "?? results/x.tsv"]}))
    out = root / "docs/results/real_data.tsv"
    assert run_script("--root", root, "--cohorts", "n2001", "simulated") == 0
    tsv = pd.read_csv(out, sep="\t", dtype={"commit": str})
    assert set(tsv.loc[tsv["dataset"] == "n2001", "commit"]) == {"abcdef0"}  # docs edits do not make it dirty
    assert set(tsv.loc[tsv["dataset"] == "simulated", "commit"]) == {head}
    readme = (root / "README.md").read_text()
    # one per block; the manifest predates the CPU record, the simulated run has no manifest (made here)
    assert "location; commit `abcdef0` on unknown)" in readme
    assert f"location; commit `{head}` on {cpu_info()['label']})" in readme
    manifest.write_text(yaml.safe_dump({"git_commit": "abcdef0123456789", "git_changes": [" M src/nemg/x.py"]}))
    assert run_script("--root", root, "--cohorts", "n2001") == 0
    tsv = pd.read_csv(out, sep="\t", dtype={"commit": str})
    assert set(tsv.loc[tsv["dataset"] == "n2001", "commit"]) == {"abcdef0-dirty"}


def test_pretraining_jobs_count_in_the_networks_cost(root):
    """A run whose recorded config pretrained (results/manifest/<cohort>/config.yaml): every network started from
    the pretraining, so its jobs (both stages with simulated_first) are part of the nEMGNet and combined rows'
    job time; a run without the pretraining ignores leftover pretraining benchmarks."""
    def cv_wall():
        assert run_script("--root", root, "--cohorts", "n2001") == 0
        tsv = pd.read_csv(root / "docs/results/real_data.tsv", sep="\t", dtype={"commit": str})
        return {m: row(tsv, "n2001", m, "cv")["wall_s"] for m in ("nemgnet", "combined_rf", "qemg_rf")}

    bench(root / "benchmarks/pretrain/n2001/pretrain.tsv", 100.0)
    bench(root / "benchmarks/pretrain/n2001/simulated/pretrain.tsv", 7.0)
    assert cv_wall() == {"nemgnet": 40.0, "combined_rf": 46.5, "qemg_rf": 6.5}  # no manifest: not counted
    recorded = root / "results/manifest/n2001/config.yaml"
    recorded.parent.mkdir(parents=True, exist_ok=True)
    recorded.write_text(yaml.safe_dump({"pretrain": {"enabled": False}}))
    assert cv_wall()["nemgnet"] == 40.0
    recorded.write_text(yaml.safe_dump({"pretrain": {"enabled": True, "cohort": "configs/messekher.yaml"}}))
    assert cv_wall() == {"nemgnet": 140.0, "combined_rf": 146.5, "qemg_rf": 6.5}
    recorded.write_text(yaml.safe_dump({"pretrain": {"enabled": True, "simulated_first": True}}))
    assert cv_wall() == {"nemgnet": 147.0, "combined_rf": 153.5, "qemg_rf": 6.5}
    (root / "benchmarks/pretrain/n2001/simulated/pretrain.tsv").unlink()
    assert np.isnan(cv_wall()["nemgnet"])  # a missing job's time: no sum rather than an understated one


def test_a_run_on_another_cpu_is_kept_beside_the_reference(root, caplog):
    """The same data set run on two kinds of CPU is two measurements: both row sets stay in the TSV, the README's
    main table shows the CPU the data set was first recorded on, the cross-CPU block both, and a rerun on the
    reference CPU replaces its own rows without moving it from first place."""
    out, readme = root / "docs/results/real_data.tsv", root / "README.md"
    readme.write_text(README + "\n<!-- cross-cpu-table:begin -->\n<!-- cross-cpu-table:end -->\n")
    here = cpu_info()["label"]
    assert run_script("--root", root, "--cohorts", "n2001", "simulated") == 0
    block = readme.read_text().split("<!-- cross-cpu-table:begin -->")[1].split("<!-- cross-cpu-table:end -->")[0]
    assert "run on one kind of CPU so far" in block

    # the same outputs, now stamped by a manifest written on another machine, with other numbers
    manifest = root / "results/manifest/n2001/run.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(yaml.safe_dump({"git_commit": "abcdef0123456789", "cpu": {"label": "Other family 1 model 2"}}))
    boot = root / "results/evaluate/n2001/bootstrap_ci.tsv"
    b = pd.read_csv(boot, sep="\t")
    b.loc[b["metric"] == "accuracy", "estimate"] = 0.123
    b.to_csv(boot, sep="\t", index=False)
    assert run_script("--root", root, "--cohorts", "n2001") == 0
    tsv = read_table_(out)
    assert set(tsv.loc[tsv["dataset"] == "n2001", "cpu"]) == {here, "Other family 1 model 2"}
    assert (tsv.loc[tsv["dataset"] == "n2001", "cpu"].iloc[:10] == here).all()  # the reference first
    assert row(tsv[tsv["cpu"] == here], "n2001", "nemgnet", "cv")["accuracy"] != 0.123
    assert row(tsv[tsv["cpu"] != here], "n2001", "nemgnet", "cv")["accuracy"] == 0.123
    text = readme.read_text()
    main = text.split("<!-- real-data-table:begin -->")[1].split("<!-- real-data-table:end -->")[0]
    assert "0.123" not in main and sum("| n2001 |" in ln for ln in main.splitlines()) == 10
    cross = text.split("<!-- cross-cpu-table:begin -->")[1].split("<!-- cross-cpu-table:end -->")[0]
    line = next(ln for ln in cross.splitlines() if "| within-set CV | nEMGNet |" in ln)
    assert line.index(here) < line.index("Other family 1 model 2: 0.123 / ")  # the reference first
    assert "(`abcdef0`)" in line and "simulated" not in cross  # one CPU only: not compared
    assert not any("combined" in ln for ln in cross.splitlines()[2:-2])

    # a rerun on the reference CPU replaces its own rows and keeps its place
    manifest.unlink()
    b.loc[b["metric"] == "accuracy", "estimate"] = 0.456
    b.to_csv(boot, sep="\t", index=False)
    assert run_script("--root", root, "--cohorts", "n2001") == 0
    tsv = read_table_(out)
    assert len(tsv) == 21 and (tsv.loc[tsv["dataset"] == "n2001", "cpu"].iloc[:10] == here).all()
    assert row(tsv[tsv["cpu"] == here], "n2001", "nemgnet", "cv")["accuracy"] == 0.456
    assert row(tsv[tsv["cpu"] != here], "n2001", "nemgnet", "cv")["accuracy"] == 0.123
    # --fresh: only what this call produced
    assert run_script("--root", root, "--cohorts", "n2001", "--fresh") == 0
    assert set(read_table_(out)["cpu"]) == {here}


def test_cpu_of_a_manifest_without_one_and_an_older_table(root, caplog):
    out = root / "docs/results/real_data.tsv"
    manifest = root / "results/manifest/n2001/run.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(yaml.safe_dump({"git_commit": "abcdef0123456789"}))  # written before the CPU was recorded
    assert run_script("--root", root, "--cohorts", "n2001") == 0
    assert set(read_table_(out)["cpu"]) == {"unknown"}  # not this machine's: the run may have been made elsewhere
    assert run_script("--root", root, "--cohorts", "n2001", "--fresh", "--cpu", "AMD family 25") == 0
    assert set(read_table_(out)["cpu"]) == {"AMD family 25"}
    manifest.write_text(yaml.safe_dump({"git_commit": "abcdef0123456789", "cpu": {"label": "Intel family 6 model 1"}}))
    assert run_script("--root", root, "--cohorts", "n2001", "--cpu", "AMD family 25") == 0
    assert set(read_table_(out)["cpu"]) == {"AMD family 25", "Intel family 6 model 1"}  # the record wins
    # a table written before the cpu column: an error naming it, nothing written over
    old = read_table_(out).drop(columns="cpu")
    old.to_csv(out, sep="\t", index=False)
    before = out.read_text()
    assert run_script("--root", root, "--cohorts", "n2001") == 1
    assert "lacks column(s) cpu" in caplog.text and out.read_text() == before


def read_table_(path):
    from nemg.results_table import read_table

    return read_table(path)


def test_tables_of_another_checkouts_run_name_the_tsv_as_the_readme_sees_it(root, tmp_path):
    """--root another checkout's run, --out / --readme this one's: the footers name the TSV relative to the README."""
    here = tmp_path / "here"
    (here / "docs/results").mkdir(parents=True)
    (here / "README.md").write_text(README)
    assert run_script("--root", root, "--cohorts", "n2001", "--out", here / "docs/results/real_data.tsv",
                      "--readme", here / "README.md") == 0
    text = (here / "README.md").read_text()
    assert "from `docs/results/real_data.tsv` (stage 2" in text and str(tmp_path) not in text
    assert not (root / "docs/results/real_data.tsv").exists()


def test_variant_labels_name_the_calibration_factor_and_the_polarity():
    from nemg.results_table import _fmt_variant

    nan = float("nan")
    assert _fmt_variant({"variant": "cv", "amplitude_gain": nan}) == "within-set CV"
    assert _fmt_variant({"variant": "external:n2001", "amplitude_gain": nan}) == "external → n2001"
    assert _fmt_variant({"variant": "external:n2001.rms", "amplitude_gain": 8.4}) == \
        "external → n2001.rms (amplitude × 8.4)"
    assert _fmt_variant({"variant": "external:n2001.rmsp", "amplitude_gain": -8.4}) == \
        "external → n2001.rmsp (amplitude × 8.4, polarity inverted)"
    assert _fmt_variant({"variant": "external:n2001.rmsp", "amplitude_gain": 8.4}) == \
        "external → n2001.rmsp (amplitude × 8.4, polarity kept)"
