"""Reading files with pyarrow: CSV structure, file-level errors, times and numbers, and
the checks' vectorised pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from predictive_scoring.config import ReadOptions
from predictive_scoring.data.dataset import (
    DataValidationError,
    all_problems,
    load_events_dataset,
    load_table_dataset,
)
from predictive_scoring.data.problems import ROW
from predictive_scoring.data.read import MALFORMED, iter_batches, read_table
from predictive_scoring.data.validate import check_leads, repeated_rows
from predictive_scoring.data.values import LEAF_ROWS, parse_numbers, parse_times, parse_timestamps
from tests.helpers import message_of
from tests.reference import pandas_reader
from tests.unit.test_data import CHANGES, EVENTS, LEADS, make_config, write

COMMA = ReadOptions()


def _csv(tmp_path: Path, text: str | bytes, name: str = "file.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# ------------------------------------------------------------------ CSV structure
def test_a_truncated_last_row_is_quarantined_not_padded(tmp_path: Path) -> None:
    root = write(tmp_path, leads=LEADS + "D,2025-01-04T00:00:00Z,soft")  # cut mid-line
    dataset = load_events_dataset(make_config(root), Path("."))
    problems = all_problems(dataset.checks)
    assert list(problems["row"]) == [4]
    assert problems["reason"].iloc[0] == ("3 fields where the header has 4 (a truncated or "
                                          "shifted row)")
    assert problems["value"].iloc[0] == "D,2025-01-04T00:00:00Z,soft"
    assert "D" not in set(dataset.leads["lead_id"])
    quarantined = dataset.checks["leads"].quarantined
    assert list(quarantined[ROW]) == [4] and quarantined["industry"].iloc[0] == "soft"
    assert MALFORMED not in quarantined


def test_rows_that_do_not_fit_keep_every_row_number_right(tmp_path: Path) -> None:
    text = ('lead_id,timestamp,event_type,detail\n'
            'A,2025-01-02T00:00:00Z,page_view,"two\nlines"\n'   # row 1, a quoted line break
            '\n'                                                # a blank line is no row
            'A,2025-01-03T00:00:00Z,page_view\n'                # row 2: one field short
            'A,2025-01-04T00:00:00Z,page_view,pricing,extra\n'  # row 3: one too many
            'A,2025-01-05T00:00:00Z,email_open,\n')             # row 4
    root = write(tmp_path, events=text)
    dataset = load_events_dataset(make_config(root), Path("."))
    events = dataset.events
    assert list(events[ROW]) == [1, 4]
    assert events["detail"].iloc[0] == "two\nlines"
    problems = all_problems(dataset.checks)
    assert list(problems["row"]) == [2, 3]
    assert list(problems["reason"].str.split(" ").str[0]) == ["3", "5"]
    assert problems["value"].iloc[1] == "A,2025-01-04T00:00:00Z,page_view,pricing,extra"


def test_batches_number_rows_as_the_whole_file_does(tmp_path: Path) -> None:
    lines = [f"L{i},2025-01-01T00:00:00Z,x" for i in range(1, 101)]
    for bad in (1, 37, 38, 64, 100):
        lines[bad - 1] = f"L{bad},broken"
    path = _csv(tmp_path, "lead_id,created_at,industry\n" + "\n".join(lines) + "\n")
    whole = read_table(path, COMMA)
    parts = pa.concat_tables(iter_batches(path, COMMA, batch_rows=10))
    assert parts.num_rows == whole.num_rows == 100
    assert parts[ROW].to_pylist() == whole[ROW].to_pylist() == list(range(1, 101))
    assert parts.column("lead_id").to_pylist() == [f"L{i}" for i in range(1, 101)]
    malformed = whole.filter(whole[MALFORMED].is_valid())[ROW].to_pylist()
    assert malformed == [1, 37, 38, 64, 100]
    assert parts.filter(parts[MALFORMED].is_valid())[ROW].to_pylist() == malformed


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_a_repeated_column_name_is_refused(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"leads.{ext}"
    if ext == "csv":
        path.write_text("lead_id,created_at,industry, industry\nA,2025-01-01,x,y\n")
    else:
        pq.write_table(pa.table([["A"], ["x"], ["y"]], names=["lead_id", "industry",
                                                               "industry"]), path)
    message = message_of(DataValidationError, read_table, path, COMMA)
    assert str(path) in message and "column 'industry'" in message
    assert "named 2 times in the header" in message


@pytest.mark.parametrize("text", ["", "\n\n\n"])
def test_an_empty_file_says_so(tmp_path: Path, text: str) -> None:
    path = _csv(tmp_path, text)
    message = message_of(DataValidationError, read_table, path, COMMA)
    assert message == f"cannot read input: {path}: the file is empty (not even a header line)"


def test_a_leads_file_with_only_a_header_is_no_leads_not_a_problem_per_event(
        tmp_path: Path) -> None:
    root = write(tmp_path, leads="lead_id,created_at,industry,employees\n")
    message = message_of(DataValidationError, load_events_dataset, make_config(root), Path("."))
    assert message.endswith("leads.csv: no leads: the file has a header but no rows")
    assert "\n" not in message


def test_a_table_with_only_a_header_is_no_leads(tmp_path: Path) -> None:
    from tests.unit.test_data import table_config

    (tmp_path / "crm.csv").write_text("id;plan;seats;outcome;signed_up;closed_amount\n")
    message = message_of(DataValidationError, load_table_dataset, table_config(tmp_path),
                         Path("."))
    assert "no leads: the file has a header but no rows" in message


@pytest.mark.parametrize(("sep", "text", "hint"), [
    (",", "lead_id;created_at;industry\nA;2025-01-01;x\n", "read.sep: ';'"),
    (",", "lead_id\tcreated_at\tindustry\nA\t2025-01-01\tx\n", "read.sep: '\\\\t'"),
    (";", "lead_id,created_at,industry\nA,2025-01-01,x\n", "read.sep: ','"),
])
def test_another_separator_is_named_with_the_setting(tmp_path: Path, sep: str, text: str,
                                                     hint: str) -> None:
    message = message_of(DataValidationError, read_table, _csv(tmp_path, text),
                         ReadOptions(sep=sep))
    assert "the header is one column" in message and hint in message
    assert "--sep" in message


def test_text_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = _csv(tmp_path, b"lead_id,industry\nA,software\nB,caf\xe9s\n")
    message = message_of(DataValidationError, read_table, path, COMMA)
    assert "line 3 is not UTF-8 text (byte 0xe9 at character 6)" in message


def test_a_missing_file(tmp_path: Path) -> None:
    message = message_of(DataValidationError, read_table, tmp_path / "nope.csv", COMMA)
    assert message.endswith("nope.csv: file not found")


def test_a_parquet_folder_reads_its_parts_in_order_numbered_across_them(tmp_path: Path) -> None:
    folder = tmp_path / "events.parquet"
    folder.mkdir()
    for part, ids in enumerate((["a", "b"], ["c"], ["d", "e", "f"])):
        frame = pd.DataFrame({"lead_id": ids}, index=pd.Index(range(len(ids)), name=None))
        frame.to_parquet(folder / f"part-{part:05d}.parquet")  # with a pandas index
    table = read_table(folder, COMMA)
    assert table.column_names == ["lead_id", ROW]
    assert table["lead_id"].to_pylist() == list("abcdef")
    assert table[ROW].to_pylist() == [1, 2, 3, 4, 5, 6]
    batches = pa.concat_tables(iter_batches(folder, COMMA, batch_rows=2))
    assert batches.to_pydict() == table.to_pydict()


# ------------------------------------------------------------------ times and numbers
def test_a_date_without_a_time_is_midnight_in_the_files_zone() -> None:
    parsed = parse_timestamps(pd.Series(["2025-03-04", "2025-03-04 00:00"]),
                              ReadOptions(timezone="Europe/Berlin"))
    assert (parsed == pd.Timestamp("2025-03-03T23:00:00Z")).all()


def _reference(values: list[str | None], read: ReadOptions) -> pd.Series:
    return pandas_reader.parse_timestamps(pd.Series(values, dtype="string"), read)


@pytest.mark.parametrize("read", [ReadOptions(), ReadOptions(timezone="America/New_York"),
                                  ReadOptions(timestamp_format="%d/%m/%Y %H:%M",
                                              timezone="Europe/London")])
def test_a_few_odd_values_among_many_read_as_pandas_reads_them(read: ReadOptions) -> None:
    rng = np.random.default_rng(3)
    good = pd.date_range("2025-01-01", periods=3 * LEAF_ROWS, freq="37min")
    fmt = read.timestamp_format or "%Y-%m-%dT%H:%M:%S"
    values = list(good.strftime(fmt + ("Z" if not read.timestamp_format else "")))
    odd = (["04/3/2025 9:05", "31/02/2025 10:00", "soon", None, " 01/02/2025 10:00 "]
           if read.timestamp_format else
           ["2025-03-04 10:15:00", "2025-02-30T00:00:00Z", "soon", None, "2025-03-09 02:30:00",
            "2025-11-02 01:30:00", "2025-03-04T10:15:00 Z", "20250304T101500Z"])
    for at, value in zip(rng.choice(len(values), len(odd), replace=False), odd, strict=True):
        values[at] = value
    parsed = parse_timestamps(pd.Series(values, dtype="string"), read)
    pd.testing.assert_series_equal(parsed, _reference(values, read), check_names=False)
    assert parsed.isna().sum() >= 2


def test_times_beyond_the_nanosecond_range_are_unreadable_not_a_crash() -> None:
    parsed = parse_timestamps(pd.Series(["2300-01-01 10:00", "1500-01-01T00:00:00Z",
                                         "2025-01-01 10:00"]), ReadOptions())
    assert parsed.isna().tolist() == [True, True, False]


def test_typed_times_with_and_without_a_zone() -> None:
    aware = pa.array([pd.Timestamp("2025-06-01 12:00", tz="Europe/Berlin")],
                     pa.timestamp("us", tz="Europe/Berlin"))
    naive = pa.array([pd.Timestamp("2025-06-01 12:00")], pa.timestamp("ms"))
    read = ReadOptions(timezone="America/New_York")
    assert parse_times(aware, read).to_pylist() == [pd.Timestamp("2025-06-01T10:00Z")]
    assert parse_times(naive, read).to_pylist() == [pd.Timestamp("2025-06-01T16:00Z")]


def test_numbers_read_as_pandas_reads_them_and_nan_is_not_a_number() -> None:
    text = ["12", " 12 ", "1e3", "inf", "nan", "", None, "about 40", "-5.5", "0x10"]
    numbers, unreadable = parse_numbers(pa.array(text * LEAF_ROWS, pa.string()))
    expected = pd.to_numeric(pd.Series(text * LEAF_ROWS, dtype="string"), errors="coerce")
    np.testing.assert_array_equal(numbers.to_numpy(zero_copy_only=False),
                                  expected.astype("float64").to_numpy())
    # written but not a number: "nan", "" (a CSV's empty field is missing, not written),
    # "about 40", "0x10"
    assert unreadable.to_pylist()[:10] == [False, False, False, False, True, True, False,
                                           True, False, True]


# ------------------------------------------------------------------ pieces of the checks
def test_repeats_are_found_whatever_the_rows_order() -> None:
    ids = pa.chunked_array([["a", "b", "a", None, None, "b", "a"]])
    rows = np.array([1, 2, 3, 4, 5, 6, 7])
    assert repeated_rows([ids], rows).tolist() == [0, 0, 1, 0, 0, 2, 1]
    shuffle = np.array([6, 2, 0, 5, 1, 3, 4])
    shuffled = repeated_rows([ids.take(shuffle)], rows[shuffle])
    assert shuffled.tolist() == [1, 1, 0, 2, 0, 0, 0]  # the same repeats, in the new order
    moments = np.array([1, 1, 2, 0, 0, 2, 2])
    assert repeated_rows([ids, moments], rows).tolist() == [0, 0, 0, 0, 0, 0, 3]


def test_a_pandas_partition_is_checked_as_its_arrow_table(tmp_path: Path) -> None:
    root = write(tmp_path, leads=LEADS + "A,later,retail,x\n", events=EVENTS, changes=CHANGES)
    config = make_config(root)
    raw = read_table(root / "leads.csv", config.read)
    from_arrow = check_leads("leads.csv", raw, config)
    from_pandas = check_leads("leads.csv", raw.to_pandas(), config)
    pd.testing.assert_frame_equal(from_arrow.kept, from_pandas.kept)
    pd.testing.assert_frame_equal(from_arrow.problems, from_pandas.problems)
    assert set(from_arrow.problems["reason"]) == {
        "not a timestamp (expected ISO 8601, e.g. 2025-03-04T10:15:00Z)",
        "duplicate lead_id (first seen in row 1)", "not a number"}
