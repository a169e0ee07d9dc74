"""benchmarks/stage2_sweep.py: re-voting finished runs with another stage-2 setting or segment aggregate."""
import importlib.util
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
