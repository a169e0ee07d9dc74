"""Motor-unit pool around the needle: territories and fibres, recruitment and firing, MUAPs and their discharge.

The pool is a disk of muscle cross-section centred on the needle. Every fibre of every unit exists (positions
only, a few tens of thousands), so that the disease transforms can move fibres between units geometrically and
force can be summed per unit; only fibres within ``pickup_radius_mm`` of the needle are turned into potentials.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fibre import REFERENCE_DIAMETER_UM, FibreTable, conduction_velocity


@dataclass
class Pool:
    """A motor-unit pool. Unit arrays have length n_units, fibre arrays length n_fibres."""

    unit_xy: np.ndarray  # [U, 2] territory centres, mm (needle at the origin)
    unit_radius: np.ndarray  # [U] territory radius, mm
    threshold: np.ndarray  # [U] recruitment threshold, fraction of maximal excitation
    peak_rate: np.ndarray  # [U] Hz
    unit_alive: np.ndarray  # [U] bool
    healthy_force: np.ndarray  # [U] force capacity before any loss (sum of (d/55)^2)
    owner: np.ndarray  # [F] index of the innervating unit
    fibre_xy: np.ndarray  # [F, 2] mm
    diameter: np.ndarray  # [F] µm
    endplate_mm: np.ndarray  # [F] axial position of the fibre's end-plate
    delay_ms: np.ndarray  # [F] extra latency (axon branch, immature sprout, satellite)
    jitter_us: np.ndarray  # [F] SD of neuromuscular jitter
    block: np.ndarray  # [F] probability of neuromuscular block per discharge
    fibre_alive: np.ndarray  # [F] bool

    @property
    def n_units(self) -> int:
        return int(self.unit_xy.shape[0])

    def force_capacity(self) -> np.ndarray:
        """Per-unit force capacity: the cross-section of its living fibres, in 55 µm-fibre equivalents."""
        w = np.where(self.fibre_alive, (self.diameter / REFERENCE_DIAMETER_UM) ** 2, 0.0)
        cap = np.bincount(self.owner, weights=w, minlength=self.n_units)
        return np.where(self.unit_alive, cap, 0.0)


def make_pool(p: dict, rng: np.random.Generator, size_factor: float = 1.0) -> Pool:
    """A healthy pool: exponential thresholds, fibre counts rising with threshold (size principle)."""
    pp = p["pool"]
    n_units = int(rng.integers(pp["n_units"][0], pp["n_units"][1] + 1))
    rank = np.arange(n_units) / max(n_units - 1, 1)
    lo, hi = pp["fibres_per_unit"]
    n_fibres = lo * (hi / lo) ** rank * size_factor * np.exp(rng.normal(0, pp["unit_size_jitter"], n_units))
    n_fibres = np.maximum(np.rint(n_fibres), 5).astype(np.intp)
    thr = p["firing"]["threshold_min"] * p["firing"]["threshold_range"] ** rank
    peak = rng.uniform(*p["firing"]["peak_rate_hz"], n_units)
    # larger units fire a little slower at the top (Fuglevand); keeps the ceiling realistic
    peak = peak - 5.0 * rank

    density = rng.uniform(*pp["unit_density_per_mm2"], n_units)
    radius = np.sqrt(n_fibres / (np.pi * density))
    rad_pos = pp["pool_radius_mm"] * np.sqrt(rng.random(n_units))
    ang = rng.uniform(0, 2 * np.pi, n_units)
    unit_xy = np.column_stack([rad_pos * np.cos(ang), rad_pos * np.sin(ang)])
    ep_unit = rng.normal(0, pp["endplate_zone_sd_mm"], n_units)

    owner = np.repeat(np.arange(n_units), n_fibres)
    n_total = owner.size
    fr = radius[owner] * np.sqrt(rng.random(n_total))
    fa = rng.uniform(0, 2 * np.pi, n_total)
    fibre_xy = unit_xy[owner] + np.column_stack([fr * np.cos(fa), fr * np.sin(fa)])
    diameter = np.clip(rng.normal(*pp["fibre_diameter_um"], n_total), 20.0, 100.0)
    endplate = ep_unit[owner] + rng.normal(0, pp["endplate_fibre_sd_mm"], n_total)
    delay = np.abs(rng.normal(0, pp["axon_delay_sd_ms"], n_total))
    jitter = np.full(n_total, pp["jitter_us"])
    block = np.zeros(n_total)
    alive = np.ones(n_total, bool)
    pool = Pool(unit_xy, radius, thr, peak, np.ones(n_units, bool), np.zeros(n_units), owner, fibre_xy,
                diameter, endplate, delay, jitter, block, alive)
    pool.healthy_force = pool.force_capacity()
    return pool


# ----------------------------------------------------------------------------------------------- firing

def _rates(pool: Pool, excitation: np.ndarray, p: dict) -> np.ndarray:
    """Firing rate [len(excitation), U]: onset rate at threshold, rising linearly to the unit's ceiling."""
    f = p["firing"]
    above = excitation[:, None] - pool.threshold[None, :]
    rate = np.minimum(f["onset_rate_hz"] + f["rate_gain_hz"] * above, pool.peak_rate[None, :])
    return np.where((above >= 0) & pool.unit_alive[None, :], rate, 0.0)


def force_curve(pool: Pool, p: dict, n_grid: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Force (fraction of the healthy pool's MVC) as a function of excitation on a grid in [0, 1]."""
    half, k = p["firing"]["force_rate_half_hz"], p["firing"]["force_rate_exponent"]
    e = np.linspace(0.0, 1.0, n_grid)
    r = _rates(pool, e, p)
    # twitch fusion: a sigmoid force-frequency relation, so a unit near its onset rate gives little force
    act = r**k / (r**k + half**k)
    mvc = np.sum(pool.healthy_force * pool.peak_rate**k / (pool.peak_rate**k + half**k))
    return e, act @ pool.force_capacity() / mvc


def force_profile(duration_s: float, p: dict, rng: np.random.Generator, dt: float) -> np.ndarray:
    """Target force over time: a brief weak step, then the target level, with slow fluctuation."""
    f = p["firing"]
    n = int(np.ceil(duration_s / dt)) + 1
    t = np.arange(n) * dt
    if rng.random() < f["poor_effort_fraction"]:
        low = high = rng.uniform(*f["poor_effort_mvc"])
    else:
        low = rng.uniform(*f["low_force_mvc"])
        high = rng.uniform(*f["target_force_mvc"])
    t_step = duration_s * rng.uniform(*f["low_force_fraction"])
    ramp = 0.5 * (1 + np.tanh((t - t_step) / 0.15))
    level = low + (high - low) * ramp
    # slow tremor-like fluctuation (a few Hz) so rates are not perfectly steady
    phase = rng.uniform(0, 2 * np.pi, 2)
    wobble = 0.6 * np.sin(2 * np.pi * 1.3 * t + phase[0]) + 0.4 * np.sin(2 * np.pi * 4.1 * t + phase[1])
    return np.clip(level * (1 + f["force_tremor"] * wobble), 0.0, None)


def spike_trains(pool: Pool, units: np.ndarray, duration_s: float, p: dict, rng: np.random.Generator,
                 fs: float) -> list[np.ndarray]:
    """Discharge sample indices of each unit in ``units`` over ``duration_s``.

    The excitation reaching the target force is solved from the pool's force curve; each unit then fires by
    time rescaling: its integrated rate crosses successive Gaussian inter-spike increments (mean 1, SD = CV).
    """
    dt = 0.005
    target = force_profile(duration_s, p, rng, dt)
    e_grid, f_grid = force_curve(pool, p)
    f_mono = np.maximum.accumulate(f_grid) + np.arange(e_grid.size) * 1e-12
    excitation = np.where(target >= f_mono[-1], 1.0, np.interp(target, f_mono, e_grid))
    rates = _rates(pool, excitation, p)[:, units]  # [time, units]
    cum = np.vstack([np.zeros((1, len(units))), np.cumsum(rates[:-1] * dt, axis=0)])
    t = np.arange(target.size) * dt
    cv = rng.uniform(*p["firing"]["isi_cv"])
    trains = []
    for j in range(len(units)):
        lam = cum[:, j]
        total = lam[-1]
        if total < 1.0:
            trains.append(np.empty(0, np.int64))
            continue
        n = int(total + 4 * np.sqrt(total) + 5)
        inc = np.clip(rng.normal(1.0, cv, n), 0.35, None)
        marks = rng.random() + np.cumsum(inc) - inc[0]
        marks = marks[marks < total]
        k = np.searchsorted(lam, marks, side="left").clip(1, lam.size - 1)
        frac = (marks - lam[k - 1]) / np.maximum(lam[k] - lam[k - 1], 1e-12)
        times = t[k - 1] + frac * dt
        trains.append(np.rint(times * fs).astype(np.int64))
    return trains


# ------------------------------------------------------------------------------------------------ MUAPs

def _fibre_rows(table: FibreTable, pool: Pool, sel: np.ndarray, needle_z_mm: float, p: dict
                ) -> tuple[np.ndarray, np.ndarray]:
    """Single-fibre potentials (µV) at the needle for fibres ``sel``, scaled by (d/55)^2, and each fibre's
    sub-grid timing correction (ms).

    The table is quantised in velocity and axial distance; the correction shifts each row by the difference
    between the true and the tabulated arrival time, ``|z| / v - z_bin / v_bin``, so fibres of one unit keep
    their own conduction delays (temporal dispersion) instead of collapsing onto a few grid points.
    """
    xy = pool.fibre_xy[sel]
    z = needle_z_mm - pool.endplate_mm[sel]
    v = conduction_velocity(pool.diameter[sel], p["fibre"])
    v_idx = table.velocity_index(v)
    z_idx = table.axial_index(z)
    z_true = np.clip(np.abs(z), table.axial_mm[0], table.axial_mm[-1])
    corr_ms = z_true / v - table.axial_mm[z_idx] / table.velocities[v_idx]
    scale = ((pool.diameter[sel] / REFERENCE_DIAMETER_UM) ** 2).astype(np.float32)[:, None]
    rows = table.rows(v_idx, table.radius_index(np.hypot(xy[:, 0], xy[:, 1])), z_idx)
    nd = p["needle"]
    if nd["type"] == "concentric":
        # the cannula is the reference: the mean potential over points on the shaft behind the tip. The shaft
        # crosses the fibres, so its points lie 0.3-2 mm away in the cross-section; distant fibres reach core
        # and shaft alike and cancel, which gives the concentric needle its small pick-up area.
        n_pts = int(nd["n_cannula_points"])
        ref = np.zeros_like(rows)
        for d in np.linspace(nd["cannula_radius_mm"], nd["shaft_reference_mm"], n_pts):
            r = np.hypot(xy[:, 0] - d, xy[:, 1])
            ref += table.rows(v_idx, table.radius_index(r), z_idx)
        rows = rows - ref / n_pts
    elif nd["type"] != "monopolar":
        raise ValueError(f"needle.type must be 'monopolar' or 'concentric', got {nd['type']!r}")
    return rows * scale, corr_ms


def _sum_shifted(rows: np.ndarray, group: np.ndarray, shift: np.ndarray, n_groups: int, length: int) -> np.ndarray:
    """out[g, s + t] += rows[i, t] for every row i of group g with shift s (one bincount, no Python loop)."""
    n_t = rows.shape[1]
    idx = (group * length + shift)[:, None] + np.arange(n_t)[None, :]
    out = np.bincount(idx.ravel(), weights=rows.ravel(), minlength=n_groups * length)
    return out.reshape(n_groups, length)


@dataclass
class Muaps:
    units: np.ndarray  # pool indices of the units with fibres near the needle
    variants: np.ndarray  # float32 [n_units, n_variants, length], µV
    true_pp_uv: np.ndarray  # peak-to-peak of the first variant, for ground truth and diagnostics


def build_muaps(pool: Pool, table: FibreTable, needle_z_mm: float, p: dict, rng: np.random.Generator) -> Muaps:
    """Each visible unit's MUAP as a sum of its fibres' potentials, in ``n_variants`` unstable versions.

    Jitter and blocking are applied only to fibres within ``unstable_radius_mm``; further fibres contribute
    smooth, low-amplitude components where a few tens of µs of jitter cannot be seen.
    """
    pp = p["pool"]
    fs = table.fs
    dist = np.hypot(pool.fibre_xy[:, 0], pool.fibre_xy[:, 1])
    near = pool.fibre_alive & pool.unit_alive[pool.owner] & (dist < pp["pickup_radius_mm"])
    sel = np.flatnonzero(near)
    units, local = np.unique(pool.owner[sel], return_inverse=True)
    n_var = int(pp["n_variants"])
    if units.size == 0:
        return Muaps(units, np.zeros((0, n_var, 1), np.float32), np.zeros(0))
    rows, corr_ms = _fibre_rows(table, pool, sel, needle_z_mm, p)
    lat_ms = pool.delay_ms[sel] + corr_ms
    base_shift = np.rint((lat_ms - min(lat_ms.min(), 0.0)) * 1e-3 * fs).astype(np.intp)
    max_jit = int(np.ceil(4 * pool.jitter_us[sel].max() * 1e-6 * fs)) + 1
    length = table.n_time + int(base_shift.max()) + 2 * max_jit
    base_shift = base_shift + max_jit

    unstable = dist[sel] < pp["unstable_radius_mm"]
    stable = ~unstable
    far = _sum_shifted(rows[stable], local[stable], base_shift[stable], units.size, length)
    u_rows, u_local, u_shift = rows[unstable], local[unstable], base_shift[unstable]
    u_jit, u_block = pool.jitter_us[sel][unstable], pool.block[sel][unstable]
    variants = np.empty((units.size, n_var, length), np.float32)
    for v in range(n_var):
        jit = np.rint(rng.normal(0, 1, u_jit.size) * u_jit * 1e-6 * fs).astype(np.intp).clip(-max_jit, max_jit)
        keep = rng.random(u_jit.size) >= u_block
        variants[:, v] = far + _sum_shifted(u_rows[keep], u_local[keep], (u_shift + jit)[keep], units.size, length)
    # drop the common silent tail so discharges add fewer samples
    active = np.flatnonzero(np.abs(variants).max(axis=(0, 1)) > 0.05)
    variants = variants[:, :, : active[-1] + 1] if active.size else variants[:, :, :1]
    return Muaps(units, variants, np.ptp(variants[:, 0], axis=1))


def discharge(muaps: Muaps, trains: list[np.ndarray], n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Add one randomly chosen variant of each unit's MUAP at each of its discharges."""
    length = muaps.variants.shape[2]
    n_var = muaps.variants.shape[1]
    idx_parts, w_parts = [], []
    for j, spikes in enumerate(trains):
        spikes = spikes[spikes < n_samples]
        if spikes.size == 0:
            continue
        choice = rng.integers(0, n_var, spikes.size)
        idx_parts.append((spikes[:, None] + np.arange(length)[None, :]).ravel())
        w_parts.append(muaps.variants[j, choice].ravel())
    if not idx_parts:
        return np.zeros(n_samples)
    out = np.bincount(np.concatenate(idx_parts), weights=np.concatenate(w_parts), minlength=n_samples + length)
    return out[:n_samples]
