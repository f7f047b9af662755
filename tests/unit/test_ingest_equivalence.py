"""The Arrow reader keeps and quarantines the same rows, with the same problems, as the
pandas reader it replaced (frozen in ``tests/reference/pandas_reader.py``), on simulated
files damaged in every way both readers understand: CSV and Parquet, ISO 8601 and a CRM
export's own format, UTC and a zone with daylight saving.

(Rows whose field count differs from the header's are left out here: the pandas reader
refused the whole file for a long row and silently padded a short one; the new
behaviour is tested in test_read.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictive_scoring.config import DatasetConfig, ReadOptions, TableSpec
from predictive_scoring.data import dataset
from predictive_scoring.data.synthetic import (
    CRM_FILES,
    crm_export,
    simulate_funnel,
    write_funnel,
)
from tests.conftest import REPO
from tests.conftest import SIMULATED as SIMULATED_WITH_ACCOUNTS
from tests.reference import pandas_reader

TABLES = ("leads", "events", "stage_changes")
# The frozen pandas reader predates the optional accounts section: both readers are
# compared on the contract it knew (accounts are read and checked in tests/unit/test_accounts.py).
SIMULATED = SIMULATED_WITH_ACCOUNTS.model_copy(update={"accounts": None})
CRM = DatasetConfig.model_validate(
    __import__("yaml").safe_load((REPO / "configs/datasets/example_crm_export.yaml")
                                 .read_text())).model_copy(update={"accounts": None})

BAD_ISO = ["not a time", "", "2025-02-30T00:00:00Z", "2025-03-04 10:15:00",
           "2025-03-04T10:15:00.250+02:00", "2025-11-02 01:30:00", "2025-03-09 02:30:00",
           " 2025-03-04T10:15:00Z ", "2025-03-04T10:15Z", "20250304T101500Z",
           "2025-03-04t10:15:00z", "2025-03-04T10:15:00 Z", "2025-03-04T24:00:00Z",
           "2025-03-04T10:15:00-0500", "2025-03-04 10", "2020-01-01T00:00:00Z"]
"""Times each way a CRM export gets them wrong or unusual (date-only values excepted: the
pandas reader took "2025-03-04" for a time with the offset "-04")."""
BAD_CRM_TIMES = ["2025-3-9 2:30", "2025-02-30 00:00", "2025-03-09 02:30", "2025-11-02 01:30",
                 "2025-03-09 02:30+01:00", "2025-03-09T02:30:00Z", "yesterday", "",
                 " 2025-03-04 10:15 ", "2025-03-04 10:15:00", "2019-06-01 09:00"]
BAD_NUMBERS = ["about 40", "nan", "", " 12 ", "1e3", "inf", "-5", "1,000", "0x10"]


def _put(frame: pd.DataFrame, column: str, values: list[str], rng: np.random.Generator,
         share: float = 0.0) -> None:
    """Write each value into a random row (and, with ``share``, into that share of rows)."""
    count = max(len(values), int(len(frame) * share))
    rows = rng.choice(len(frame), size=count, replace=False)
    frame.loc[frame.index[rows], column] = [values[i % len(values)] for i in range(count)]


def damaged(tables: dict[str, pd.DataFrame], names: dict[str, str], times: list[str],
            seed: int) -> dict[str, pd.DataFrame]:
    """The tables (all text) with bad and unusual values in every checked column."""
    rng = np.random.default_rng(seed)
    leads, events, changes = (tables[name].astype("string").copy() for name in TABLES)
    _put(leads, names["created_at"], times, rng)
    _put(leads, names["lead_id"], ["", "  ", f" {leads.iloc[5][names['lead_id']]} "], rng)
    for _ in range(3):  # repeated ids
        source, target = rng.choice(len(leads), size=2, replace=False)
        leads.iloc[target, leads.columns.get_loc(names["lead_id"])] = \
            leads.iloc[source][names["lead_id"]]
    _put(leads, names["employees"], BAD_NUMBERS, rng)
    _put(events, names["lead_id"], ["NOBODY", "", "  "], rng)
    _put(events, names["timestamp"], times, rng, share=0.01)
    _put(events, names["event_type"], ["", "   ", " page_view "], rng)
    _put(changes, names["stage"], ["hot_lead", "", f" {changes.iloc[0][names['stage']]} "], rng)
    _put(changes, names["timestamp"], times[:4], rng)
    return {"leads": leads, "events": events, "stage_changes": changes}


def _same(new: dataset.EventsDataset | dataset.TableDataset,
          old: pandas_reader.EventsDataset | pandas_reader.TableDataset) -> None:
    assert new.checks.keys() == old.checks.keys()
    for name, check in new.checks.items():
        before = old.checks[name]
        pd.testing.assert_frame_equal(check.kept.reset_index(drop=True),
                                      before.kept.reset_index(drop=True), check_dtype=False)
        pd.testing.assert_frame_equal(_text(check.problems), _text(before.problems))
        pd.testing.assert_frame_equal(_text(check.quarantined), _text(before.quarantined))
        assert check.n_read == before.n_read


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text; a creation time in a reason without the zero fraction the
    pandas reader padded it with when another lead's time had one (it wrote the whole
    column at the precision of its most precise value)."""
    frame = frame.reset_index(drop=True).astype("string").fillna("<missing>")
    for column in ("reason", "_problems"):
        if column in frame:
            frame[column] = frame[column].str.replace(r"\.0+(?=\+00:00\))", "", regex=True)
    return frame


@pytest.fixture(scope="module")
def funnel() -> object:
    snapshots = SIMULATED.snapshots
    return simulate_funnel(400, 5, snapshots.days_after_creation, snapshots.horizon_days)


@pytest.fixture(scope="module")
def contract_text(funnel: object, tmp_path_factory: pytest.TempPathFactory
                  ) -> dict[str, pd.DataFrame]:
    """The simulated funnel as its CSV files read back as text (what a CRM sends)."""
    folder = tmp_path_factory.mktemp("contract")
    write_funnel(funnel, folder, "csv")
    return {name: pd.read_csv(folder / f"{name}.csv", dtype="string", keep_default_na=False)
            for name in TABLES}


CONTRACT_NAMES = {"lead_id": "lead_id", "created_at": "created_at", "employees": "employees",
                  "timestamp": "timestamp", "event_type": "event_type", "stage": "stage"}


def _both(config: DatasetConfig) -> None:
    new = dataset.load_dataset(config, Path("."))
    _same(new, pandas_reader.load_dataset(config, Path(".")))
    damaged_files = [c for c in new.checks.values() if len(c.quarantined)]
    assert len(damaged_files) >= min(2, len(new.checks))  # the comparison is not vacuous


@pytest.mark.parametrize("timezone", ["UTC", "America/New_York"])
@pytest.mark.parametrize("seed", [1, 2])
def test_damaged_csv(contract_text: dict, tmp_path: Path, timezone: str, seed: int) -> None:
    for name, frame in damaged(contract_text, CONTRACT_NAMES, BAD_ISO, seed).items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    config = SIMULATED.pointed_at(tmp_path, {n: f"{n}.csv" for n in TABLES}).model_copy(
        update={"read": ReadOptions(timezone=timezone)})
    _both(config)


def test_damaged_parquet_of_text(contract_text: dict, tmp_path: Path) -> None:
    for name, frame in damaged(contract_text, CONTRACT_NAMES, BAD_ISO, 3).items():
        frame.replace("", pd.NA).to_parquet(tmp_path / f"{name}.parquet")
    _both(SIMULATED.pointed_at(tmp_path, {n: f"{n}.parquet" for n in TABLES}))


def test_parquet_with_typed_times_and_numbers(funnel: object, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    leads = funnel.leads.copy()
    leads.loc[leads.index[:3], "created_at"] = pd.NaT
    leads.loc[leads.index[3:6], "employees"] = np.nan
    events = funnel.events.astype({"lead_id": "string", "event_type": "string"})
    _put(events, "lead_id", ["NOBODY", ""], rng)
    _put(events, "event_type", ["", "  "], rng)
    events.loc[events.index[7], "timestamp"] = pd.Timestamp("2019-01-01", tz="UTC")
    naive = funnel.stage_changes.assign(
        timestamp=funnel.stage_changes["timestamp"].dt.tz_localize(None))  # zone-less times
    for name, frame in {"leads": leads, "events": events, "stage_changes": naive}.items():
        frame.to_parquet(tmp_path / f"{name}.parquet")
    config = SIMULATED.pointed_at(tmp_path, {n: f"{n}.parquet" for n in TABLES}).model_copy(
        update={"read": ReadOptions(timezone="Europe/Berlin")})
    _both(config)


def test_damaged_crm_export_with_its_own_time_format(funnel: object, tmp_path: Path) -> None:
    export = {name: frame.astype("string") for name, frame in crm_export(funnel).items()}
    names = {"lead_id": "hs_object_id", "created_at": "createdate",
             "employees": "numberofemployees", "timestamp": "hs_timestamp",
             "event_type": "activity_type", "stage": "lifecyclestage"}
    for name, frame in damaged(export, names, BAD_CRM_TIMES, 5).items():
        frame.to_csv(tmp_path / CRM_FILES[name], index=False)
    _both(CRM.pointed_at(tmp_path, CRM_FILES))


def test_damaged_table_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    n = 500
    table = pd.DataFrame({
        "id": [f"C{i:04d}" for i in range(n)],
        "plan": rng.choice(["free", "pro", "team"], n),
        "seats": rng.integers(1, 50, n).astype(str),
        "outcome": rng.choice(["yes", "no", "Yes", " NO ", "1", "0"], n),
        "signed_up": pd.date_range("2025-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M"),
    }).astype("string")
    _put(table, "outcome", ["maybe", "", "true "], rng)
    _put(table, "seats", BAD_NUMBERS, rng)
    _put(table, "signed_up", ["soon", "", "2025-02-30 10:00", "2025-03-09 02:30"], rng)
    _put(table, "id", ["", table.iloc[0]["id"]], rng)
    table.to_csv(tmp_path / "crm.csv", sep=";", index=False)
    config = DatasetConfig(
        name="crm", shape="table", root=str(tmp_path),
        read=ReadOptions(sep=";", timestamp_format="%Y-%m-%d %H:%M", timezone="America/Chicago"),
        table=TableSpec(file="crm.csv", id_column="id", target="outcome",
                        time_column="signed_up"),
        attributes={"categorical": ["plan"], "numeric": ["seats"]},
        rules="configs/rules/classic_points.yaml")
    _both(config)
