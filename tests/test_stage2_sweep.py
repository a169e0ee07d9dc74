"""benchmarks/stage2_sweep.py: re-voting finished runs with another stage-2 setting or segment aggregate."""
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nemg.labels import PROB_COLS

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("stage2_sweep", REPO / "benchmarks" / "stage2_sweep.py")
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)


def _segments(rows):
    return pd.DataFrame([{"run_id": "r", "segment": i, "recording_id": "a", "subject_id": "s", "role": "test",
                          **dict(zip(PROB_COLS, p))} for i, p in enumerate(rows)])


def test_the_aggregates_disagree_where_one_confident_segment_meets_two_that_rule_its_class_out():
    preds = _segments([(0.9, 0.05, 0.05), (0.9, 0.05, 0.05), (1e-6, 0.5, 0.5 - 1e-6)])
    assert sweep.aggregated(preds, "mean") is preds
    mean = preds[PROB_COLS].mean().to_numpy()
    logmean = sweep.aggregated(preds, "logmean")[PROB_COLS].mean().to_numpy()
    share = sweep.aggregated(preds, "share")[PROB_COLS].mean().to_numpy()
    assert mean.argmax() == 0 and share.argmax() == 0  # two of three segments say normal
    assert logmean.argmax() != 0  # the third all but rules normal out: under a geometric mean that weighs most
    assert np.isfinite(logmean).all()  # a zero score is floored, not -inf
    np.testing.assert_allclose(share, [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(preds[PROB_COLS].to_numpy()[0], [0.9, 0.05, 0.05])  # the input is left alone
    with pytest.raises(ValueError, match="unknown aggregate 'median'"):
        sweep.aggregated(preds, "median")


def _tree(root: Path, rng: np.random.Generator):
    """Two replicates' worth of nothing: one nested seed, 2 outer x 1 inner runs, 12 patients, one recording each."""
    subjects = pd.DataFrame({"subject_id": [f"s{i:02d}" for i in range(12)],
                             "diagnosis": ["normal", "myopathy", "neuropathy"] * 4})
    recordings = pd.DataFrame({"recording_id": [f"{s}_a" for s in subjects["subject_id"]],
                               "subject_id": subjects["subject_id"], "location": "proximal"})
    for name, df in (("cohort/c/subjects.tsv", subjects), ("cohort/c/recordings.tsv", recordings)):
        (root / "results" / name).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(root / "results" / name, sep="\t", index=False)
    folds, diag = [], subjects.set_index("subject_id")["diagnosis"]
    for outer in range(2):
        run = f"nested_s0_o{outer}_i0"
        roles = {s: ("test" if i % 2 == outer else "val" if i % 4 < 2 else "train")
                 for i, s in enumerate(subjects["subject_id"])}
        folds += [{"scheme": "nested", "seed": 0, "repeat": 0, "outer": outer, "inner": 0, "run_id": run,
                   "subject_id": s, "diagnosis": diag[s], "role": r} for s, r in roles.items()]
        rows = []
        for s, r in roles.items():
            if r == "train":
                continue
            true = ["normal", "myopathy", "neuropathy"].index(diag[s])
            for k in range(6):
                p = rng.dirichlet(np.ones(3)) * 0.5
                p[true] += 0.5
                rows.append({"run_id": run, "segment": k, "recording_id": f"{s}_a", "subject_id": s, "role": r,
                             **dict(zip(PROB_COLS, p))})
        out = root / "results" / "ablation" / "c" / "v1" / run / "predictions.tsv"
        out.parent.mkdir(parents=True)
        pd.DataFrame(rows).to_csv(out, sep="\t", index=False)
    (root / "results" / "folds" / "c").mkdir(parents=True)
    pd.DataFrame(folds).to_csv(root / "results" / "folds" / "c" / "folds.tsv", sep="\t", index=False)


def test_the_sweep_prints_one_row_per_model_and_aggregate(tmp_path, capsys):
    _tree(tmp_path, np.random.default_rng(0))
    assert sweep.main(["c", "--root", str(tmp_path), "--c", "10", "--ablation", "v1",
                       "--aggregate", "mean", "logmean", "share"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| c |")]
    assert [line.split(" | ")[2] for line in lines] == ["mean", "logmean", "share"]
    # every segment leans to the true class by half its mass: each aggregate calls every patient right
    assert all(cell.startswith("1.000 / 1.000") for line in lines for cell in line.split(" | ")[3:5]), lines
    # without --aggregate the table keeps docs/evaluation.md's columns (no "segments")
    assert sweep.main(["c", "--root", str(tmp_path), "--c", "10", "--ablation", "v1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| data set | model | C = 10 | argmax (no fit) |" and len(out) == 2 + 1
    with pytest.raises(SystemExit, match="no \\*/predictions.tsv"):
        sweep.main(["c", "--root", str(tmp_path), "--ablation", "v2"])


def test_outer_fold_fit_and_ensemble_reduce_to_the_dags_vote_where_they_must(tmp_path, capsys):
    _tree(tmp_path, np.random.default_rng(1))
    # one inner run per outer fold: the pooled fit set is that run's own, so both fits give the same cells
    assert sweep.main(["c", "--root", str(tmp_path), "--c", "10", "--fit", "run", "outer", "--ablation", "v1"]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if "nEMGNet" in line]
    assert [r[2] for r in rows] == ["run", "outer"] and rows[0][3:] == rows[1][3:]
    # two copies of the same networks voted as one arm: the same consensus as either alone
    ablation = tmp_path / "results" / "ablation" / "c"
    shutil.copytree(ablation / "v1", ablation / "v1copy")
    assert sweep.main(["c", "--root", str(tmp_path), "--c", "10", "--ensemble", "--ablation", "v1", "v1copy"]) == 0
    both = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if "nEMGNet" in line]
    assert len(both) == 1 and "v1 + v1copy" in both[0][1] and both[0][2:] == rows[0][3:]
    with pytest.raises(SystemExit):
        sweep.main(["c", "--root", str(tmp_path), "--ensemble", "--ablation", "v1"])
    capsys.readouterr()


def test_the_outer_fold_fit_refuses_a_patient_validating_twice(tmp_path):
    _tree(tmp_path, np.random.default_rng(2))
    folds = pd.read_csv(tmp_path / "results/folds/c/folds.tsv", sep="\t")
    preds = pd.read_csv(next((tmp_path / "results/ablation/c/v1").glob("*o0_i0/predictions.tsv")), sep="\t")
    twin = folds[folds["run_id"] == "nested_s0_o0_i0"].assign(inner=1, run_id="nested_s0_o0_i1")
    subjects = pd.read_csv(tmp_path / "results/cohort/c/subjects.tsv", sep="\t")
    recordings = pd.read_csv(tmp_path / "results/cohort/c/recordings.tsv", sep="\t")
    with pytest.raises(ValueError, match="validates in two inner runs"):
        sweep.outer_fold_predictions(pd.concat([preds, preds.assign(run_id="nested_s0_o0_i1")]), subjects,
                                     recordings, pd.concat([folds, twin]), c=10.0)
