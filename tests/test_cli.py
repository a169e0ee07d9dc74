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
