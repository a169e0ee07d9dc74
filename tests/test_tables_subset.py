"""Cohort subsets: cohort.subjects and cohort.recordings_where (e.g. N2001 low contraction only)."""
import logging

import pandas as pd
import pytest

from nemg.tables import subset_sheets


@pytest.fixture
def sheets(tmp_path):
    subj = pd.DataFrame({"subject_id": ["c1", "c2", "p1", "m1"],
                         "diagnosis": ["normal", "normal", "neuropathy", "myopathy"]})
    rec = pd.DataFrame({"recording_id": ["c1a", "c1b", "c2a", "p1a", "p1b", "m1a"],
                        "subject_id": ["c1", "c1", "c2", "p1", "p1", "m1"],
                        "path": ["x.hea"] * 6,
                        "contraction_level": ["low", "moderate", "moderate", "low", "low", "low"]})
    subj.to_csv(tmp_path / "subjects.tsv", sep="\t", index=False)
    rec.to_csv(tmp_path / "recordings.tsv", sep="\t", index=False)
    return tmp_path / "subjects.tsv", tmp_path / "recordings.tsv"


def read(path):
    return pd.read_csv(path, sep="\t", dtype=str)


def test_recordings_where_keeps_matching_recordings_and_drops_empty_subjects(sheets, tmp_path, caplog):
    out_s, out_r = tmp_path / "o" / "subjects.tsv", tmp_path / "o" / "recordings.tsv"
    with caplog.at_level(logging.WARNING):
        n = subset_sheets(*sheets, [], out_s, out_r, recordings_where={"contraction_level": ["low"]})
    assert n == 3
    assert list(read(out_r)["recording_id"]) == ["c1a", "p1a", "p1b", "m1a"]
    assert list(read(out_s)["subject_id"]) == ["c1", "p1", "m1"]
    assert "1 subject(s) have no recording matching" in caplog.text and "c2" in caplog.text
    # relative paths follow the sheet into its new folder
    assert read(out_r)["path"].map(lambda p: p.endswith("x.hea") and p.startswith("/")).all()


def test_recordings_where_combines_with_a_subject_list(sheets):
    subset_sheets(*sheets, ["c1", "p1", "m1"], recordings_where={"contraction_level": ["low", "moderate"]})
    assert list(read(sheets[1])["recording_id"]) == ["c1a", "c1b", "p1a", "p1b", "m1a"]


@pytest.mark.parametrize("where, message", [
    ({"contraction": ["low"]}, "names column(s) contraction that the recordings sheet lacks"),
    ({"contraction_level": ["high"]}, "no recording matches cohort.recordings_where"),
    ({"contraction_level": ["moderate"]}, "leaves no recording of class(es) myopathy, neuropathy"),
])
def test_bad_filters_name_the_sheet(sheets, where, message):
    with pytest.raises(ValueError) as err:
        subset_sheets(*sheets, [], recordings_where=where)
    assert str(sheets[1]) in str(err.value) and message in str(err.value)


def test_a_ratings_sheet_loses_the_rows_of_filtered_out_ids(sheets, tmp_path):
    """The simulated physicians rate every simulated recording; under cohort.subjects / recordings_where the
    rows of the left-out subjects and recordings must go (evaluate would call them unknown ids)."""
    ratings = tmp_path / "ratings.tsv"
    ratings.write_text("rater_id\tsubject_id\trecording_id\tlabel\n"
                       "R1\tc1\t\tnormal\nR1\tc1\tc1a\tnormal\nR1\tc1\tc1b\tnormal\n"
                       "R1\tc2\t\tnormal\nR1\tp1\tp1a\tneuropathy\nR1\tm1\t\tmyopathy\n")
    subset_sheets(*sheets, ["c1", "c2", "p1"], recordings_where={"contraction_level": ["low"]}, ratings_tsv=ratings)
    kept = pd.read_csv(ratings, sep="\t", dtype=str, keep_default_na=False)
    # c1b (moderate) and c2 (no low recording) filtered by recordings_where, m1 by the subject list
    assert list(zip(kept["subject_id"], kept["recording_id"])) == [("c1", ""), ("c1", "c1a"), ("p1", "p1a")]
    ratings.write_text("rater_id\tsubject_id\trecording_id\tlabel\nR1\tc1\tc1z\tnormal\n")
    with pytest.raises(ValueError, match=r"ratings\.tsv, row 2: unknown recording_id 'c1z'"):
        subset_sheets(*sheets, ["c1", "p1"], ratings_tsv=ratings)
