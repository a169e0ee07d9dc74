"""Disease transforms of a healthy pool, each driven by a muscle severity s in [0, 1].

Only the anatomy changes here (which units and fibres live, their size and latency); reduced recruitment in
neuropathy and early recruitment in myopathy then follow from the force solve in ``motor_units``.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .motor_units import Pool


def _lerp(pair, s: float) -> float:
    return float(pair[0] + (pair[1] - pair[0]) * s)


def _kill_and_reinnervate(pool: Pool, loss: float, p: dict, rng: np.random.Generator,
                          immature_fraction: float) -> None:
    """Lose a share ``loss`` of the living units; nearby survivors adopt their fibres by collateral sprouting.

    An orphan goes to the unit of its nearest innervated neighbour fibre (within the sprouting reach), in a
    few rounds, so adopted fibres form groups: bigger, denser, grouped territories. Survivors grow at most
    ``max_enlargement``-fold; fibres nobody adopts stay denervated.
    """
    d = p["disease"]
    living = np.flatnonzero(pool.unit_alive)
    n_lose = int(round(loss * living.size))
    if n_lose <= 0:
        return
    n_lose = min(n_lose, living.size - 1)  # a muscle with no unit left would be silent, not neuropathic
    lost = rng.choice(living, n_lose, replace=False)
    pool.unit_alive[lost] = False
    orphans = np.flatnonzero(pool.fibre_alive & ~pool.unit_alive[pool.owner])
    if orphans.size == 0:
        return
    own = np.bincount(pool.owner[pool.fibre_alive & pool.unit_alive[pool.owner]], minlength=pool.n_units)
    room = np.floor((d["max_enlargement"] - 1.0) * own).astype(np.intp)
    innervated = pool.fibre_alive & pool.unit_alive[pool.owner]
    pending = orphans[rng.random(orphans.size) < d["adoption_probability"]]
    taken_parts = []
    # sprouts grow from the terminals of neighbouring innervated fibres; newly adopted fibres sprout in the
    # next round, so survivors spread into contiguous groups (fibre-type grouping) rather than thinly
    for _ in range(int(d["adoption_rounds"])):
        if pending.size == 0:
            break
        src = np.flatnonzero(innervated)
        # a tree per round, queried once: an unbalanced, non-compacted tree builds in half the time (the build
        # was 14 of the default cohort's 47 CPU-seconds), and the nearest neighbours are the same
        tree = cKDTree(pool.fibre_xy[src], balanced_tree=False, compact_nodes=False)
        dist, nn = tree.query(pool.fibre_xy[pending], k=1)
        reach = dist < d["adoption_reach_mm"]
        cand, owners = pending[reach], pool.owner[src[nn[reach]]]
        perm = rng.permutation(cand.size)
        cand, owners = cand[perm], owners[perm]
        sort = np.argsort(owners, kind="stable")
        so = owners[sort]
        starts = np.r_[0, np.flatnonzero(np.diff(so)) + 1]
        rank = np.arange(so.size) - np.repeat(starts, np.diff(np.r_[starts, so.size]))
        ok = np.zeros(cand.size, bool)
        ok[sort] = rank < room[so]
        got, got_owner = cand[ok], owners[ok]
        room -= np.bincount(got_owner, minlength=pool.n_units)
        pool.owner[got] = got_owner
        innervated[got] = True
        taken_parts.append(got)
        pending = np.setdiff1d(pending, got, assume_unique=True)
    taken = np.concatenate(taken_parts) if taken_parts else np.empty(0, np.intp)

    pool.fibre_alive[orphans] = False
    pool.fibre_alive[taken] = True
    # a new nerve twig: the adopting axon's own branch latency
    pool.delay_ms[taken] = np.abs(rng.normal(0, p["pool"]["axon_delay_sd_ms"], taken.size))
    is_imm = rng.random(taken.size) < immature_fraction
    # mature reinnervated fibres hypertrophy to carry the lost units' load
    mature = taken[~is_imm]
    pool.diameter[mature] = np.clip(pool.diameter[mature] * d["adopted_diameter_factor"], 20.0, 110.0)
    imm = taken[is_imm]
    if imm.size:
        mean, sd = d["immature_diameter_um"]
        pool.diameter[imm] = np.clip(rng.normal(mean, sd, imm.size), 15.0, None)
        pool.delay_ms[imm] += rng.uniform(*d["immature_delay_ms"], imm.size)
        pool.jitter_us[imm] = rng.uniform(*d["immature_jitter_us"], imm.size)
        pool.block[imm] = rng.uniform(*d["immature_block"], imm.size)


def age_loss(age: float, p: dict) -> float:
    """Share of units lost with age: none before ``age_loss_start``, ~40 % by ``age_loss_full``."""
    d = p["disease"]
    frac = np.clip((age - d["age_loss_start"]) / (d["age_loss_full"] - d["age_loss_start"]), 0.0, 1.0)
    return float(d["age_loss_max"] * frac)


def apply_ageing(pool: Pool, age: float, p: dict, rng: np.random.Generator) -> None:
    """Slow, fully compensated unit loss: healthy elderly muscles look mildly neurogenic."""
    _kill_and_reinnervate(pool, age_loss(age, p), p, rng, immature_fraction=0.0)


def apply_neuropathy(pool: Pool, s: float, p: dict, rng: np.random.Generator) -> None:
    d = p["disease"]
    loss0, per_s = d["neuropathy_unit_loss"]
    _kill_and_reinnervate(pool, min(loss0 + per_s * s, 0.97), p, rng, _lerp(d["immature_fraction"], s))


def apply_myopathy(pool: Pool, s: float, p: dict, rng: np.random.Generator) -> None:
    """Random fibre loss, atrophic and hypertrophic fibres, a few late satellites, slightly unstable NMJs."""
    d = p["disease"]
    loss0, per_s = d["myopathy_fibre_loss"]
    loss = min(loss0 + per_s * s, 0.95)
    live = np.flatnonzero(pool.fibre_alive)
    pool.fibre_alive[live[rng.random(live.size) < loss]] = False
    live = np.flatnonzero(pool.fibre_alive)
    sigma = _lerp(d["myopathy_diameter_cv"], s)
    # lognormal whose squared factor has mean 1 (cross-section preserved on average): splitting and atrophy
    # thin most fibres, a few hypertrophy
    pool.diameter[live] = np.clip(pool.diameter[live] * rng.lognormal(-sigma**2, sigma, live.size), 10.0, 130.0)
    sat = live[rng.random(live.size) < _lerp(d["myopathy_satellite_fraction"], s)]
    if sat.size:
        mean, sd = d["satellite_diameter_um"]
        pool.diameter[sat] = np.clip(rng.normal(mean, sd, sat.size), 10.0, None)
        pool.delay_ms[sat] += rng.uniform(*d["satellite_delay_ms"], sat.size)
    pool.jitter_us[live] = _lerp(d["myopathy_jitter_us"], s)


def apply_disease(pool: Pool, diagnosis: str, severity: float, age: float, p: dict,
                  rng: np.random.Generator) -> None:
    """Ageing for everyone, then the muscle's own disease at ``severity`` (0 = unaffected muscle)."""
    apply_ageing(pool, age, p, rng)
    if severity <= 0 or diagnosis == "normal":
        return
    if diagnosis == "neuropathy":
        apply_neuropathy(pool, severity, p, rng)
    elif diagnosis == "myopathy":
        apply_myopathy(pool, severity, p, rng)
    else:
        raise ValueError(f"unknown diagnosis {diagnosis!r}")
