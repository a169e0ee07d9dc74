"""Physician arm: ratings sheet validation, per-rater metrics, operating points, unanimous errors."""
from __future__ import annotations

import pandas as pd
import pytest

from nemg.cohort import CohortError
from nemg.physicians import (patient_calls, per_rater_metrics, rater_operating_points, read_ratings,
                             unanimously_wrong)

DIAG = pd.Series({"A": "normal", "B": "myopathy", "C": "neuropathy"})


def _sheet(tmp_path, body):
    p = tmp_path / "ratings.tsv"
    p.write_text("rater_id\tsubject_id\trecording_id\tlabel\n" + body)
    return p


def test_read_and_score(tmp_path):
    body = "".join(f"{r}\t{s}\t\t{lab}\n" for r, calls in
                   (("R1", "normal myopathy neuropathy"), ("R2", "myopathy myopathy neuropathy"))
                   for s, lab in zip("ABC", calls.split()))
    body += "R1\tA\tA_biceps\tnormal\n"
    ratings = read_ratings(_sheet(tmp_path, body))
    assert patient_calls(ratings).shape == (3, 2)
    m = per_rater_metrics(ratings, DIAG).set_index("rater_id")
    assert m.loc["R1", "accuracy"] == 1.0
    assert m.loc["R2", "accuracy"] == pytest.approx(2 / 3)
    assert m.loc["mean", "accuracy"] == pytest.approx(5 / 6)
    pts = rater_operating_points(ratings, DIAG).set_index(["rater_id", "class"])
    assert pts.loc[("R2", "myopathy"), "fpr"] == pytest.approx(0.5)   # called normal A myopathic
    assert pts.loc[("R2", "normal"), "tpr"] == 0.0


def test_bad_ratings_sheet(tmp_path):
    body = "R1\tA\t\tnormal\nR1\tA\t\tmyopathy\nR1\tZ\t\tweird\n"
    with pytest.raises(CohortError) as info:
        read_ratings(_sheet(tmp_path, body), subjects=pd.DataFrame({"subject_id": ["A", "B"]}))
    text = str(info.value)
    assert "row 4: column label: 'weird' is not allowed" in text
    assert "duplicate rating_key 'R1|A|' in rows 2, 3" in text
    assert "row 4: unknown subject_id 'Z'" in text


def test_unanimously_wrong():
    calls = pd.DataFrame({"run1": ["myopathy", "myopathy", None], "run2": ["neuropathy", "normal", None]},
                         index=["A", "B", "C"])
    out = unanimously_wrong(calls, DIAG)
    assert list(out["subject_id"]) == ["A"]


def test_ratings_of_unknown_ids_are_errors_and_of_filtered_out_ids_are_dropped(tmp_path):
    """A row naming a recording that is in no sheet used to be accepted silently; under cohort.subjects /
    cohort.recordings_where the rows of filtered-out subjects and recordings must go without an error."""
    all_subjects = pd.DataFrame({"subject_id": ["A", "B", "C"]})
    all_recordings = pd.DataFrame({"recording_id": ["A_bic", "A_tib", "B_bic", "C_bic"],
                                   "subject_id": ["A", "A", "B", "C"]})
    subjects = all_subjects[all_subjects["subject_id"] != "C"]  # cohort.subjects: [A, B]
    recordings = all_recordings[all_recordings["recording_id"].isin(["A_bic", "B_bic"])]  # recordings_where
    good = ("R1\tA\t\tnormal\nR1\tA\tA_bic\tnormal\nR1\tB\t\tmyopathy\nR1\tB\tB_bic\tmyopathy\n"
            "R1\tA\tA_tib\tnormal\nR1\tC\t\tneuropathy\nR1\tC\tC_bic\tneuropathy\n")  # last three: filtered out
    ratings = read_ratings(_sheet(tmp_path, good), subjects, recordings, all_subjects=all_subjects,
                           all_recordings=all_recordings)
    assert list(zip(ratings["subject_id"], ratings["recording_id"].fillna(""))) == [
        ("A", ""), ("A", "A_bic"), ("B", ""), ("B", "B_bic")]
    bad = good + "R1\tA\tA_deltoid\tnormal\nR1\tB\tA_bic\tnormal\nR1\tZ\t\tnormal\n"
    with pytest.raises(CohortError) as info:
        read_ratings(_sheet(tmp_path, bad), subjects, recordings, all_subjects=all_subjects,
                     all_recordings=all_recordings)
    assert sorted(info.value.problems) == sorted([
        f"{tmp_path / 'ratings.tsv'}, row 9: unknown recording_id 'A_deltoid'",
        f"{tmp_path / 'ratings.tsv'}, row 10: recording 'A_bic' belongs to subject 'A', not 'B'",
        f"{tmp_path / 'ratings.tsv'}, row 11: unknown subject_id 'Z'",
    ])
    # without the unfiltered sheets (an unfiltered cohort) every id outside the cohort is unknown
    with pytest.raises(CohortError, match="row 6: unknown recording_id 'A_tib'"):
        read_ratings(_sheet(tmp_path, good), subjects, recordings)
