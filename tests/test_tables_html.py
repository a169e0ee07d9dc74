"""HTML result tables: small p-values stay readable (not "0.000") and notes/titles are HTML-escaped."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nemg.baseline import write_comparison_html
from nemg.tables import format_p, is_p_column, write_table


@pytest.mark.parametrize("value, text", [(3.2e-6, "3.2e-06"), (0.000999, "1.0e-03"), (0.001, "0.001"),
                                         (0.0123, "0.012"), (1.0, "1.000"), (np.nan, ""), (None, "")])
def test_format_p(value, text):
    assert format_p(value) == text


def test_p_columns_are_p_values_not_class_probabilities():
    assert all(map(is_p_column, ["p", "mcnemar_p", "bootstrap_p", "location_vs_none_mcnemar_p"]))
    assert not any(map(is_p_column, ["p_normal", "p_target", "difference", "physicians"]))


@pytest.fixture
def tests_table():
    return pd.DataFrame({"comparison": ["a vs b", "a vs c"], "difference": [0.41234, 0.0],
                         "bootstrap_p": [3.2e-6, 0.5], "mcnemar_p": [0.0004, np.nan], "p_normal": [0.0001, 0.2]})


def test_write_table_prints_small_p_in_scientific_notation_and_escapes_the_note(tmp_path, tests_table):
    write_table(tests_table, tmp_path / "t.tsv", tmp_path / "t.html", title="A <vs> B", note="p < 0.05 & n <b>8</b>")
    page = (tmp_path / "t.html").read_text()
    assert "<td>3.2e-06</td>" in page and "<td>4.0e-04</td>" in page and "<td>0.500</td>" in page
    assert "<td>0.412</td>" in page and "<td>0.000</td>" in page  # other floats keep 3 decimals (p_normal too)
    assert "p &lt; 0.05 &amp; n &lt;b&gt;8&lt;/b&gt;" in page and "<b>8</b>" not in page
    assert "<h3>A &lt;vs&gt; B</h3>" in page
    # the TSV keeps the full value for analysis
    assert pd.read_csv(tmp_path / "t.tsv", sep="\t")["bootstrap_p"][0] == pytest.approx(3.2e-6)


def test_comparison_page_does_the_same(tmp_path, tests_table):
    write_comparison_html([("Paired <tests>", tests_table)], tmp_path / "c.html", note="CIs & <i>bootstrap</i>")
    page = (tmp_path / "c.html").read_text()
    assert "<td>3.2e-06</td>" in page and "<td>4.0e-04</td>" in page
    assert "CIs &amp; &lt;i&gt;bootstrap&lt;/i&gt;" in page and "<h3>Paired &lt;tests&gt;</h3>" in page
