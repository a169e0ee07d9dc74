"""Every tunable of the simulated cohort in one plain nested dict, and the deep merge that overrides it.

Values follow docs/simulator.md (and the design brief's reference table); ranges ``[lo, hi]`` are uniform draws.
The workflow's ``simulation:`` config section is merged into this dict with :func:`merge_params`.
"""
from __future__ import annotations

import copy
from typing import Any

DEFAULT_PARAMS: dict[str, Any] = {
    "cohort": {
        # the v1 study: 20 normal, 19 myopathy, 19 neuropathy
        "n_subjects": {"normal": 20, "myopathy": 19, "neuropathy": 19},
        "muscles_per_subject": [4, 8],  # inclusive range
        # share of proximal muscles per class, from the v2 signal table (17/94, 64/122, 63/160)
        "proximal_fraction": {"normal": 0.2, "myopathy": 0.55, "neuropathy": 0.4},
        # usable signal per recording (s); the edge artifacts come on top
        "duration_s": [2.0, 4.0],
        # Table 1 of the study: mean (SD) age and share of women per class
        "age_mean": {"normal": 60.2, "myopathy": 52.2, "neuropathy": 58.4},
        "age_sd": {"normal": 16.9, "myopathy": 20.1, "neuropathy": 15.1},
        "age_range": [18, 90],
        "female_fraction": {"normal": 0.65, "myopathy": 0.737, "neuropathy": 0.632},
        "subject_prefix": "S",
    },
    "severity": {
        # per-patient severity s ~ Beta(a, b), scaled per muscle by location
        "beta_a": 2.0,
        "beta_b": 3.0,
        # muscle severity = patient severity x U(range) for that location
        "location_factor": {
            "myopathy": {"proximal": [0.8, 1.1], "distal": [0.3, 0.6]},
            "neuropathy": {"proximal": [0.3, 0.6], "distal": [0.8, 1.1]},
        },
        # chance that a muscle of a patient shows nothing of the disease
        "unaffected_fraction": 0.2,
    },
    "disease": {
        # neuropathy: lose loss0 + loss_per_s * s of the units; survivors adopt orphaned fibres
        "neuropathy_unit_loss": [0.75, 0.20],
        "adoption_probability": 0.95,
        "adoption_reach_mm": 0.25,  # collateral sprouts reach orphans this close to an innervated fibre
        "adoption_rounds": 6,
        "max_enlargement": 10.0,
        "adopted_diameter_factor": 1.5,  # a survivor grows to at most this many times its fibre count
        "immature_fraction": [0.1, 0.3],  # of adopted fibres, at s = 0 and s = 1
        "immature_diameter_um": [38.0, 8.0],  # mean, sd
        "immature_delay_ms": [0.5, 4.0],
        "immature_jitter_us": [50.0, 150.0],
        "immature_block": [0.02, 0.25],
        # myopathy: random fibre loss loss0 + loss_per_s * s, diameter variability, satellites
        "myopathy_fibre_loss": [0.20, 0.50],
        "myopathy_diameter_cv": [0.2, 0.45],  # lognormal sigma at s = 0 and s = 1
        "myopathy_satellite_fraction": [0.01, 0.04],
        "satellite_delay_ms": [3.0, 12.0],
        "satellite_diameter_um": [30.0, 6.0],
        "myopathy_jitter_us": [25.0, 50.0],
        # ageing (every subject): unit loss rises linearly from age_loss_start to 40 % at age_loss_full
        "age_loss_start": 35.0,
        "age_loss_full": 75.0,
        "age_loss_max": 0.40,
    },
    "pool": {
        "n_units": [100, 150],
        "pool_radius_mm": 10.0,
        "fibres_per_unit": [50, 500],  # smallest and largest unit (exponential spread)
        "unit_size_jitter": 0.15,  # lognormal sd of a unit's fibre count around its rank
        "subject_size_sd": 0.35,  # per-subject random effect on unit size (log)
        "unit_density_per_mm2": [1.5, 3.0],
        "fibre_diameter_um": [55.0, 9.0],  # mean, sd
        "endplate_zone_sd_mm": 0.5,  # spread of unit end-plates around the zone centre
        "endplate_fibre_sd_mm": 0.3,  # spread of a unit's fibres around its end-plate
        "axon_delay_sd_ms": 0.1,  # terminal-branch conduction differences within a unit
        "jitter_us": 20.0,  # neuromuscular jitter of healthy fibres
        "pickup_radius_mm": 3.0,  # fibres further from the needle add < 2 µV and are not created
        "unstable_radius_mm": 1.2,  # jitter/blocking of fibres further away is invisible
        "n_variants": 4,  # jittered/blocked versions of each MUAP, one drawn per discharge
    },
    "firing": {
        "threshold_range": 30.0,  # largest / smallest recruitment threshold
        "threshold_min": 0.01,  # smallest threshold, fraction of maximal excitation
        "onset_rate_hz": 7.0,
        "peak_rate_hz": [30.0, 45.0],
        "rate_gain_hz": 100.0,  # Hz per unit of excitation above threshold
        "isi_cv": [0.15, 0.25],
        "force_rate_half_hz": 12.0,  # twitch fusion: force share = rate^k / (rate^k + this^k)
        "force_rate_exponent": 2.0,  # k
        "low_force_mvc": [0.01, 0.03],  # first step, fraction of healthy MVC
        "target_force_mvc": [0.08, 0.30],  # second step
        "low_force_fraction": [0.15, 0.35],  # share of the recording spent at the first step
        "poor_effort_fraction": 0.05,  # recordings where the patient barely contracts
        "poor_effort_mvc": [0.005, 0.02],
        "force_tremor": 0.05,  # relative slow fluctuation of the force
    },
    "needle": {
        # "concentric" (default; the reference values are concentric-needle values) subtracts the mean over
        # points on the cannula shaft; "monopolar" (the study's needle) is the tip alone, referred far away,
        # and picks up distant fibres: MUAPs ~3x larger and less disease-specific (docs/simulator.md)
        "type": "concentric",
        "distance_to_endplate_mm": [3.0, 20.0],
        "cannula_radius_mm": 0.3,  # first reference point, mm from the core in the cross-section
        "shaft_reference_mm": 2.0,  # last reference point along the shaft
        "n_cannula_points": 4,
    },
    "fibre": {
        "sigma_radial_s_m": 0.063,
        "sigma_axial_s_m": 0.33,
        "sigma_intracellular_s_m": 1.01,
        "half_length_mm": 40.0,
        "dz_mm": 0.05,
        "radius_min_mm": 0.25,  # the needle's recording surface cannot get closer to a fibre's axis
        "radius_max_mm": 6.0,
        "n_radius": 28,
        "axial_max_mm": 30.0,
        "n_axial": 31,
        "cv_at_55um_m_s": 3.7,
        "cv_slope_m_s_per_um": 0.03,
        "cv_min_m_s": 2.0,
        "cv_max_m_s": 5.5,
        "n_velocity": 6,
        "pre_onset_ms": 1.0,
        "window_ms": 22.0,
    },
    "noise": {
        "white_uv": [3.0, 10.0],
        "mains_hz": 60.0,  # Korea; 50 in Europe
        "mains_uv": [0.0, 15.0],
        "mains_harmonics": [1.0, 0.3, 0.15],  # relative amplitude of 1st, 3rd, 5th harmonic
        "drift_uv": [5.0, 40.0],
        "drift_hz": [0.3, 3.0],
        "highpass_hz": 20.0,
        "lowpass_hz": 10000.0,
    },
    "artifacts": {
        "duration_s": [0.3, 1.5],  # each edge
        "movement_rms_mv": [0.5, 1.5],  # continuous movement activity under the steps and spikes
        "step_mv": [0.5, 5.0],
        "steps_per_s": [3.0, 10.0],
        "step_tau_ms": [10.0, 150.0],
        "spike_burst_probability": 0.7,
        "spike_mv": [0.2, 2.0],
        "spike_rate_hz": [50.0, 300.0],
        "saturation_probability": 0.35,  # amplifier blocked at the rail for a moment
        "saturation_ms": [20.0, 150.0],
        "fade_ms": 50.0,  # the needle settles: artifact envelope reaches zero at the interval's edge
    },
    "recording": {
        "fs": 48000,
        "adc_gain_per_uv": 4.0,  # 16-bit: +-8.19 mV range, 0.25 µV steps
    },
    "raters": {
        # six physicians (2 neurology, 4 rehabilitation in the study); all simulated
        "ids": ["simR1", "simR2", "simR3", "simR4", "simR5", "simR6"],
        "skill": [0.75, 0.65, 0.55, 0.5, 0.4, 0.35],
        # muscle level: probability of seeing the abnormality at severity 1 and at severity 0 (mild)
        "detect_neuropathy": [0.8, 0.97],  # at skill 0 / skill 1, full severity
        "detect_myopathy": [0.45, 0.85],
        "mild_detect_factor": 0.6,  # detection at severity -> 0 relative to severity 1
        # probability of naming the right abnormal class once abnormality is seen
        "type_correct": {"neuropathy": [0.8, 0.95], "myopathy": [0.4, 0.75]},
        # false-positive abnormal call on a normal-looking muscle, and its split
        "false_positive": [0.3, 0.15],
        "false_positive_neuropathy_share": 0.65,
        # patient call: abnormal when at least this share of muscles is called abnormal (at skill 0 / 1)
        "patient_abnormal_share": [0.1, 0.2],
    },
}


def _merge(base: dict, over: dict, path: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in base:
            known = ", ".join(sorted(map(str, base)))
            raise ValueError(f"unknown simulation parameter {where!r}; known keys here: {known}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"simulation parameter {where!r} must be a mapping, got {value!r}")
            out[key] = _merge(base[key], value, where)
        elif isinstance(value, dict):
            raise ValueError(f"simulation parameter {where!r} is a value, not a mapping; got {value!r}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_params(overrides: dict | None = None, base: dict | None = None) -> dict:
    """Deep-merge ``overrides`` into a copy of ``DEFAULT_PARAMS``; unknown keys raise a ValueError naming them.

    Class-keyed dicts (``n_subjects`` ...) accept only the three class names, so a typo fails loudly too.
    """
    return _merge(DEFAULT_PARAMS if base is None else base, overrides or {}, "")
