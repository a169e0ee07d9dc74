"""Rule recording_timeline: S4 Fig's mispredicted patients, one recording each, segment probabilities over time."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import numpy as np
import pandas as pd

from nemg.evaluate import read_predictions
from nemg.labels import PROB_COLS
from nemg.plots import save
from nemg.review_plots import recording_segments, recording_timeline_figure
from nemg.store import read_signal_store

p = snakemake.params
s4 = pd.read_csv(snakemake.input.s4, sep="\t", dtype={"subject_id": str, "recording_id": str, "run_id": str})
index = pd.read_csv(snakemake.input.index, sep="\t", dtype={"subject_id": str, "recording_id": str})
signals, sig_index = read_signal_store(snakemake.input.signals, snakemake.input.signals_index)
sig_index = sig_index.set_index("recording_id")
predictions = read_predictions(snakemake.input.predictions)
items, rows = [], []
# S4 Fig's rank-0 segment is the one that favoured the wrong call most: its recording is the one shown
for _, ex in s4[s4["rank"] == 0].iterrows():
    rec = ex["recording_id"]
    if rec not in sig_index.index:
        raise ValueError(f"{snakemake.input.signals_index}: recording {rec} (from {snakemake.input.s4}) not found")
    seg = recording_segments(predictions, index, rec, None if ex["run_id"] == "mean of runs" else ex["run_id"])
    r = sig_index.loc[rec]
    x = np.asarray(signals[int(r["start"]):int(r["start"]) + int(r["n_samples"])])
    items.append({"signal": x, "segments": seg, **{k: ex[k] for k in ("subject_id", "diagnosis", "predicted",
                                                                     "confidence", "recording_id", "muscle",
                                                                     "location", "run_id")}})
    rows.append(seg.assign(subject_id=ex["subject_id"], recording_id=rec, run_id=ex["run_id"],
                           time_s=seg["offset_samples"] / p.fs_hz))
    logging.info("%s: recording %s, %d segments, mean p(%s) %.3f", ex["subject_id"], rec, len(seg), ex["predicted"],
                 seg[f"p_{ex['predicted']}"].mean())
cols = ["subject_id", "recording_id", "run_id", "segment", "offset_samples", "time_s", *PROB_COLS]
(pd.concat(rows)[cols] if rows else pd.DataFrame(columns=cols)).to_csv(snakemake.output.tsv, sep="\t", index=False,
                                                                       float_format="%.6g")
title = ("Where the call came from: one recording of each S4 Fig patient, its test segments' probabilities over "
         f"time ({p.cohort_note})")
save(recording_timeline_figure(items, p.fs_hz, p.window, title=title), [snakemake.output.png, snakemake.output.pdf])
