"""Writing a simulated funnel: the contract's files (CSV or Parquet, whole or in parts),
the same data laid out like a CRM export, and a dataset config pointed at them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

from predictive_scoring.config import DatasetConfig
from predictive_scoring.data.synthetic.funnel import (
    SimulatedFunnel,
    simulate_funnel,
)

TABLES = ("leads", "events", "stage_changes", "truth", "accounts", "account_truth")
PARQUET_FILES = {name: f"{name}.parquet" for name in TABLES}
"""The files :func:`write_funnel` writes as Parquet: ``DatasetConfig.pointed_at``'s files."""


def write_funnel_parts(parts: Iterable[SimulatedFunnel], out_dir: Path) -> dict[str, Path]:
    """Write each table as a folder of Parquet part files, one file per funnel part.

    Table ``events`` goes to ``out_dir/events.parquet/part-00000.parquet``, ... (a folder
    that Parquet readers, and the data contract's ``.parquet`` paths, read as one table).

    Args:
        parts: Funnel parts, e.g. from :func:`simulate_funnel_parts`.
        out_dir: Folder for the table folders (created if missing).

    Returns:
        Table name -> its folder.
    """
    folders = {name: out_dir / f"{name}.parquet" for name in TABLES}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for number, part in enumerate(parts):
        for name, folder in folders.items():
            pa_parquet.write_table(_arrow_table(getattr(part, name)),
                                   folder / f"part-{number:05d}.parquet")
    return folders


def write_funnel(funnel: SimulatedFunnel, out_dir: Path,
                 file_format: Literal["csv", "parquet"]) -> dict[str, Path]:
    """Write the tables as ``leads``, ``events``, ``stage_changes``, ``truth``, ``accounts``
    and ``account_truth`` files.

    CSV timestamps are ISO 8601 with offset (``2025-03-04T10:15:00+00:00``), missing
    details empty; Parquet keeps the UTC timestamp type.

    Args:
        funnel: The simulated funnel.
        out_dir: Folder for the files (created if missing).
        file_format: ``csv`` or ``parquet``.

    Returns:
        Table name -> path written.

    Raises:
        ValueError: Unknown file format.
    """
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file_format must be 'csv' or 'parquet', not {file_format!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in TABLES:
        path = out_dir / f"{name}.{file_format}"
        table = _arrow_table(getattr(funnel, name))
        if file_format == "csv":
            _write_csv(_with_iso_times(table), path)
        else:
            pa_parquet.write_table(table, path)
        written[name] = path
    return written


CRM_FILES = {"leads": "contacts.csv", "events": "activities.csv",
             "stage_changes": "lifecycle_stage_history.csv"}
"""File of each table in the CRM-export layout (``configs/datasets/example_crm_export.yaml``)."""
CRM_COLUMNS = {"lead_id": "hs_object_id", "created_at": "createdate", "timestamp": "hs_timestamp",
               "event_type": "activity_type", "detail": "activity_detail",
               "stage": "lifecyclestage", "seniority": "hs_seniority",
               "lead_source": "hs_analytics_source", "employees": "numberofemployees",
               "account_id": "associatedcompanyid", "buying_role": "hs_buying_role"}
"""Contract column -> its name in a HubSpot-style export."""
CRM_ACTIVITIES = {
    "page_view": "PAGE_VIEW", "email_send": "EMAIL_SENT", "email_open": "EMAIL_OPEN",
    "email_click": "EMAIL_CLICK", "email_unsubscribe": "EMAIL_UNSUBSCRIBE",
    "email_bounce": "EMAIL_BOUNCE", "content_download": "FORM_SUBMISSION_CONTENT",
    "webinar_registration": "WEBINAR_REGISTERED", "webinar_attendance": "WEBINAR_ATTENDED",
    "newsletter_signup": "FORM_SUBMISSION_NEWSLETTER", "demo_request": "MEETING_BOOKED",
    "contact_request": "FORM_SUBMISSION_CONTACT"}
"""Simulated event type -> the activity name the export uses."""
CRM_STAGES = {"salesacceptedlead": "sales accepted", "closedlost": "closed lost"}
"""Lifecycle stages the export names its own way (the rest keep HubSpot's names)."""
CRM_TIME_FORMAT, CRM_TIMEZONE = "%Y-%m-%d %H:%M", "America/New_York"
"""Export times: local wall-clock minutes of the portal's zone, without an offset."""


def crm_export(funnel: SimulatedFunnel) -> dict[str, pd.DataFrame]:
    """The funnel laid out like a HubSpot export: its column, activity and stage names,
    and local times without an offset (the truth is not part of an export).

    Returns:
        Table name (``leads``, ``events``, ``stage_changes``) -> frame to write as is.
    """
    events = funnel.events.assign(event_type=funnel.events["event_type"].map(CRM_ACTIVITIES))
    stages = funnel.stage_changes.assign(
        stage=funnel.stage_changes["stage"].replace(CRM_STAGES))
    tables = {"leads": funnel.leads, "events": events, "stage_changes": stages}
    return {name: _local_times(frame).rename(columns=CRM_COLUMNS)
            for name, frame in tables.items()}


def _local_times(frame: pd.DataFrame) -> pd.DataFrame:
    times = {name: column.dt.tz_convert(CRM_TIMEZONE).dt.strftime(CRM_TIME_FORMAT)
             for name, column in frame.items() if isinstance(column.dtype, pd.DatetimeTZDtype)}
    return frame.assign(**times)


def write_crm_export(funnel: SimulatedFunnel, out_dir: Path) -> dict[str, Path]:
    """Write :func:`crm_export` as CSV files named as in :data:`CRM_FILES`.

    Returns:
        Table name -> path written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, frame in crm_export(funnel).items():
        written[name] = out_dir / CRM_FILES[name]
        frame.to_csv(written[name], index=False)
    return written


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table; tz-aware columns become UTC timestamps."""
    columns = {}
    for name, column in frame.items():
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            naive = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            columns[name] = pa.array(naive).cast(pa.timestamp("ns", tz="UTC"))
        else:
            columns[name] = pa.array(column)
    return pa.table(columns)


def _write_csv(table: pa.Table, path: Path) -> None:
    """Plain CSV: an unquoted header, no quoting (no value holds a comma), NA empty."""
    with path.open("wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(
            include_header=False, quoting_style="none"))


def _with_iso_times(table: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 text with offset, e.g. ``2025-03-04T10:15:00+00:00``."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            seconds = table.column(index).cast(pa.timestamp("s", tz="UTC"))
            text = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S+00:00")
            table = table.set_column(index, field.name, text)
    return table



def simulate_into(config: DatasetConfig, n_leads: int, seed: int,
                  out_dir: Path) -> DatasetConfig:
    """Simulate ``n_leads`` leads with the config's snapshot settings, write them as
    Parquet to ``out_dir`` and return the config pointed at those files.

    Args:
        config: A simulated-dataset config (its ``snapshots`` give the truth's moments).
        n_leads: Leads to simulate.
        seed: Random seed.
        out_dir: Folder for the Parquet files (created if missing).
    """
    snapshots = config.snapshots
    write_funnel(simulate_funnel(n_leads, seed, snapshots.days_after_creation,
                                 snapshots.horizon_days), out_dir, "parquet")
    return config.pointed_at(out_dir, PARQUET_FILES)
