from pathlib import Path

import pandas as pd
import pytest

from predictive_scoring.config import (
    Attributes,
    DatasetConfig,
    EventFiles,
    ReadOptions,
    SnapshotConfig,
    TableSpec,
)
from predictive_scoring.data.dataset import (
    DataValidationError,
    all_problems,
    checks_summary,
    load_dataset,
    load_events_dataset,
    parse_timestamps,
    write_quarantine,
)
from predictive_scoring.data.snapshots import DECIDED, build_snapshots
from predictive_scoring.stages import Stage
from tests.helpers import message_of

LEADS = """lead_id,created_at,industry,employees
A,2025-01-01T00:00:00Z,software,50
B,2025-01-02T09:30:00+01:00,retail,12
C,2025-01-03T00:00:00Z,,
"""
EVENTS = """lead_id,timestamp,event_type,detail
A,2025-01-02T00:00:00Z,page_view,pricing
A,2025-01-05T12:00:00Z,demo_request,
B,2025-01-04T00:00:00Z,email_open,newsletter
"""
CHANGES = """lead_id,stage,timestamp
A,lead,2025-01-01T00:00:00Z
A,marketingqualifiedlead,2025-01-05T12:00:00Z
A,customer,2025-02-01T00:00:00Z
B,lead,2025-01-02T08:30:00Z
"""
STAGES = {"lead": Stage.LEAD, "marketingqualifiedlead": Stage.MQL, "customer": Stage.CUSTOMER,
          "closedlost": Stage.LOST, "opportunity": Stage.OPPORTUNITY}


def make_config(root: Path, ext: str = "csv", **changes: object) -> DatasetConfig:
    base = dict(
        name="tiny", shape="events", root=str(root),
        files=EventFiles(leads=f"leads.{ext}", events=f"events.{ext}",
                         stage_changes=f"stage_changes.{ext}"),
        attributes=Attributes(categorical=["industry"], numeric=["employees"]),
        stage_names=STAGES,
        snapshots=SnapshotConfig(days_after_creation=[1, 7], horizon_days=30),
        features={"windows_days": [7, 30], "min_key_count": 1},
        rules="configs/rules/classic_points.yaml",
    )
    return DatasetConfig.model_validate({**base, **changes})


def write(root: Path, leads: str = LEADS, events: str = EVENTS,
          changes: str = CHANGES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("leads", leads), ("events", events), ("stage_changes", changes)):
        (root / f"{name}.csv").write_text(text)
    return root


def problems_of(root: Path, **changes: object) -> pd.DataFrame:
    dataset = load_events_dataset(make_config(root, **changes), Path("."))
    return all_problems(dataset.checks)


def test_clean_data_loads_with_utc_times(tmp_path: Path) -> None:
    dataset = load_events_dataset(make_config(write(tmp_path)), Path("."))
    assert all_problems(dataset.checks).empty
    assert list(dataset.leads["lead_id"]) == ["A", "B", "C"]
    assert dataset.leads.loc[1, "created_at"] == pd.Timestamp("2025-01-02T08:30:00Z")
    assert str(dataset.leads["created_at"].dtype) == "datetime64[ns, UTC]"
    assert pd.isna(dataset.leads.loc[2, "employees"])
    assert dataset.leads["employees"].dtype == "float64"
    assert list(dataset.stage_changes["stage"]) == ["lead", "mql", "customer", "lead"]


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    csv = load_events_dataset(make_config(write(tmp_path / "csv")), Path("."))
    parquet_root = tmp_path / "pq"
    parquet_root.mkdir()
    for name in ("leads", "events", "stage_changes"):
        frame = pd.read_csv(tmp_path / "csv" / f"{name}.csv", dtype=str)
        for column in ("created_at", "timestamp"):
            if column in frame:  # real timestamps, as a warehouse would write them
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        frame.to_parquet(parquet_root / f"{name}.parquet")
    parquet = load_events_dataset(make_config(parquet_root, ext="parquet"), Path("."))
    for name in ("leads", "events", "stage_changes"):
        left = getattr(csv, name).drop(columns="employees", errors="ignore")
        right = getattr(parquet, name).drop(columns="employees", errors="ignore")
        pd.testing.assert_frame_equal(left, right, check_dtype=False)


def test_missing_column_names_file_column_and_what_exists(tmp_path: Path) -> None:
    root = write(tmp_path, events=EVENTS.replace("event_type", "activity"))
    with pytest.raises(DataValidationError) as caught:
        load_events_dataset(make_config(root), Path("."))
    message = str(caught.value)
    assert "events.csv" in message and "'event_type'" in message and "activity" in message


def test_missing_file(tmp_path: Path) -> None:
    root = write(tmp_path)
    (root / "events.csv").unlink()
    message = message_of(DataValidationError, load_events_dataset, make_config(root),
                                Path("."))
    assert "events.csv" in message and "file not found" in message


def test_renamed_columns_are_mapped(tmp_path: Path) -> None:
    root = write(tmp_path, events=EVENTS.replace("lead_id,timestamp,event_type,detail",
                                                 "contact,when,activity,page"))
    config = make_config(root, columns={"lead_id": "lead_id", "timestamp": "timestamp",
                                        "event_type": "activity", "detail": "page"})
    message = message_of(DataValidationError, load_events_dataset, config,
                                Path("."))
    assert "'lead_id'" in message  # events still use a different lead id column


@pytest.mark.parametrize(("table", "bad_text", "column", "reason"), [
    ("leads", "C,2025-01-03T00:00:00Z", "created_at", "not a timestamp"),
    ("leads", "C,2025-01-03T00:00:00Z,,", "lead_id", "duplicate lead_id (first seen in row 1)"),
    ("leads", "C,2025-01-03T00:00:00Z,,", "employees", "not a number"),
    ("events", "A,2025-01-05T12:00:00Z", "lead_id", "unknown lead_id"),
    ("events", "A,2025-01-05T12:00:00Z", "timestamp", "event before its lead was created"),
    ("events", "A,2025-01-05T12:00:00Z", "event_type", "event_type is empty"),
    ("stage_changes", "A,customer", "stage", "unknown stage name"),
    ("stage_changes", "A,customer", "lead_id", "unknown lead_id"),
])
def test_each_bad_row_is_named(tmp_path: Path, table: str, bad_text: str, column: str,
                               reason: str) -> None:
    replacement = {
        ("leads", "created_at"): "C,03/01/2025 noon,,",
        ("leads", "lead_id"): "A,2025-01-03T00:00:00Z,,",
        ("leads", "employees"): "C,2025-01-03T00:00:00Z,,about 40",
        ("events", "lead_id"): "Z,2025-01-05T12:00:00Z,demo_request,",
        ("events", "timestamp"): "A,2024-12-31T23:59:59Z,demo_request,",
        ("events", "event_type"): "A,2025-01-05T12:00:00Z,,",
        ("stage_changes", "stage"): "A,won,2025-02-01T00:00:00Z",
        ("stage_changes", "lead_id"): "Q,customer,2025-02-01T00:00:00Z",
    }[(table, column)]
    texts = {"leads": LEADS, "events": EVENTS, "changes": CHANGES}
    key = "changes" if table == "stage_changes" else table
    lines = texts[key].splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(bad_text))
    lines[index] = replacement
    texts[key] = "\n".join(lines) + "\n"
    root = write(tmp_path, texts["leads"], texts["events"], texts["changes"])
    dataset = load_events_dataset(make_config(root), Path("."))
    problems = all_problems(dataset.checks)
    hit = problems.loc[problems["column"] == column]
    assert len(hit) == 1, problems
    assert hit.iloc[0]["file"].endswith(f"{table}.csv")
    assert hit.iloc[0]["row"] == index  # header is line 0, data row numbers start at 1
    assert reason in hit.iloc[0]["reason"]
    summary = checks_summary(dataset.checks).set_index("file")
    assert (summary["read"] == summary["kept"] + summary["quarantined"]).all()
    assert summary["quarantined"].sum() >= 1


def test_quarantined_lead_takes_its_events_along_with_a_reason(tmp_path: Path) -> None:
    root = write(tmp_path, leads=LEADS.replace("B,2025-01-02T09:30:00+01:00", "B,yesterday"))
    dataset = load_events_dataset(make_config(root), Path("."))
    problems = all_problems(dataset.checks)
    event_problem = problems.loc[problems["file"].str.endswith("events.csv")].iloc[0]
    assert event_problem["row"] == 3
    assert "its lead was quarantined" in event_problem["reason"]
    assert "B" not in set(dataset.events["lead_id"])


def test_quarantine_files_keep_every_bad_row(tmp_path: Path) -> None:
    root = write(tmp_path, events=EVENTS + "Z,2025-01-05T00:00:00Z,page_view,blog\n"
                 "A,garbage,page_view,blog\n")
    dataset = load_events_dataset(make_config(root), Path("."))
    written = write_quarantine(dataset.checks, tmp_path / "q")
    assert [p.name for p in written] == ["events.quarantine.csv", "problems.csv"]
    quarantined = pd.read_csv(written[0])
    assert list(quarantined["row"]) == [4, 5]
    assert list(quarantined["lead_id"]) == ["Z", "A"]
    assert "unknown lead_id" in quarantined.loc[0, "_problems"]
    assert len(dataset.events) + len(quarantined) == 5


def test_error_lists_first_twenty_and_a_count(tmp_path: Path) -> None:
    bad = "".join(f"Z{i},2025-01-05T00:00:00Z,page_view,blog\n" for i in range(25))
    dataset = load_events_dataset(make_config(write(tmp_path, events=EVENTS + bad)), Path("."))
    message = str(DataValidationError(all_problems(dataset.checks)))
    assert "25 problem(s)" in message and "... and 5 more" in message
    assert message.count("unknown lead_id") == 20


@pytest.mark.parametrize(("text", "zone", "expected"), [
    ("2025-03-04T10:15:00Z", "UTC", "2025-03-04T10:15:00Z"),
    ("2025-03-04T10:15:00+02:00", "UTC", "2025-03-04T08:15:00Z"),
    ("2025-03-04T10:15:00-0500", "UTC", "2025-03-04T15:15:00Z"),
    ("2025-03-04 10:15:00", "UTC", "2025-03-04T10:15:00Z"),
    ("2025-03-04 10:15:00", "Europe/Berlin", "2025-03-04T09:15:00Z"),
    ("2025-03-04", "UTC", "2025-03-04T00:00:00Z"),
    # New York's autumn hour happens twice: the first (daylight, UTC-4) instant is kept.
    ("2025-11-02 01:30:00", "America/New_York", "2025-11-02T05:30:00Z"),
    # Its spring hour never happens: moved forward to the first valid instant (03:00 EDT).
    ("2025-03-09 02:30:00", "America/New_York", "2025-03-09T07:00:00Z"),
])
def test_time_zones_are_normalised_to_utc(text: str, zone: str, expected: str) -> None:
    parsed = parse_timestamps(pd.Series([text], dtype="string"), ReadOptions(timezone=zone))
    assert parsed.iloc[0] == pd.Timestamp(expected)


def test_custom_timestamp_format() -> None:
    read = ReadOptions(timestamp_format="%d/%m/%Y %H:%M")
    parsed = parse_timestamps(pd.Series(["04/03/2025 10:15", "bad"], dtype="string"), read)
    assert parsed.iloc[0] == pd.Timestamp("2025-03-04T10:15:00Z")
    assert pd.isna(parsed.iloc[1])


def test_bad_time_reason_names_the_expected_format(tmp_path: Path) -> None:
    config = make_config(write(tmp_path), read=ReadOptions(timestamp_format="%d/%m/%Y %H:%M"))
    dataset = load_events_dataset(config, Path("."))
    reasons = set(all_problems(dataset.checks)["reason"])
    assert "not a timestamp (expected format '%d/%m/%Y %H:%M')" in reasons


# ---------------------------------------------------------------- table shape
TABLE = """id;plan;seats;outcome;signed_up;closed_amount
1;pro;10;yes;2025-01-01;100
2;free;1;No;2025-01-02;
3;pro;x;maybe;2025-01-03;
1;pro;5;1;2025-01-04;50
"""


def table_config(root: Path) -> DatasetConfig:
    return DatasetConfig(
        name="crm", shape="table", root=str(root), read=ReadOptions(sep=";"),
        table=TableSpec(file="crm.csv", id_column="id", target="outcome",
                        time_column="signed_up", drop_columns=["closed_amount"]),
        attributes=Attributes(categorical=["plan"], numeric=["seats"]),
        rules="configs/rules/classic_points.yaml")


def test_table_shape_validates_target_ids_and_numbers(tmp_path: Path) -> None:
    (tmp_path / "crm.csv").write_text(TABLE)
    dataset = load_dataset(table_config(tmp_path), Path("."))
    problems = all_problems(dataset.checks)
    assert set(zip(problems["row"], problems["column"], strict=True)) == {
        (3, "seats"), (3, "target"), (4, "lead_id")}
    assert "maybe" in set(problems["value"])
    assert list(dataset.table["lead_id"]) == ["1", "2"]
    assert list(dataset.table["target"]) == [1, 0]
    assert dataset.dropped_for_leakage == ["closed_amount"]
    assert "closed_amount" not in dataset.table
    assert dataset.table["time"].iloc[1] == pd.Timestamp("2025-01-02T00:00:00Z")


# ----------------------------------------------------------------- snapshots
def test_snapshots_labels_and_exclusions(tmp_path: Path) -> None:
    dataset = load_events_dataset(make_config(write(tmp_path)), Path("."))
    config = SnapshotConfig(days_after_creation=[1, 7, 40], horizon_days=30)
    snapshots = build_snapshots(dataset, config, data_end=pd.Timestamp("2025-02-20T00:00:00Z"))
    frame = snapshots.frame.set_index(["lead_id", snapshots.frame["as_of"].dt.day])
    # A became a customer on 2025-02-01: exactly 30 days after the Jan 2 snapshot (outside
    # its half-open horizon), within 30 days of Jan 8; the day-40 snapshot (Feb 10) is past
    # the target and left out.
    assert frame.loc[("A", 2), "label"] == 0 and frame.loc[("A", 8), "label"] == 1
    assert snapshots.n_past_target == 1
    # Day-40 snapshots of B and C end their horizon after the data's end: censored.
    assert snapshots.n_censored == 2
    assert snapshots.n_candidates == 9
    assert len(snapshots.frame) == 9 - 1 - 2
    assert set(frame.loc["B", "label"]) == {0}
    assert frame.loc[("A", 2), "industry"] == "software"


def test_label_window_is_half_open(tmp_path: Path) -> None:
    changes = CHANGES.replace("A,customer,2025-02-01T00:00:00Z", "A,customer,2025-01-31T00:00:00Z")
    dataset = load_events_dataset(make_config(write(tmp_path, changes=changes)), Path("."))
    config = SnapshotConfig(days_after_creation=[0, 1], horizon_days=30)
    frame = build_snapshots(dataset, config, pd.Timestamp("2025-12-31T00:00:00Z")).frame
    a = frame.loc[frame["lead_id"] == "A"]
    a = a.set_index(a["as_of"].dt.day)["label"]
    # created Jan 1; customer Jan 31 = exactly 30 days after as_of Jan 1: outside [as_of, +30d)
    assert a.loc[1] == 0 and a.loc[2] == 1


def test_a_decision_is_a_win_or_a_loss_after_the_decision_stage(tmp_path: Path) -> None:
    """B is lost after its opportunity (a decision); C is lost before reaching one (sales
    turned it down: no decision); A is won; a snapshot counts the decisions in its horizon
    only, and its label stays the win alone."""
    changes = CHANGES + ("B,opportunity,2025-01-10T00:00:00Z\n"
                         "B,closedlost,2025-01-20T00:00:00Z\n"
                         "C,lead,2025-01-03T00:00:00Z\nC,closedlost,2025-01-15T00:00:00Z\n")
    dataset = load_events_dataset(make_config(write(tmp_path, changes=changes)), Path("."))
    config = SnapshotConfig(days_after_creation=[1, 7, 25], horizon_days=30,
                            decision_after=Stage.OPPORTUNITY)
    frame = build_snapshots(dataset, config, pd.Timestamp("2025-12-31T00:00:00Z")).frame
    frame = frame.set_index(["lead_id", (frame["as_of"] - frame["created_at"]).dt.days])
    assert frame.loc[("A", 7), ["label", DECIDED]].tolist() == [1, 1]
    assert frame.loc[("A", 1), ["label", DECIDED]].tolist() == [0, 0]  # Feb 1 is 30 days on
    assert frame.loc[("B", 1), ["label", DECIDED]].tolist() == [0, 1]
    assert frame.loc[("B", 25), DECIDED] == 0  # lost on Jan 20, before this snapshot
    assert set(frame.loc["C", DECIDED]) == {0}
    # without the setting there is no decision column
    plain = SnapshotConfig(days_after_creation=[1, 7, 25], horizon_days=30)
    end = pd.Timestamp("2025-12-31T00:00:00Z")
    assert DECIDED not in build_snapshots(dataset, plain, end).frame


@pytest.mark.parametrize("stage", [Stage.CUSTOMER, Stage.LOST])
def test_the_decision_stage_comes_before_the_target(stage: Stage) -> None:
    with pytest.raises(ValueError, match="decision_after must be a funnel stage before"):
        SnapshotConfig(days_after_creation=[1], horizon_days=30, decision_after=stage)


def test_calendar_snapshots(tmp_path: Path) -> None:
    dataset = load_events_dataset(make_config(write(tmp_path)), Path("."))
    config = SnapshotConfig(every_days=10, horizon_days=30)
    snapshots = build_snapshots(dataset, config, pd.Timestamp("2025-03-01T00:00:00Z"))
    frame = snapshots.frame
    assert (frame["as_of"] > frame["created_at"]).all()
    assert set(frame["as_of"].dt.strftime("%m-%d")) <= {"01-11", "01-21", "01-31"}
    assert (frame["as_of"] + pd.Timedelta(days=30) <= pd.Timestamp("2025-03-01", tz="UTC")).all()
    # A reached customer on Feb 1: its Jan 11/21/31 snapshots are all positive.
    assert set(frame.loc[frame["lead_id"] == "A", "label"]) == {1}


def test_shared_text_holds_each_value_once_and_reads_as_the_column() -> None:
    """The Dask driver's stage names per snapshot: the same values as the column's own
    object array (missing ones NaN), each distinct value one string object."""
    import numpy as np

    from predictive_scoring.data.dataset import shared_text

    column = pd.Series(["MQL", "Lead", None, "MQL", "SQL"] * 200, dtype="str")
    shared, own = shared_text(column), column.to_numpy(object)
    assert shared.dtype == object and len(shared) == len(own)
    assert all(a == b or (pd.isna(a) and pd.isna(b)) for a, b in zip(shared, own, strict=True))
    assert len({id(v) for v in shared if isinstance(v, str)}) == 3
    assert np.isnan(shared[2])
