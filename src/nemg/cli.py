"""The ``nemg`` command line: cohort checks, public data sets, the simulated cohort, run verification, and
diagnosing new patients with a trained model bundle (``predict``, ``export``).

The workflow itself runs through ``snakemake``; these commands prepare and audit its inputs and outputs
(``nemg verify results/manifest/<cohort>``) and use its model.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from . import __version__
from .labels import LOCATIONS


def _failed(command: str, exc: Exception, code: int = 1) -> int:
    """Report a command's failure on stderr, in one format for every command; returns the exit code."""
    print(f"{command} FAILED: {exc}", file=sys.stderr)
    return code


def _cmd_cohort_check(args: argparse.Namespace) -> int:
    from .cohort import CohortError, check_signals, find_sheets, probe_durations, read_cohort, summarize

    try:
        subjects, recordings = find_sheets(args.sheets)
        cohort = read_cohort(subjects, recordings, check_files=not args.no_files)
    except CohortError as exc:
        return _failed("cohort check", exc)
    durations, problems = False, []
    if not args.no_files and not args.quick:
        # every signal through the workflow's own loader: NaN, flat lines, short or truncated files and a rate
        # the file contradicts are caught here instead of in the trim job
        durations, problems = check_signals(cohort)
    elif not args.no_files and not args.no_durations:
        durations, problems = probe_durations(cohort)
    table = summarize(cohort, durations=False if args.no_durations else durations)
    for w in cohort.warnings:
        print(f"warning: {w}")
    if problems:
        print(f"cohort check FAILED: {CohortError(problems)}", file=sys.stderr)
        print(f"summary of {subjects} + {recordings} (durations leave out the {len(problems)} unreadable "
              f"recording{'s' if len(problems) != 1 else ''}):")
        print(table.to_string(index=False))
        return 1
    print(f"cohort OK: {subjects} + {recordings}")
    print(table.to_string(index=False))
    return 0


def _cmd_data_list(args: argparse.Namespace) -> int:
    from .datasets import DATASETS

    for name, ds in DATASETS.items():
        print(f"{name:14s} {ds.description}\n{'':14s} home: {ds.home}")
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from .datasets import fetch

    try:
        dest = fetch(args.name, args.dest, base_url=args.base_url, all_files=args.all)
    except (ValueError, OSError) as exc:
        return _failed("fetch", exc)
    print(f"{args.name}: verified in {dest}")
    return 0


def _cmd_data_import(args: argparse.Namespace) -> int:
    from .datasets import import_dataset

    try:
        subjects, recordings = import_dataset(args.name, args.source, args.out)
    except (ValueError, OSError) as exc:
        return _failed("import", exc)
    print(f"wrote {subjects}\nwrote {recordings}\ncheck it with: nemg cohort check {Path(args.out)}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    import yaml

    from .simulate import merge_params, simulate_cohort

    overrides = {}
    if args.config:
        with open(args.config) as fh:
            cfg = yaml.safe_load(fh) or {}
        # accept either a bare simulation section or a whole workflow config
        overrides = cfg.get("simulation", cfg)
    try:
        params = merge_params(overrides)
    except ValueError as exc:
        return _failed("simulate", exc)
    out = simulate_cohort(params, args.out, args.seed)
    for kind, path in out.items():
        print(f"wrote {kind}: {path}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .manifest import ManifestError, verify

    try:
        result = verify(args.manifest, root=args.root)
    except ManifestError as exc:
        return _failed("verify", exc, 2)
    print(result.report(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare
    from .manifest import ManifestError

    try:
        result = compare(args.a, args.b)
    except ManifestError as exc:
        return _failed("compare", exc, 2)
    print(result.report(show=args.show))
    return 0 if result.identical else 1


# reST roles and literals of the docstrings, as a terminal should show them: ``x`` and :func:`x` -> x
_REST = [(re.compile(r":[a-z]+:`~?([^`]+)`"), r"\1"), (re.compile(r"``([^`]+)``"), r"\1"),
         (re.compile(r"`([^`]+)`"), r"\1")]


def plain_text(doc: str) -> str:
    """A docstring without reST markup, for --help."""
    for pattern, repl in _REST:
        doc = pattern.sub(repl, doc)
    return doc.strip()


def _cmd_predict(args: argparse.Namespace) -> int:
    from .bundle import load_bundle
    from .predict import RECORDING_FILE, format_patients, predict, read_input, write_predictions

    try:
        bundle = load_bundle(args.model_dir)
        recordings, subjects = read_input(args.inputs, subject_id=args.patient, location=args.location,
                                          sampling_rate_hz=args.rate, units=args.units)
        per_recording, per_patient = predict(bundle, recordings, subjects, num_threads=args.threads,
                                             device=args.device, calibrate=args.calibrate, gain=args.gain,
                                             skip_unusable=args.skip_unusable,
                                             strict_amplitude=args.strict_amplitude)
        written = write_predictions(args.out, per_recording, per_patient)
    except (ValueError, OSError) as exc:  # every nemg input error is a ValueError naming its file
        return _failed("predict", exc)
    print(f"{len(per_patient)} patient(s), {len(per_recording)} recording(s), "
          f"{per_patient['n_models'].iloc[0]} model(s) from {args.model_dir}\n")
    cal = per_patient.attrs.get("calibration")
    if cal and cal["calibration"] == "median_rms":
        print(f"amplitudes x {cal['gain']:.6g}: the training cohort's median frame RMS "
              f"{cal['reference_median_rms_uv']:.4g} uV over these {cal['n_recordings']} recordings' "
              f"{cal['site_median_rms_uv']:.4g} uV ({cal['n_patients']} patients; reuse with --gain "
              f"{cal['gain']:.6g})\n")
        if cal.get("polarity") == -1:
            print(f"NOTE: these recordings' spikes point the other way from the training cohort's "
                  f"({100 * cal['site_negative_share']:.0f} % of them skew negative, "
                  f"{100 * cal['reference_negative_share']:.0f} % of the training recordings): an amplifier or file "
                  f"that stores the display's negative-up inverts a whole site. Reported, not corrected: turning "
                  f"N2001 over did not change a Messekher model's calls (docs/external.md, \"Polarity\")\n")
    elif cal:
        print(f"amplitudes x {cal['gain']:.6g} (--gain)\n")
    check = per_patient.attrs.get("amplitude_check") or {}
    if check.get("n_outside"):
        (low, high), (q0, q1) = check["range_uv"], check["quantiles"]
        who = sorted({r["subject_id"] for r in check["outside"]})
        more = f" and {len(who) - 10} more" if len(who) > 10 else ""
        print(f"WARNING: {check['n_outside']} of {check['n_recordings']} recording(s){' after the gain' if cal else ''}"
              f" have a median frame RMS outside the training recordings' range ({low:.4g}-{high:.4g} uV, their "
              f"percentiles {100 * q0:g}-{100 * q1:g}, so {100 * (q0 + 1 - q1):g} % of the training recordings lie "
              f"outside it too): the model was not validated on such amplitudes, the main cue of the diagnosis. "
              f"Patient(s): {', '.join(who[:10])}{more}. "
              f"Recordings of another amplifier chain: see --calibrate (docs/predict.md); level_uv and "
              f"in_training_range in {RECORDING_FILE}; --strict-amplitude makes this an error\n")
    skipped = per_patient.attrs.get("skipped") or []
    if skipped:
        print(f"skipped {len(skipped)} unusable recording(s) (--skip-unusable):")
        print("\n".join(f"  {s['path']} (patient {s['subject_id']}): {s['reason']}" for s in skipped))
        lost = sorted({s["subject_id"] for s in skipped} - set(per_patient["subject_id"]))
        if lost:
            print(f"NOT DIAGNOSED, no usable recording: {', '.join(lost)}")
        print()
    print(format_patients(per_patient))
    print("\n" + "\n".join(f"wrote {p}" for p in written))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_bundle

    try:
        written = export_bundle(args.model_dir, args.format, out_dir=args.out)
    except (ValueError, OSError, ImportError) as exc:
        return _failed("export", exc)
    print("\n".join(f"wrote {p}" for p in written))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nemg", description=plain_text(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"nemg {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    cohort = sub.add_parser("cohort", help="validate and summarize cohort sample sheets")
    csub = cohort.add_subparsers(dest="action", required=True)
    check = csub.add_parser("check", help="validate subjects.tsv + recordings.tsv and print a per-class summary")
    check.add_argument("sheets", nargs="+", help="a cohort directory, or subjects.tsv and recordings.tsv")
    check.add_argument("--quick", action="store_true",
                       help="do not read the signals, only their headers (misses NaN samples, flat lines, "
                            "truncated npy/asc files)")
    check.add_argument("--no-durations", action="store_true", help="leave the durations out of the summary")
    check.add_argument("--no-files", action="store_true", help="validate the sheets only, not the signal files")
    check.set_defaults(func=_cmd_cohort_check)

    data = sub.add_parser("data", help="public needle-EMG data sets")
    dsub = data.add_subparsers(dest="action", required=True)
    dsub.add_parser("list", help="list the known public data sets").set_defaults(func=_cmd_data_list)
    fetch = dsub.add_parser("fetch", help="download a public data set and verify every file's SHA-256")
    fetch.add_argument("name")
    fetch.add_argument("--dest", required=True, help="directory to download into")
    fetch.add_argument("--base-url", help="mirror to download from instead of the public home (http(s):// or file://)")
    fetch.add_argument("--all", action="store_true", help="every file of the source, not only the subset the configs use")
    fetch.set_defaults(func=_cmd_data_fetch)
    imp = dsub.add_parser("import", help="write cohort sample sheets for a public data set")
    imp.add_argument("name")
    imp.add_argument("--source", required=True, help="the data set's folder (e.g. ../shared/data/emglab_n2001)")
    imp.add_argument("--out", required=True, help="directory for subjects.tsv and recordings.tsv")
    imp.set_defaults(func=_cmd_data_import)

    sim = sub.add_parser("simulate", help="generate the simulated default cohort")
    sim.add_argument("--out", required=True, help="output directory")
    sim.add_argument("--seed", type=int, default=0, help="one seed drives every random choice")
    sim.add_argument("--config", help="YAML with overrides of the simulation parameters")
    sim.set_defaults(func=_cmd_simulate)

    ver = sub.add_parser("verify", help="check a run's outputs against its manifest (SHA-256 and size)",
                         description="Hash every file listed in a run manifest again and list each changed or "
                                     "missing one; exit code 0 when all match, 1 when some differ, 2 when the "
                                     "manifest itself cannot be read.")
    ver.add_argument("manifest", help="the manifest folder, e.g. results/manifest/simulated")
    ver.add_argument("--root", help="the run's working directory (default: the one recorded in the manifest)")
    ver.set_defaults(func=_cmd_verify)
    cmp_ = sub.add_parser("compare", help="compare two runs by their manifests: which outputs match, and why not",
                          description="Compare two runs' manifests (e.g. a reference run's and a rerun's "
                                      "results/manifest/<cohort>): the records (commit, packages, CPU, config), "
                                      "the outputs stage by stage (SHA-256), and a verdict on whether the "
                                      "differences have a cause in the records. Exit code 0 when every output "
                                      "matches (files with times or dates aside), 1 when some differ, 2 when a "
                                      "manifest cannot be read.")
    cmp_.add_argument("a", help="the first run's manifest folder (e.g. the reference run's)")
    cmp_.add_argument("b", help="the second run's manifest folder")
    cmp_.add_argument("--show", type=int, default=3, help="differing files named per stage (default 3)")
    cmp_.set_defaults(func=_cmd_compare)

    _add_model_commands(sub)
    return p


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: needs at least 1")
    return n


def _add_model_commands(sub) -> None:
    pred = sub.add_parser("predict", help="diagnose new patients with a model bundle (snakemake model)",
                          description="INPUT is a recordings.tsv (optionally with its subjects.tsv; many patients, "
                                      "the pipeline's sheet format) or the signal files of ONE patient.")
    pred.add_argument("model_dir", help="a bundle folder: results/model/<cohort>/")
    pred.add_argument("inputs", nargs="+", metavar="INPUT")
    pred.add_argument("--out", default="predictions", help="output folder (default: predictions/)")
    pred.add_argument("--location", choices=LOCATIONS,
                      help="signal files: the muscles' location (needed when the model uses location)")
    pred.add_argument("--patient", default="patient", help="signal files: the patient's id (default: patient)")
    pred.add_argument("--rate", type=float, help="signal files: sampling rate in Hz (npy, csv, asc)")
    pred.add_argument("--units", choices=["V", "mV", "uV"], help="signal files: units where the format has none")
    pred.add_argument("--threads", type=_positive_int, default=None,
                      help="CPU threads for the network (default: torch's)")
    pred.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    amp = pred.add_mutually_exclusive_group()
    amp.add_argument("--calibrate", action="store_true",
                     help="recordings of another amplifier chain: scale them so that their median frame RMS is "
                          "the training cohort's (the external validation's median-RMS calibration; needs a "
                          "sheet of at least 10 patients of the site, and prints the factor for --gain)")
    amp.add_argument("--gain", type=float, metavar="FACTOR",
                     help="multiply every recording by this factor (e.g. the one --calibrate printed for the "
                          "same site), for a few new patients")
    pred.add_argument("--skip-unusable", action="store_true",
                      help="leave out the recordings the pipeline's QC would (nothing usable after trimming, "
                           "shorter than one window, sampled below the model's lowest rate) instead of stopping; "
                           "they are listed, with why, in skipped_recordings.tsv and on the terminal, and a "
                           "patient without a usable recording is not diagnosed. Unreadable files, NaN samples "
                           "and the like still stop the run")
    pred.add_argument("--strict-amplitude", action="store_true",
                      help="stop, writing nothing, when any recording's median frame RMS (after --calibrate or "
                           "--gain) lies outside the training recordings' 1-99 %% range, instead of diagnosing it "
                           "with a warning: for pipelines that must not pass on a result the model was not "
                           "validated for")
    pred.set_defaults(func=_cmd_predict)

    exp = sub.add_parser("export", help="write a bundle's networks as TorchScript or ONNX")
    exp.add_argument("model_dir", help="a bundle folder: results/model/<cohort>/")
    exp.add_argument("--format", required=True, choices=["torchscript", "onnx"])
    exp.add_argument("--out", default=None, help="output folder (default: MODEL_DIR/export/)")
    exp.set_defaults(func=_cmd_export)


def main(argv: list[str] | None = None) -> int:
    import logging

    # long downloads and imports report progress through logging
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
