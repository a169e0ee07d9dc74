"""Spectral equalisation of an external test cohort: a label-free calibration richer than one gain (measured).

`external.amplitude_calibration: median_rms` scales a test cohort by one factor. An amplifier chain is a gain
AND a frequency response (needle, filters, cable), so this benchmark tries the next step: one zero-phase FIR
filter per test cohort whose magnitude is the square root of the ratio of the two cohorts' median log power
spectra (Welch, per recording, median over recordings; no diagnosis is used), smoothed, flat below 20 Hz and
above 4 kHz, its shape kept within 20 dB of its level, and interpolated across the mains band (30-80 Hz) so it
neither adds nor removes hum.

It reads a finished external DAG run (`snakemake external --configfile <config>`): the resampled signals of
both cohorts, the externally trained networks (`ext_s<seed>/best.pt`), the QEMG features of the training
cohort and the split. It filters the test cohort's resampled signals, cuts them into the run's windows, scores
them with every network and with both QEMG models (fit on the same training patients), votes with the DAG's
stage 2 and evaluation, and prints one row per calibration and model: consensus accuracy, macro F1,
per-class recall (the table holds the whole external_validation.tsv row, CIs included).
``median_rms`` is recomputed the same way as a check against the DAG's own table.

    python benchmarks/external_equalise.py --configfile configs/messekher.yaml --test n2001

``--gains 1 2 3`` also scores the test cohort scaled by each fixed factor (calibrations ``gain_1``, ...): how
far every model's calls move with the one number the median-RMS calibration estimates (a negative factor also
inverts the test cohort's polarity). A diagnostic, not a
calibration: a factor picked from such a table would be picked on the test patients. ``--no-spectrum`` skips
the equaliser.

Writes its stores under results/ablation/external_equalise/<train>_<test>/ (not read by the DAG) and appends
its rows to results/ablation/external_equalise.tsv.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MAINS_HZ = (30.0, 80.0)     # 50 and 60 Hz lines with their Welch (Hann) leakage of +-2 bins
FLAT_BELOW_HZ = 20.0        # below: drift and high-pass filters differ, too few Welch bins to trust
FLAT_ABOVE_HZ = 4000.0      # above: the resampler's anti-alias roll-off, not the recording chain
NPERSEG = 1024              # ~10 Hz bins at 10 kHz
MAX_SHAPE_DB = 20.0         # largest correction of the spectrum's shape, in dB of power, either way
TAPS = 1023                 # odd: a symmetric, zero-phase filter centred on a sample


def recording_spectra(signals: str | Path, index: str | Path, nperseg: int = NPERSEG):
    """(index row, frequencies, Welch power spectrum) of every recording of a signal store with at least
    ``nperseg`` samples, mean removed."""
    from scipy.signal import welch

    from nemg.store import iter_signals, read_signal_store

    arr, idx = read_signal_store(signals, index)
    for row, x in iter_signals(arr, idx):
        if len(x) >= nperseg:
            f, p = welch(np.asarray(x, np.float64) - float(np.mean(x)), fs=float(row["fs_hz"]), nperseg=nperseg)
            yield row, f, p


def median_log_spectrum(signals: str | Path, index: str | Path,
                        nperseg: int = NPERSEG) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, median over recordings of each recording's Welch log power spectrum); one sampling rate."""
    rates = sorted(set(pd.read_csv(index, sep="\t")["fs_hz"].astype(float)))
    if len(rates) != 1:
        raise ValueError(f"{index}: recordings at several sampling rates {rates}")
    spectra = [(f, np.log(p + 1e-12)) for _, f, p in recording_spectra(signals, index, nperseg)]
    if not spectra:
        raise ValueError(f"{signals}: no recording of at least {nperseg} samples to estimate a spectrum from")
    return spectra[0][0], np.median(np.array([lp for _, lp in spectra]), axis=0)


def class_spectra(signals: str | Path, index: str | Path, nperseg: int = NPERSEG) -> pd.DataFrame:
    """Per diagnosis: median spectral centroid and power at 1 and 2 kHz relative to 100-300 Hz (dB), over
    recordings. Describes the cohorts only; the equaliser never sees a diagnosis."""
    rows = []
    for row, f, p in recording_spectra(signals, index, nperseg):
        ref = p[(f >= 100) & (f <= 300)].mean()
        rows.append({"diagnosis": row["diagnosis"], "centroid_hz": float((f * p).sum() / p.sum()),
                     "db_1khz": 10 * np.log10(p[(f >= 900) & (f <= 1100)].mean() / ref),
                     "db_2khz": 10 * np.log10(p[(f >= 1800) & (f <= 2200)].mean() / ref)})
    return pd.DataFrame(rows).groupby("diagnosis").median().round(1)


def equaliser(f: np.ndarray, train_log: np.ndarray, test_log: np.ndarray, *, smooth_bins: int = 5) -> np.ndarray:
    """Amplitude response bringing the test cohort's median spectrum to the training cohort's."""
    d = np.asarray(train_log, dtype=np.float64) - np.asarray(test_log, dtype=np.float64)  # log power ratio
    mains = (f > MAINS_HZ[0]) & (f < MAINS_HZ[1])
    d[mains] = np.interp(f[mains], f[~mains], d[~mains])
    half = smooth_bins // 2
    d = np.convolve(np.pad(d, half, mode="edge"), np.ones(smooth_bins) / smooth_bins, mode="valid")
    lo, hi = np.searchsorted(f, FLAT_BELOW_HZ), np.searchsorted(f, FLAT_ABOVE_HZ)
    d[:lo], d[hi:] = d[lo], d[hi - 1]
    # the shape (not the level) at most MAX_SHAPE_DB from its median: where the test cohort's chain left nothing
    # (a steep filter), a larger boost restores no signal, only noise
    level = np.median(d[lo:hi])
    d = level + np.clip(d - level, -MAX_SHAPE_DB * np.log(10) / 10, MAX_SHAPE_DB * np.log(10) / 10)
    return np.exp(d / 2)


def fir_from_response(f: np.ndarray, amplitude: np.ndarray, fs: float, taps: int = TAPS) -> np.ndarray:
    """A linear-phase FIR (odd length, applied centred: zero phase) with the given amplitude response."""
    n = taps + 1
    grid = np.fft.rfftfreq(n, 1 / fs)
    h = np.fft.irfft(np.interp(grid, f, amplitude), n)
    return np.roll(h, n // 2)[1:] * np.hanning(taps)


def equalise_store(signals, index, taps: np.ndarray, out_signals, out_index) -> pd.DataFrame:
    """Filter every recording of a signal store (mean removed, same length) into a new store."""
    from scipy.signal import fftconvolve

    from nemg.store import iter_signals, read_signal_store, write_signal_store

    arr, idx = read_signal_store(signals, index)
    out = [fftconvolve(np.asarray(x, np.float64) - float(np.mean(x)), taps, mode="same").astype(np.float32)
           for _, x in iter_signals(arr, idx)]
    return write_signal_store(out, idx.drop(columns=["start", "n_samples", "duration_s"], errors="ignore"),
                              out_signals, out_index)


def calibration_plan(gains, spectrum: bool = True) -> list[tuple[str, float | None]]:
    """(calibration name, fixed factor or None) of every variant to score: the DAG's median-RMS factor (always:
    it checks the run against the DAG's table), the equaliser, then each fixed factor as ``gain_<factor>``."""
    plan = [("median_rms", None)] + ([("spectrum", None)] if spectrum else [])
    for g in gains:
        if not (np.isfinite(g) and g != 0):  # a negative factor also inverts the polarity
            raise SystemExit(f"--gains: a factor must be finite and non-zero, got {g}")
        name = f"gain_{g:g}"
        if name not in dict(plan):
            plan.append((name, float(g)))
    return plan


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", required=True, help="the training run's config, applied on top of config.yaml")
    ap.add_argument("--test", required=True, help="an external.cohorts name of that config")
    ap.add_argument("--table", default=str(ROOT / "results/ablation/external_equalise.tsv"))
    ap.add_argument("--gains", nargs="*", type=float, default=[], help="fixed factors to score the test cohort at")
    ap.add_argument("--no-spectrum", action="store_true", help="leave out the spectral equaliser")
    args = ap.parse_args(argv)
    plan = calibration_plan(args.gains, spectrum=not args.no_spectrum)

    from nemg.baseline import baseline_external_predictions, classifier_params
    from nemg.config import load_config, stage2_settings
    from nemg.evaluate import evaluate_arm, external_patient_predictions, external_summary_row, read_predictions
    from nemg.external import SCHEME, cohort_key, median_frame_rms
    from nemg.features import extract_features, read_features
    from nemg.predict import predict_cohort
    from nemg.segment import read_gain, segment_store

    cfg = load_config(ROOT / "config.yaml", args.configfile)
    train = cfg["cohort"]["name"]
    if args.test not in cfg["external"]["cohorts"]:
        raise SystemExit(f"{args.configfile}: no external cohort {args.test!r} "
                         f"(it has {list(cfg['external']['cohorts'])})")
    key = cohort_key(args.test, train)
    xv = ROOT / "results/external" / train
    res = lambda stage, coh, name: ROOT / "results" / stage / coh / name  # noqa: E731
    need = [res("resample", train, "signals.npy"), res("resample", key, "signals.npy"), xv / "split.tsv",
            res("baseline", train, "features.npy")]
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        raise SystemExit(f"run `snakemake external --configfile {args.configfile}` first; missing: {missing}")
    seg = cfg["preprocess"]["segment"]
    ev = cfg["evaluate"]
    stage2 = stage2_settings(ev)
    read = lambda p: pd.read_csv(p, sep="\t", dtype={"recording_id": str, "subject_id": str})  # noqa: E731
    train_subjects, train_recordings = (read(res("cohort", train, f"{s}.tsv")) for s in ("subjects", "recordings"))
    test_subjects, test_recordings = (read(res("cohort", key, f"{s}.tsv")) for s in ("subjects", "recordings"))
    runs = sorted(p.name for p in (xv / "models").iterdir() if (p / "best.pt").exists())
    train_x, names = read_features(res("baseline", train, "features.npy"), res("baseline", train, "feature_names.txt"))
    train_index = read(res("segment", train, "segments_index.tsv"))
    split = pd.read_csv(xv / "split.tsv", sep="\t", dtype={"subject_id": str})
    train_sig = (res("resample", train, "signals.npy"), res("resample", train, "signals_index.tsv"))
    test_sig = (res("resample", key, "signals.npy"), res("resample", key, "signals_index.tsv"))
    fs = float(read(test_sig[1])["fs_hz"].iloc[0])

    f, train_log = median_log_spectrum(*train_sig)
    _, test_log = median_log_spectrum(*test_sig)
    amp = equaliser(f, train_log, test_log)
    for name, sig in ((train, train_sig), (key, test_sig)):
        print(f"{name}, per diagnosis (medians over recordings):\n{class_spectra(*sig).to_string()}")
    print("equaliser (dB): " + ", ".join(f"{q:g} Hz {20 * np.log10(np.interp(q, f, amp)):+.1f}"
                                         for q in (20, 50, 100, 200, 500, 1000, 2000, 3000)))
    work = ROOT / "results/ablation/external_equalise" / f"{train}_{args.test}"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for calibration, fixed in plan:
        d = work / calibration
        d.mkdir(exist_ok=True)
        if fixed is not None:
            signals, gain = test_sig, fixed
        elif calibration == "spectrum":
            equalise_store(*test_sig, fir_from_response(f, amp, fs), d / "signals.npy", d / "signals_index.tsv")
            signals, gain = (d / "signals.npy", d / "signals_index.tsv"), 1.0
        else:
            # the DAG's own gain file where there is one (written to 6 digits: the same segments, to the bit)
            gain_file = xv / f"{args.test}.rms" / "amplitude_gain.tsv"
            gain = read_gain([gain_file]) if gain_file.exists() else \
                median_frame_rms(*train_sig) / median_frame_rms(*test_sig)
            signals = test_sig
        segment_store(*signals, seg["window_s"], seg["hop_s"], d / "segments.npy", d / "segments_index.tsv", gain=gain)
        seg_index = read(d / "segments_index.tsv")
        preds = []
        for run in runs:
            p = predict_cohort(xv / "models" / run / "best.pt", d / "segments.npy", d / "segments_index.tsv",
                               batch_size=256, device="cpu")
            preds += [p, read_predictions(xv / "models" / run / "predictions.tsv")]
        arms = {"nemgnet": pd.concat(preds, ignore_index=True)}
        test_x = extract_features(d / "segments.npy", d / "features.npy", d / "feature_names.txt", fs=fs,
                                  params=dict(cfg["baseline"]["features"]))
        for model in cfg["baseline"]["models"]:
            arms[model] = baseline_external_predictions(train_x, train_index, test_x, seg_index, split, model,
                                                        params=classifier_params(cfg["baseline"]),
                                                        predict_train=ev["stage2_fit_on"] == "train")
        for model, pr in arms.items():
            # the DAG's own external_vote and external_evaluate steps: the same row as external_validation.tsv
            pp = external_patient_predictions(pr, train_subjects, train_recordings, test_subjects, test_recordings,
                                              methods=(ev["primary_method"],), **stage2)
            tables = evaluate_arm(pp, SCHEME, n_boot=int(ev["n_bootstrap"]), seed=int(ev["seed"]))
            rows.append(external_summary_row(train, args.test, model, tables, ev["primary_method"],
                                             calibration=calibration, gain=gain))
        if fixed is not None:  # a sweep's stores are 290 MB each for N2001 and read by nothing else
            for name in ("segments.npy", "features.npy"):
                (d / name).unlink(missing_ok=True)
    out = pd.DataFrame(rows)
    shown = ["calibration", "gain", "model", "accuracy_consensus", "f1_consensus"] + \
        [c for c in out.columns if c.startswith("recall_")]
    print(out[shown].round(4).to_string(index=False))
    table = Path(args.table)
    old = pd.read_csv(table, sep="\t") if table.exists() else pd.DataFrame()
    if len(old):  # a rerun replaces its own calibrations' rows and keeps the others
        old = old[~((old["train_cohort"] == train) & (old["test_cohort"] == args.test)
                    & old["calibration"].isin(out["calibration"]))]
    pd.concat([old, out], ignore_index=True).to_csv(table, sep="\t", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
