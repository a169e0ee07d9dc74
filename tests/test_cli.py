"""The nemg command line: --version, and help text without reST markup."""
import re

import pytest

from nemg import __version__
from nemg.cli import build_parser, main, plain_text

REST = re.compile(r"``|:(func|class|meth|mod|attr|data|ref):`|`[^`\s][^`]*`")


def help_texts(parser, prefix="nemg"):
    """(command, --help text) of the parser and of every sub-command below it."""
    yield prefix, parser.format_help()
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for name, sub in action.choices.items():
                yield from help_texts(sub, f"{prefix} {name}")


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"nemg {__version__}"


def test_help_has_no_rest_markup():
    texts = dict(help_texts(build_parser()))
    assert {"nemg", "nemg verify", "nemg data fetch", "nemg cohort check"} <= set(texts)
    marked = {cmd: REST.findall(text) for cmd, text in texts.items() if REST.search(text)}
    assert not marked, marked
    assert "nemg verify results/manifest/<cohort>" in texts["nemg"]  # the docstring, only cleaned


def test_plain_text():
    assert plain_text("The ``nemg`` CLI, see :func:`nemg.manifest.verify` and `snakemake`.\n") == \
        "The nemg CLI, see nemg.manifest.verify and snakemake."


@pytest.mark.parametrize("threads", ["0", "-2", "two"])
def test_predict_refuses_a_thread_count_below_one(threads, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(tmp_path), str(tmp_path / "a.npy"), "--threads", threads])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_an_unknown_or_absent_device_is_a_value_error_naming_it():
    """nemg predict reports ValueErrors as its input errors; torch would raise a RuntimeError later instead."""
    import torch

    from nemg.train import pick_device

    with pytest.raises(ValueError, match="unknown device 'bogus'"):
        pick_device("bogus")
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")
    else:
        with pytest.raises(ValueError, match="CUDA GPU"):
            pick_device(f"cuda:{torch.cuda.device_count()}")
