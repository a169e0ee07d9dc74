"""Polarity averaging at prediction time, measured on finished runs (docs/training.md, "Averaging each window
with its negative").

Scores every window of each run's predictions.tsv (validation and test) again, as recorded and turned over
(x -1), with the run's own best.pt, and votes three ways with the DAG's divide-and-vote (stage 2 from
config.yaml's evaluate: section): as recorded (reproduces the run's own table), the mean of the two
probabilities, and the turned-over windows alone. Nothing is written into the runs' folders.

    python benchmarks/flip_average.py --cohort messekher2023 --runs results/train/messekher2023
    python benchmarks/flip_average.py --cohort messekher2023 --runs results/ablation/messekher2023/<variant>
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from nemg.labels import PROB_COLS as COLS  # noqa: E402  (src/ on the path above)


def run_probabilities(best_pt: Path, store, rows: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of ``rows`` as recorded and turned over, with the run's bf16 setting."""
    from nemg.model import model_from_size
    from nemg.train import autocast

    ck = torch.load(best_pt, map_location="cpu", weights_only=False)
    net = model_from_size(ck["model_cfg"], store.window)
    net.load_state_dict(ck["state_dict"])
    net.eval()
    amp = bool((ck.get("train_cfg") or {}).get("bf16_cpu"))
    out, flipped = [], []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            x = torch.from_numpy(np.ascontiguousarray(store.x[rows[i:i + batch]])).unsqueeze(1)
            with autocast(x.device, amp):
                out.append(torch.softmax(net(x).float(), 1).numpy())
                flipped.append(torch.softmax(net(-x).float(), 1).numpy())
    return np.concatenate(out), np.concatenate(flipped)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--runs", required=True, type=Path, help="a folder of run folders with best.pt and predictions.tsv")
    args = ap.parse_args(argv)

    import ablation
    from nemg.evaluate import read_predictions
    from nemg.store import SegmentStore

    c = args.cohort
    store = SegmentStore.open(ROOT / f"results/segment/{c}/segments.npy", ROOT / f"results/segment/{c}/segments_index.tsv")
    folds = pd.read_csv(ROOT / f"results/folds/{c}/folds.tsv", sep="\t", dtype={"subject_id": str, "run_id": str})
    runs = sorted(p.parent.name for p in args.runs.glob("*/best.pt"))
    if not runs:
        raise SystemExit(f"{args.runs}: no run folders with a best.pt")
    tables = {"as recorded": [], "mean of x and -x": [], "-x alone": []}
    for r in runs:
        pred = read_predictions(args.runs / r / "predictions.tsv")
        p, pf = run_probabilities(args.runs / r / "best.pt", store, pred["segment"].to_numpy())
        gap = float(np.abs(p - pred[COLS].to_numpy()).max())
        if gap > 1e-3:  # another store or network than the run's: the comparison would mean nothing
            raise SystemExit(f"{args.runs / r}: its predictions.tsv differs from its best.pt's by {gap:.3g}")
        for name, probs in (("as recorded", pred[COLS].to_numpy()), ("mean of x and -x", 0.5 * (p + pf)),
                            ("-x alone", pf)):
            t = pred.copy()
            t[COLS] = probs
            tables[name].append(t)
    rows = []
    for name, parts in tables.items():
        pp = ablation.vote(c, pd.concat(parts, ignore_index=True))
        rows.append({"windows": name, **ablation.score(pp, folds[folds["run_id"].isin(runs)])})
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
