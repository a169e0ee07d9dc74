"""Patient-level, diagnosis-stratified fold assignment and the leakage check.

One table, ``folds.tsv``, is the single source of truth for every later stage (docs/architecture.md): one row
per (run, subject) with ``scheme``, ``seed``, ``repeat``, ``outer``, ``inner``, ``run_id``, ``subject_id``,
``diagnosis`` and ``role`` (``train`` | ``val`` | ``test``).

* ``nested`` (the study's released code and v2): per seed, ``outer`` stratified folds give the test patients;
  the remaining patients are split again into ``inner`` stratified folds, each in turn the validation set for
  early stopping. outer x inner runs per seed (5 x 3 = 15 CNNs in the study). ``repeat`` is 0.
* ``repeated_kfold``: per seed and repeat, ``k`` stratified folds, each in turn the test set; no validation
  split (``inner`` = -1).
* ``external`` (nemg.external's split, not made here): per seed, every patient of the training cohort is a
  training or validation patient; ``repeat``, ``outer`` and ``inner`` are 0.

Run ids name a run's coordinates, and :func:`run_id` / :func:`parse_run_id` are the only code that writes or
reads them (file paths, rule wildcards and figure labels all go through them):
``nested_s<seed>_o<outer>_i<inner>``, ``rkfold_s<seed>_r<repeat>_o<fold>`` and ``ext_s<seed>``.

Stratification: per class, subjects are shuffled with the run's generator and dealt round-robin into the
folds, continuing the deal across classes, so every fold holds each class within one subject of the others and
fold sizes differ by at most one. Every random choice comes from ``numpy.random.default_rng`` seeded with
``[seed, repeat]`` (outer split) and ``[seed, repeat, outer + 1]`` (inner split): bit-reproducible.
"""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .labels import CLASSES

log = logging.getLogger(__name__)

FOLD_COLUMNS = ("scheme", "seed", "repeat", "outer", "inner", "run_id", "subject_id", "diagnosis", "role")
SCHEMES = ("nested", "repeated_kfold")
ROLES = ("train", "val", "test")


class FoldError(ValueError):
    """The subjects cannot be split as configured (too few subjects, bad settings)."""


class LeakageError(ValueError):
    """The folds table lets information cross between roles of one run; ``problems`` lists each case."""

    def __init__(self, problems: list[str], source: str = "folds table"):
        self.problems = problems
        shown = problems[:50]
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{source}: leakage check failed ({len(problems)} problem"
                         f"{'s' if len(problems) != 1 else ''}):\n  - " + "\n  - ".join(shown) + more)


EXTERNAL_SCHEME = "external"

# scheme -> (run id prefix, the coordinates the id spells out as "_<letter><number>", in order); a scheme's
# other coordinates are fixed (_FIXED), so an id still determines its folds-table row exactly
_LAYOUTS = {
    "nested": ("nested", (("s", "seed"), ("o", "outer"), ("i", "inner"))),
    "repeated_kfold": ("rkfold", (("s", "seed"), ("r", "repeat"), ("o", "outer"))),
    EXTERNAL_SCHEME: ("ext", (("s", "seed"),)),
}
_FIXED = {"nested": {"repeat": 0}, "repeated_kfold": {"inner": -1},
          EXTERNAL_SCHEME: {"repeat": 0, "outer": 0, "inner": 0}}
# no leading zeros, so that every id has exactly one spelling and parse -> format gives the same string back
_NUMBER = "0|[1-9][0-9]*"


class RunId(NamedTuple):
    """A run's coordinates, as in its folds-table rows; ``run_id(*parse_run_id(x)) == x``."""
    scheme: str
    seed: int
    repeat: int
    outer: int
    inner: int


def run_id(scheme: str, seed: int, repeat: int, outer: int, inner: int) -> str:
    """The id of one run (see the module docstring); raises ValueError for coordinates no id can hold."""
    if scheme not in _LAYOUTS:
        raise ValueError(f"unknown fold scheme {scheme!r}; run ids exist for {', '.join(_LAYOUTS)}")
    coords = {"seed": int(seed), "repeat": int(repeat), "outer": int(outer), "inner": int(inner)}
    wrong = {k: coords[k] for k, v in _FIXED[scheme].items() if coords[k] != v}
    if wrong:
        raise ValueError(f"{scheme} runs have {_FIXED[scheme]}; got {wrong}")
    prefix, fields = _LAYOUTS[scheme]
    negative = {name: coords[name] for _, name in fields if coords[name] < 0}
    if negative:
        raise ValueError(f"{scheme} run: {negative} must be >= 0")
    return prefix + "".join(f"_{letter}{coords[name]}" for letter, name in fields)


def external_run_id(seed: int) -> str:
    """The id of external validation's model ``seed`` (nemg.external)."""
    return run_id(EXTERNAL_SCHEME, seed, 0, 0, 0)


def _run_id_pattern(scheme: str, named: bool) -> str:
    prefix, fields = _LAYOUTS[scheme]
    group = "(?P<{}>" if named else "(?:"
    return prefix + "".join(f"_{letter}{group.format(name)}{_NUMBER})" for letter, name in fields)


_PARSERS = {scheme: re.compile(_run_id_pattern(scheme, named=True)) for scheme in _LAYOUTS}


def run_id_regex(*schemes: str) -> str:
    """A regex (no capturing groups, unanchored) matching exactly the run ids of ``schemes`` (default: all);
    for Snakemake wildcard constraints and file-name matching."""
    unknown = [s for s in schemes if s not in _LAYOUTS]
    if unknown:
        raise ValueError(f"unknown fold scheme(s) {unknown}; run ids exist for {', '.join(_LAYOUTS)}")
    return "(?:" + "|".join(_run_id_pattern(s, named=False) for s in schemes or _LAYOUTS) + ")"


def parse_run_id(rid: str) -> RunId:
    """The coordinates of a run id made by :func:`run_id`; raises ValueError naming ``rid`` for anything else."""
    for scheme, rx in _PARSERS.items():
        m = rx.fullmatch(str(rid))
        if m:
            return RunId(scheme, **_FIXED[scheme], **{k: int(v) for k, v in m.groupdict().items()})
    forms = ", ".join(p + "".join(f"_{letter}<{name}>" for letter, name in f) for p, f in _LAYOUTS.values())
    raise ValueError(f"{rid!r} is not a run id; expected one of {forms} (numbers without leading zeros)")


def replicate_id(scheme: str, seed: int, repeat: int) -> str:
    """The replicate (one seed of nested CV, one seed x repeat of repeated k-fold) that runs belong to: the
    key under which nemg.evaluate averages a patient's runs into one consensus call."""
    return f"{scheme}_s{int(seed)}_r{int(repeat)}"


def stratified_folds(subject_ids: Sequence[str], labels: Sequence[str], k: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Fold number (0..k-1) for each subject, stratified by label (see the module docstring)."""
    ids = np.asarray(subject_ids, dtype=object)
    labels = np.asarray(labels, dtype=object)
    if len(ids) < k:
        raise FoldError(f"cannot make {k} folds from {len(ids)} subjects")
    fold = np.full(len(ids), -1, dtype=np.int64)
    pos = 0
    # sorted ids and sorted classes: the result depends on the seed only, not on the input order
    order = np.argsort(ids, kind="stable")
    for cls in sorted(set(labels)):
        members = order[labels[order] == cls]
        members = members[rng.permutation(len(members))]
        for m in members:
            fold[m] = pos % k
            pos += 1
    return fold


def make_folds(subjects: pd.DataFrame, *, seeds: Iterable[int], schemes: Iterable[str],
               outer: int = 5, inner: int = 3, k: int = 5, repeats: int = 1) -> pd.DataFrame:
    """Build the folds table for ``subjects`` (columns ``subject_id``, ``diagnosis``)."""
    if not {"subject_id", "diagnosis"} <= set(subjects.columns):
        raise FoldError("subjects need columns subject_id and diagnosis")
    subjects = subjects[["subject_id", "diagnosis"]].drop_duplicates().sort_values("subject_id")
    dup = subjects["subject_id"][subjects["subject_id"].duplicated()]
    if len(dup):
        raise FoldError(f"subjects with two diagnoses: {', '.join(map(str, dup.unique()))}")
    ids = subjects["subject_id"].to_numpy(dtype=object)
    dx = subjects["diagnosis"].to_numpy(dtype=object)
    seeds, schemes = [int(s) for s in seeds], list(schemes)
    for s in schemes:
        if s not in SCHEMES:
            raise FoldError(f"unknown fold scheme {s!r}; expected one of {', '.join(SCHEMES)}")
    counts = pd.Series(dx).value_counts()
    rows: list[tuple] = []
    if "nested" in schemes:
        if outer < 2 or inner < 2:
            raise FoldError(f"nested scheme needs outer >= 2 and inner >= 2 (got {outer} x {inner})")
        if len(ids) < outer or len(ids) - len(ids) // outer - 1 < inner:
            raise FoldError(f"{len(ids)} subjects are too few for nested {outer} x {inner} folds")
        _check_class_sizes(counts, outer, inner)
        for seed in seeds:
            of = stratified_folds(ids, dx, outer, np.random.default_rng([seed, 0]))
            for o in range(outer):
                rest = of != o
                inf = stratified_folds(ids[rest], dx[rest], inner, np.random.default_rng([seed, 0, o + 1]))
                inner_of = np.full(len(ids), -1)
                inner_of[rest] = inf
                for i in range(inner):
                    rid = run_id("nested", seed, 0, o, i)
                    for sid, d, f, g in zip(ids, dx, of, inner_of):
                        role = "test" if f == o else ("val" if g == i else "train")
                        rows.append(("nested", seed, 0, o, i, rid, sid, d, role))
    if "repeated_kfold" in schemes:
        if k < 2 or repeats < 1:
            raise FoldError(f"repeated_kfold needs k >= 2 and repeats >= 1 (got k={k}, repeats={repeats})")
        if len(ids) < k:
            raise FoldError(f"{len(ids)} subjects are too few for {k}-fold cross-validation")
        _check_class_sizes(counts, k)
        for seed in seeds:
            for r in range(repeats):
                f_all = stratified_folds(ids, dx, k, np.random.default_rng([seed, r]))
                for o in range(k):
                    rid = run_id("repeated_kfold", seed, r, o, -1)
                    for sid, d, f in zip(ids, dx, f_all):
                        rows.append(("repeated_kfold", seed, r, o, -1, rid, sid, d, "test" if f == o else "train"))
    return pd.DataFrame(rows, columns=list(FOLD_COLUMNS))


def _check_class_sizes(counts: pd.Series, outer: int, inner: int | None = None) -> None:
    """Every test fold (and, for ``nested``, every validation fold) must hold a patient of every class.

    Stratification deals each class round-robin, so an outer fold takes ceil(n / outer) or floor(n / outer) of a
    class's n patients and at least n - ceil(n / outer) are left for the inner split. Fewer patients than folds
    would leave some folds without the class (metrics per class, the stage-2 fit and early stopping then see
    only part of the problem), so it is a :class:`FoldError` naming the class, its count and the config key.
    """
    outer_key = "folds.nested.outer" if inner is not None else "folds.repeated_kfold.k"
    problems = []
    for cls, n in sorted(counts.items()):
        n = int(n)
        if n < outer:
            problems.append(f"class {cls!r} has {n} patient{'s' if n != 1 else ''} but {outer_key} is {outer}: "
                            f"{outer - n} test fold{'s' if outer - n != 1 else ''} would have no {cls} patient; "
                            f"set {outer_key} to at most {n} or add {cls} patients")
        elif inner is not None and n - math.ceil(n / outer) < inner:
            left = n - math.ceil(n / outer)
            problems.append(f"class {cls!r} has {n} patients: with {outer_key} = {outer} as few as {left} are left "
                            f"for the inner split, but folds.nested.inner is {inner}: some validation folds would "
                            f"have no {cls} patient; lower folds.nested.inner (or {outer_key}) or add {cls} "
                            f"patients")
    if problems:
        raise FoldError("; ".join(problems))


def check_leakage(folds: pd.DataFrame, *, source: str = "folds table") -> None:
    """Raise :class:`LeakageError` unless the table is a clean patient-level split.

    Checks: required columns and valid roles; no subject with two rows (two roles) in one run; one diagnosis
    per subject; every run has train and test subjects (and val subjects for ``nested``); per (scheme, seed,
    repeat, inner) the test sets of the outer folds cover every subject exactly once.
    """
    missing = [c for c in FOLD_COLUMNS if c not in folds.columns]
    if missing:
        raise LeakageError([f"missing column(s) {', '.join(missing)}"], source)
    problems: list[str] = []
    bad_roles = sorted(set(folds["role"]) - set(ROLES))
    if bad_roles:
        problems.append(f"unknown role(s) {', '.join(map(str, bad_roles))}; expected train, val, test")
    dup = folds[folds.duplicated(["run_id", "subject_id"], keep=False)]
    for (rid, sid), grp in dup.groupby(["run_id", "subject_id"], sort=True):
        problems.append(f"run {rid}: subject {sid} appears {len(grp)} times with roles "
                        f"{', '.join(sorted(grp['role']))}")
    dx = folds.groupby("subject_id")["diagnosis"].nunique()
    for sid in dx[dx > 1].index:
        problems.append(f"subject {sid} has more than one diagnosis: "
                        f"{', '.join(sorted(folds.loc[folds.subject_id == sid, 'diagnosis'].unique()))}")
    for rid, grp in folds.groupby("run_id", sort=True):
        roles = set(grp["role"])
        need = {"train", "test"} | ({"val"} if (grp["scheme"] == "nested").all() else set())
        if not need <= roles:
            problems.append(f"run {rid}: no {' / '.join(sorted(need - roles))} subjects")
        if grp[["scheme", "seed", "repeat", "outer", "inner"]].drop_duplicates().shape[0] != 1:
            problems.append(f"run {rid}: rows disagree on scheme / seed / repeat / outer / inner")
    for key, grp in folds.groupby(["scheme", "seed", "repeat", "inner"], sort=True):
        test = grp[grp["role"] == "test"]
        times = test.groupby("subject_id").size()
        everyone = set(grp["subject_id"])
        never = sorted(everyone - set(times.index))
        twice = sorted(times[times > 1].index)
        label = "scheme {} seed {} repeat {} inner {}".format(*key)
        if never:
            problems.append(f"{label}: subject(s) never tested: {', '.join(map(str, never[:20]))}")
        if twice:
            problems.append(f"{label}: subject(s) tested in more than one outer fold: "
                            f"{', '.join(map(str, twice[:20]))}")
    if problems:
        raise LeakageError(problems, source)


def read_folds(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"subject_id": str, "run_id": str})


def summarize_folds(folds: pd.DataFrame) -> pd.DataFrame:
    """Subjects per run, role and class (one row per run and role): the table a reviewer checks for balance."""
    tab = (folds.groupby(["scheme", "seed", "repeat", "outer", "inner", "run_id", "role", "diagnosis"])
           .size().unstack("diagnosis", fill_value=0).reset_index())
    tab.columns.name = None
    classes = [c for c in CLASSES if c in tab.columns]
    tab["subjects"] = tab[classes].sum(axis=1)
    return tab


def folds_for_cohort(segments_index: str | Path, subjects_tsv: str | Path, params: dict[str, Any],
                     out_folds: str | Path, out_summary: str | Path) -> pd.DataFrame:
    """Folds over the subjects that have at least one segment; subjects without any are logged by id.

    ``params``: the ``folds:`` config section, whose keys the schema requires (so it has no defaults)."""
    seg = pd.read_csv(segments_index, sep="\t", dtype={"subject_id": str},
                      usecols=["subject_id", "diagnosis"]).drop_duplicates()
    subj = pd.read_csv(subjects_tsv, sep="\t", dtype={"subject_id": str}, keep_default_na=False)
    lost = sorted(set(subj["subject_id"]) - set(seg["subject_id"]))
    if lost:
        log.warning("%d subject(s) have no segment after trimming and are not in any fold: %s", len(lost),
                    ", ".join(lost))
    nested, rk = params["nested"], params["repeated_kfold"]
    folds = make_folds(seg, seeds=params["seeds"], schemes=params["schemes"],
                       outer=int(nested["outer"]), inner=int(nested["inner"]),
                       k=int(rk["k"]), repeats=int(rk["repeats"]))
    check_leakage(folds, source=str(out_folds))
    Path(out_folds).parent.mkdir(parents=True, exist_ok=True)
    folds.to_csv(out_folds, sep="\t", index=False)
    summarize_folds(folds).to_csv(out_summary, sep="\t", index=False)
    log.info("%d subjects, %d runs (%s), %d rows", seg["subject_id"].nunique(), folds["run_id"].nunique(),
             ", ".join(f"{s}: {n}" for s, n in folds.groupby("scheme")["run_id"].nunique().items()), len(folds))
    return folds


def check_folds_file(folds_tsv: str | Path, segments_index: str | Path | None, out_report: str | Path) -> None:
    """The workflow's leakage gate: re-read ``folds.tsv`` and check it (and that its subjects exist)."""
    folds = read_folds(folds_tsv)
    check_leakage(folds, source=str(folds_tsv))
    if segments_index is not None:
        seg = pd.read_csv(segments_index, sep="\t", dtype={"subject_id": str, "recording_id": str},
                          usecols=["recording_id", "subject_id", "diagnosis"]).drop_duplicates()
        problems = []
        owners = seg.groupby("recording_id")["subject_id"].nunique()
        for rid in owners[owners > 1].index:
            problems.append(f"recording {rid} belongs to more than one subject in {segments_index}")
        unknown = sorted(set(folds["subject_id"]) - set(seg["subject_id"]))
        if unknown:
            problems.append(f"subject(s) in the folds table without segments: {', '.join(unknown[:20])}")
        sdx = seg.drop_duplicates("subject_id").set_index("subject_id")["diagnosis"]
        fdx = folds.drop_duplicates("subject_id").set_index("subject_id")["diagnosis"]
        common = fdx.index.intersection(sdx.index)
        wrong = [s for s in common if fdx[s] != sdx[s]]
        if wrong:
            problems.append(f"subject(s) whose diagnosis differs from the segment index: {', '.join(wrong[:20])}")
        if problems:
            raise LeakageError(problems, str(folds_tsv))
    n_runs = folds["run_id"].nunique()
    Path(out_report).write_text(
        f"leakage check passed: {folds_tsv}\n"
        f"{n_runs} runs, {folds['subject_id'].nunique()} subjects; no subject in two roles of one run; "
        f"each subject tested exactly once per (scheme, seed, repeat, inner).\n"
    )
