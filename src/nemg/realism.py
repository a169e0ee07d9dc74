"""Realism check of a (simulated) cohort: MUAP detection, per-class statistics, and a simple feature baseline.

The check treats the recordings as a clinician's quantitative-EMG software would: detect spikes, group them
into units by shape, average each unit's discharges into a MUAP and measure duration, amplitude, phases and
turns; count the units and their firing rates. A logistic regression on per-recording summaries then says how
separable the classes are (per recording and per patient, with patient-level cross-validation), which is what
the simulator's severities are calibrated against.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import butter, find_peaks, sosfiltfilt

from .labels import CLASS_INDEX, CLASSES

#: reference ranges from the design brief (concentric needle, the simulator's default)
REFERENCE = {
    "duration_ms": {"normal": "8-12", "myopathy": "5-8", "neuropathy": "12-20+"},
    "amplitude_uv": {"normal": "200-2000", "myopathy": "100-500", "neuropathy": "1000-5000"},
    "phases": {"normal": "2.6-3.5", "myopathy": "2.7+, more", "neuropathy": "4.0, more"},
    "polyphasic_pct": {"normal": "<=15-35", "myopathy": "30-60", "neuropathy": "30-70"},
    "firing_rate_hz": {"normal": "7.5-11 at onset", "myopathy": "normal", "neuropathy": "15-30"},
    "units_per_recording": {"normal": "~6", "myopathy": "many (full)", "neuropathy": "few"},
    "true_units_firing": {"normal": "", "myopathy": "more", "neuropathy": "fewer"},
}


@dataclass
class DetectionSettings:
    window_ms: tuple[float, float] = (-12.0, 18.0)  # around the spike's peak
    min_amplitude_uv: float = 80.0  # smaller spikes are too buried in background to measure
    noise_factor: float = 5.0  # detection threshold in robust noise SDs
    dead_time_ms: float = 3.0
    match_residual: float = 0.35  # normalised squared residual to join a unit
    match_halfwidth_ms: float = 2.0  # the spike part compared when sorting
    min_discharges: int = 8
    duration_threshold_uv: float = 15.0  # baseline departure defining MUAP start and end
    duration_gap_ms: float = 1.5  # components closer than this belong to one MUAP
    turn_uv: float = 25.0
    max_units: int = 40


def _segments(mask: np.ndarray) -> np.ndarray:
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return np.column_stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)])


def measure_muap(w: np.ndarray, fs: float, peak: int, s: DetectionSettings) -> dict:
    """Duration, amplitude, phases and turns of one averaged MUAP ``w`` (µV) whose main spike is at ``peak``."""
    edge = np.r_[w[: int(0.004 * fs)], w[-int(0.004 * fs):]]
    w = w - np.median(edge)
    # other units' discharges survive the averaging as a background; the baseline must clear it
    level = max(s.duration_threshold_uv, 4.0 * np.median(np.abs(edge - np.median(edge))) / 0.6745)
    segs = _segments(np.abs(w) > level)
    gap = int(s.duration_gap_ms * 1e-3 * fs)
    if segs.size == 0:
        return dict(duration_ms=np.nan, amplitude_uv=float(np.ptp(w)), phases=np.nan, turns=np.nan)
    k = int(np.clip(np.searchsorted(segs[:, 0], peak, side="right") - 1, 0, len(segs) - 1))
    lo, hi = k, k
    while lo > 0 and segs[lo, 0] - segs[lo - 1, 1] < gap:
        lo -= 1
    while hi < len(segs) - 1 and segs[hi + 1, 0] - segs[hi, 1] < gap:
        hi += 1
    a, b = int(segs[lo, 0]), int(segs[hi, 1])
    seg = w[a:b]
    sig = seg[np.abs(seg) > 0.5 * level]
    phases = 1 + int(np.sum(np.diff(np.sign(sig)) != 0)) if sig.size else 1
    # turns: direction changes with at least turn_uv excursion (hysteresis walk)
    turns, direction, ext = 0, 0, float(seg[0]) if seg.size else 0.0
    for v in seg[:: max(1, int(fs / 12000))]:
        if direction == 0:
            if abs(v - ext) > s.turn_uv:
                direction, ext = (1 if v > ext else -1), v
        elif direction * (v - ext) > 0:
            ext = v
        elif abs(v - ext) > s.turn_uv:
            turns, direction, ext = turns + 1, -direction, v
    return dict(duration_ms=(b - a) / fs * 1e3, amplitude_uv=float(np.ptp(seg)), phases=phases, turns=turns)


def detect_muaps(x: np.ndarray, fs: float, s: DetectionSettings | None = None) -> tuple[pd.DataFrame, int]:
    """Detect and sort MUAPs in one trimmed recording (µV). Returns one row per unit and the spike count."""
    s = s or DetectionSettings()
    x = np.asarray(x, float)
    hp = sosfiltfilt(butter(2, 300.0, "highpass", fs=fs, output="sos"), x)
    sigma = np.median(np.abs(hp)) / 0.6745
    thr = max(s.noise_factor * sigma, s.min_amplitude_uv / 2)
    pre, post = (int(v * 1e-3 * fs) for v in s.window_ms)
    peaks, _ = find_peaks(np.abs(hp), height=thr, distance=int(s.dead_time_ms * 1e-3 * fs))
    peaks = peaks[(peaks + pre >= 0) & (peaks + post < x.size)]
    if peaks.size == 0:
        return pd.DataFrame(), 0
    hw = int(s.match_halfwidth_ms * 1e-3 * fs)
    spikes = np.stack([hp[p - hw: p + hw: 2] for p in peaks])
    amp = np.ptp(spikes, axis=1)
    keep = amp >= s.min_amplitude_uv
    peaks, spikes, amp = peaks[keep], spikes[keep], amp[keep]
    order = np.argsort(-amp)
    templates: list[np.ndarray] = []
    members: list[list[int]] = []
    for i in order:
        v = spikes[i]
        if templates:
            t = np.stack(templates)
            res = np.sum((t - v) ** 2, axis=1) / np.sum(t**2, axis=1)
            j = int(res.argmin())
            if res[j] < s.match_residual:
                members[j].append(i)
                n = len(members[j])
                templates[j] = templates[j] + (v - templates[j]) / n
                continue
        if len(templates) < s.max_units:
            templates.append(v.copy())
            members.append([i])
    rows = []
    for mem in members:
        if len(mem) < s.min_discharges:
            continue
        pk = np.sort(peaks[mem])
        wins = np.stack([x[p + pre: p + post] for p in pk])
        muap = np.median(wins, axis=0)
        m = measure_muap(muap, fs, -pre, s)
        isi = np.diff(pk) / fs
        isi = isi[(isi > 0.02) & (isi < 0.25)]
        m["firing_rate_hz"] = float(1.0 / np.median(isi)) if isi.size >= 2 else np.nan
        m["n_discharges"] = len(mem)
        rows.append(m)
    return pd.DataFrame(rows), int(peaks.size)


def _signal_features(x: np.ndarray, fs: float) -> dict:
    """Interference-pattern features: turns/s and mean amplitude per turn (Willison), RMS, spectral median."""
    step = max(1, int(fs / 10000))
    y = x[::step]
    d = np.diff(y)
    turn_idx = np.flatnonzero(np.sign(d[1:]) != np.sign(d[:-1])) + 1
    vals = y[turn_idx]
    big = np.abs(np.diff(vals)) >= 100.0
    dur = x.size / fs
    spec = np.abs(np.fft.rfft(y - y.mean())) ** 2
    freqs = np.fft.rfftfreq(y.size, step / fs)
    cum = np.cumsum(spec)
    return dict(
        rms_uv=float(np.sqrt(np.mean(x**2))),
        turns_per_s=float(big.sum() / dur),
        amp_per_turn_uv=float(np.mean(np.abs(np.diff(vals))[big])) if big.any() else 0.0,
        median_freq_hz=float(freqs[np.searchsorted(cum, cum[-1] / 2)]),
    )


def analyse_cohort(subjects_tsv, recordings_tsv, settings: DetectionSettings | None = None,
                   loader=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MUAP table (one row per detected unit) and feature table (one row per recording) for a cohort.

    Recordings are cut to the simulator's ground-truth artifact bounds (``sim_artifact_start_s`` /
    ``sim_artifact_end_s``) when present, else to the manual trim columns, else used whole.
    """
    subjects = pd.read_csv(subjects_tsv, sep="\t")
    recs = pd.read_csv(recordings_tsv, sep="\t")
    base = Path(recordings_tsv).parent
    diag = dict(zip(subjects["subject_id"], subjects["diagnosis"]))
    if loader is None:
        from nemg.io import load_recording

        def loader(row):
            path = Path(row["path"])
            return load_recording(path if path.is_absolute() else base / path, row["format"])

    muap_rows, feat_rows = [], []
    for _, row in recs.iterrows():
        rec = loader(row)
        fs = rec.fs
        a = row.get("sim_artifact_start_s", row.get("trim_start_s"))
        b = row.get("sim_artifact_end_s", row.get("trim_end_s"))
        i0 = int(float(a) * fs) if pd.notna(a) else 0
        i1 = int(float(b) * fs) if pd.notna(b) else rec.n_samples
        x = rec.samples[i0:i1].astype(float)
        units, n_spikes = detect_muaps(x, fs, settings)
        d = diag[row["subject_id"]]
        meta = dict(recording_id=row["recording_id"], subject_id=row["subject_id"], diagnosis=d,
                    location=row["location"])
        for u in units.to_dict("records"):
            muap_rows.append({**meta, **u})
        f = {**meta, "n_units": len(units), **_signal_features(x, fs)}
        if "sim_units_firing" in row and pd.notna(row["sim_units_firing"]):
            f["true_units_firing"] = float(row["sim_units_firing"])  # simulator ground truth, not a feature
        for col in ("duration_ms", "amplitude_uv", "phases", "firing_rate_hz"):
            f[f"med_{col}"] = float(units[col].median()) if len(units) else np.nan
        f["max_amplitude_uv"] = float(units["amplitude_uv"].max()) if len(units) else np.nan
        f["pct_polyphasic"] = float((units["phases"] >= 5).mean() * 100) if len(units) else np.nan
        feat_rows.append(f)
    return pd.DataFrame(muap_rows), pd.DataFrame(feat_rows)


def class_table(muaps: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Per-class MUAP statistics (median [IQR]) next to the reference ranges."""
    def miqr(v):
        v = pd.Series(v).dropna()
        if v.empty:
            return "n/a"
        q1, q2, q3 = np.percentile(v, [25, 50, 75])
        return f"{q2:.3g} [{q1:.3g}-{q3:.3g}]"

    out = {}
    for c in CLASSES:
        m = muaps[muaps["diagnosis"] == c] if len(muaps) else muaps
        f = features[features["diagnosis"] == c]
        out[c] = {
            "MUAPs detected": str(len(m)),
            "duration_ms": miqr(m.get("duration_ms", [])),
            "amplitude_uv": miqr(m.get("amplitude_uv", [])),
            "phases": miqr(m.get("phases", [])),
            "turns": miqr(m.get("turns", [])),
            "polyphasic_pct": f"{(m['phases'] >= 5).mean() * 100:.0f}" if len(m) else "n/a",
            "firing_rate_hz": miqr(m.get("firing_rate_hz", [])),
            "units_per_recording": f"{f['n_units'].mean():.1f}" if len(f) else "n/a",
        }
        if "true_units_firing" in f:
            out[c]["true_units_firing"] = f"{f['true_units_firing'].mean():.1f}" if len(f) else "n/a"
    table = pd.DataFrame(out)
    ref = pd.DataFrame(REFERENCE).T.add_prefix("ref ")
    return table.join(ref, how="left")


FEATURES = ["n_units", "med_duration_ms", "med_amplitude_uv", "med_phases", "med_firing_rate_hz",
            "max_amplitude_uv", "pct_polyphasic", "rms_uv", "turns_per_s", "amp_per_turn_uv", "median_freq_hz"]


def feature_baseline(features: pd.DataFrame, n_repeats: int = 5, n_splits: int = 5, seed: int = 0) -> dict:
    """Logistic regression on per-recording features, cross-validated by patient.

    Per recording: argmax of the recording's probabilities. Per patient: argmax of the mean probability over
    the patient's recordings (the study's divide-and-vote, trivial variant). Mean over repeats.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = features[FEATURES].to_numpy(float)
    X[:, [2, 5, 7, 9]] = np.log1p(np.clip(X[:, [2, 5, 7, 9]], 0, None))
    y = features["diagnosis"].map(CLASS_INDEX).to_numpy()
    groups = features["subject_id"].to_numpy()
    rec_acc, pat_acc = [], []
    for r in range(n_repeats):
        prob = np.zeros((len(y), 3))
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed + r)
        for tr, te in cv.split(X, y, groups):
            model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                                  LogisticRegression(C=1.0, max_iter=2000))
            model.fit(X[tr], y[tr])
            prob[np.ix_(te, model.classes_)] = model.predict_proba(X[te])  # a class may be absent
        rec_acc.append(float(np.mean(prob.argmax(1) == y)))
        df = pd.DataFrame(prob, columns=CLASSES)
        df["subject_id"], df["y"] = groups, y
        per = df.groupby("subject_id").mean()
        pat_acc.append(float(np.mean(per[list(CLASSES)].to_numpy().argmax(1) == per["y"].to_numpy())))
    return dict(per_recording=float(np.mean(rec_acc)), per_recording_sd=float(np.std(rec_acc)),
                per_patient=float(np.mean(pat_acc)), per_patient_sd=float(np.std(pat_acc)),
                n_recordings=int(len(y)), n_patients=int(len(set(groups))))


def rater_confusion(subjects_tsv, ratings_tsv) -> pd.DataFrame:
    """Patient-level confusion counts per rater (true class x rater's label)."""
    subjects = pd.read_csv(subjects_tsv, sep="\t")
    ratings = pd.read_csv(ratings_tsv, sep="\t")
    pat = ratings[ratings["recording_id"].isna()].merge(subjects[["subject_id", "diagnosis"]], on="subject_id")
    return pd.crosstab([pat["rater_id"], pat["diagnosis"]], pat["label"]).reindex(columns=list(CLASSES), fill_value=0)
