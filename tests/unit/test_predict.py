"""Batch scoring of a file: every row out in order, repeated leads and rows that do not fit
the header named, and no output at all from a run that fails.

The scorer here is a stand-in that scores a lead by its ``employees`` (the model is not
what these tests are about; tests/integration/test_train_cli.py scores with real ones).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from predictive_scoring.config import ReadOptions
from predictive_scoring.data.problems import DataValidationError
from predictive_scoring.models.scorer import FeatureColumns
from predictive_scoring.predict import read_leads_input, repeated_leads, score_file
from tests.helpers import message_of

AS_OF = pd.Timestamp("2025-06-01T00:00:00Z")
HEADER = "lead_id,created_at,employees\n"


class EmployeesScorer:
    """Probability = employees / 1000; fails on a lead named in ``fail_on``."""

    shape = "events"
    columns = FeatureColumns(categorical=(), numeric=("employees",))

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on

    def score(self, leads: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame:
        if self.fail_on is not None and (leads["lead_id"] == self.fail_on).any():
            raise ValueError(f"cannot score {self.fail_on}")
        probability = leads["employees"].fillna(0).to_numpy() / 1000
        return pd.DataFrame({"lead_id": leads["lead_id"].to_numpy(),
                             "probability": probability, "score": (probability * 100).round(),
                             "suggested_stage": "lead", "rule_points": 0.0, "rule_stage": "lead",
                             "age_beyond_training": False})


def _leads(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "leads.csv"
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows))
    return path


def _score(path: Path, output: Path, scorer: EmployeesScorer | None = None,
           chunk_rows: int = 2) -> object:
    return score_file(scorer or EmployeesScorer(), path, None, AS_OF, output, chunk_rows,
                      ReadOptions())


def test_every_row_comes_out_in_order_with_repeats_and_bad_rows_named(tmp_path: Path) -> None:
    path = _leads(tmp_path, [
        "A,2025-01-01T00:00:00Z,100",
        "B,2025-01-01T00:00:00Z,200",
        "A,2025-02-01T00:00:00Z,300",        # row 3: A again
        "C,2025-01-01T00:00:00Z",            # row 4: a field short
        " B ,2025-01-01T00:00:00Z,50",       # row 5: B again, with spaces
        "D,2025-01-01T00:00:00Z,40,extra",   # row 6: a field too many
        "E,2025-01-01T00:00:00Z,500",
    ])
    output = tmp_path / "scores.csv"
    summary = _score(path, output)
    scores = pd.read_csv(output)
    assert list(scores["lead_id"]) == ["A", "B", "A", "C", "B", "D", "E"]
    assert scores["probability"].tolist()[:2] == [0.1, 0.2] and scores["probability"].iloc[6] == 0.5
    errors = scores["error"].fillna("").tolist()
    assert errors[2] == "duplicate lead_id (first seen in row 1)"
    assert errors[4] == "duplicate lead_id (first seen in row 2)"
    assert errors[3].startswith("2 fields where the header has 3")
    assert errors[5].startswith("4 fields where the header has 3")
    assert summary.rows_in == 7 and summary.rows_scored == 3 and summary.rows_failed == 4
    quarantine = pd.read_csv(summary.quarantine)
    assert quarantine["row"].tolist() == [3, 4, 5, 6]
    assert quarantine["text_as_written"].iloc[3] == "D,2025-01-01T00:00:00Z,40,extra"


def test_the_same_lead_at_two_moments_is_not_a_repeat(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("lead_id,created_at,employees,as_of\n"
                    "A,2025-01-01T00:00:00Z,100,2025-03-01T00:00:00Z\n"
                    "A,2025-01-01T00:00:00Z,100,2025-04-01T00:00:00Z\n"
                    "A,2025-01-01T00:00:00Z,100,2025-03-01T01:00:00+01:00\n")
    assert read_leads_input(path, ReadOptions()).repeated.tolist() == [0, 0, 1]


def test_a_failed_run_leaves_no_output_and_keeps_the_previous_one(tmp_path: Path) -> None:
    path = _leads(tmp_path, [f"L{i},2025-01-01T00:00:00Z,{i}" for i in range(10)])
    output = tmp_path / "out" / "scores.parquet"
    _score(path, output)
    before = output.read_bytes()
    with pytest.raises(ValueError, match="cannot score L7"):
        _score(path, output, EmployeesScorer(fail_on="L7"))
    assert output.read_bytes() == before
    assert sorted(p.name for p in output.parent.iterdir()) == ["scores.parquet"]
    fresh = tmp_path / "out" / "fresh.csv"
    with pytest.raises(ValueError):
        _score(path, fresh, EmployeesScorer(fail_on="L7"))
    assert not fresh.exists()


def test_a_clean_run_removes_a_stale_quarantine_file(tmp_path: Path) -> None:
    output = tmp_path / "scores.csv"
    assert _score(_leads(tmp_path, ["A,2025-01-01T00:00:00Z,1", "A,bad,2"]), output).quarantine
    summary = _score(_leads(tmp_path, ["A,2025-01-01T00:00:00Z,1"]), output)
    assert summary.quarantine is None
    assert not (tmp_path / "scores.quarantine.csv").exists()


@pytest.mark.parametrize(("rows", "reason"), [
    ([], "no leads to score: the file has a header but no rows"),
    (None, "the file is empty (not even a header line)"),
])
def test_a_file_without_leads_is_refused_before_anything_is_written(
        tmp_path: Path, rows: list[str] | None, reason: str) -> None:
    path = _leads(tmp_path, rows) if rows is not None else tmp_path / "leads.csv"
    if rows is None:
        path.write_text("")
    output = tmp_path / "scores.csv"
    assert reason in message_of(DataValidationError, _score, path, output)
    assert not output.exists()


def test_a_leads_file_without_lead_id_lists_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("id,created_at\nA,2025-01-01\n")
    message = message_of(DataValidationError, read_leads_input, path, ReadOptions())
    assert "needs a lead_id column; it has ['id', 'created_at']" in message


def test_text_that_is_not_utf8_past_the_first_chunk_fails_with_its_line(tmp_path: Path) -> None:
    rows = [f"L{i},2025-01-01T00:00:00Z,{i}" for i in range(3)] + ["L3,2025-01-01T00:00:00Z,4\xe9"]
    path = tmp_path / "leads.csv"
    path.write_bytes((HEADER + "\n".join(rows) + "\n").encode("latin-1"))
    output = tmp_path / "scores.csv"
    assert "line 5 is not UTF-8 text" in message_of(DataValidationError, _score, path, output)
    assert not output.exists()


def test_a_partition_in_any_order_names_the_first_row_of_a_repeated_lead() -> None:
    """A Dask partition holds a lead's rows in bucket order, numbered as in the file."""
    partition = pd.DataFrame({"lead_id": ["B", "A", "A ", "C", "B"],
                              "_row": [9, 4, 2, 7, 3]})
    assert repeated_leads(partition, ReadOptions()).tolist() == [3, 2, 0, 0, 0]


def test_a_csv_input_is_parsed_once_before_scoring(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The first pass (ids, repeats, bad rows) is not repeated by the chunked read."""
    from predictive_scoring.data import read

    passes = []
    whole_reads = read._read_csv
    monkeypatch.setattr(read, "_read_csv", lambda *a, **k: passes.append(1) or whole_reads(*a, **k))
    _score(_leads(tmp_path, [f"L{i},2025-01-01T00:00:00Z,{i}" for i in range(5)]),
           tmp_path / "scores.csv")
    assert len(passes) == 1
