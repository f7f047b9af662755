"""Read and validate both shapes of the data contract, and report what validation found.

Reading never loses a row: every row read is either kept or quarantined with the
file, row number, column, value and reason of each problem (:mod:`.problems`). Files
are read with pyarrow (:mod:`.read`) and checked with vectorised Arrow kernels
(:mod:`.validate`); the kept rows are converted to pandas once. Callers decide whether
problems stop the run (:class:`DataValidationError`) or go to a quarantine file.

Row numbers are 1-based data rows of the file as read (the header is not a row), so
row 1 is the first line under the header of a CSV file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from predictive_scoring.config import ColumnNames, DatasetConfig, ReadOptions
from predictive_scoring.data.problems import (
    PROBLEM_COLUMNS,
    ROW,
    DataValidationError,
    TableCheck,
    describe_problems,
    file_error,
)
from predictive_scoring.data.read import read_table
from predictive_scoring.data.validate import (
    KnownLeads,
    account_required,
    attribute_names,
    check_accounts,
    check_events,
    check_leads,
    check_scoring_events,
    check_stage_changes,
    check_table,
    require_columns,
)
from predictive_scoring.data.values import parse_timestamps

__all__ = [
    "PROBLEM_COLUMNS", "ROW", "DataValidationError", "EventsDataset", "KnownLeads",
    "TableCheck", "TableDataset", "all_problems", "check_events", "check_leads",
    "check_scoring_events", "check_stage_changes", "checks_summary", "dataset_files",
    "describe_problems", "fingerprint", "load_dataset", "load_events_dataset",
    "load_table_dataset", "load_truth", "parse_timestamps", "parse_truth",
    "read_scoring_events", "write_quarantine",
]


# ------------------------------------------------------------------ events shape
@dataclass(frozen=True)
class EventsDataset:
    """The events shape, validated: leads, events and stage changes in contract names.

    Stage changes carry funnel :class:`Stage` values (the CRM names mapped).
    """

    leads: pd.DataFrame
    events: pd.DataFrame
    stage_changes: pd.DataFrame
    checks: dict[str, TableCheck]
    truth: pd.DataFrame | None = None
    accounts: AccountsData | None = None


def load_events_dataset(config: DatasetConfig, data_dir: Path) -> EventsDataset:
    """Read and validate the three tables of an events-shaped dataset.

    Args:
        config: The dataset config (shape ``events``).
        data_dir: Where ``{data_dir}`` in the config's root points.

    Returns:
        The kept rows of each table and what validation made of each file.

    Raises:
        DataValidationError: A file cannot be read, lacks a column, or the leads file
            has no rows.
    """
    root = config.root_dir(data_dir)
    files = config.files
    paths = {"leads": root / files.leads, "events": root / files.events,
             "stage_changes": root / files.stage_changes}
    raws = {name: read_table(path, config.read) for name, path in paths.items()}
    if raws["leads"].num_rows == 0:
        raise file_error(paths["leads"], "no leads: the file has a header but no rows")
    leads = check_leads(str(paths["leads"]), raws.pop("leads"), config)
    known = KnownLeads.of(leads, config.columns.lead_id)
    events = check_events(str(paths["events"]), raws.pop("events"), config, known)
    changes = check_stage_changes(str(paths["stage_changes"]), raws.pop("stage_changes"),
                                  config, known)
    truth = load_truth(root / files.truth, config.read) if files.truth else None
    checks = {"leads": leads, "events": events, "stage_changes": changes}
    accounts = load_accounts(config, root, checks)
    return EventsDataset(leads.kept, events.kept, changes.kept, checks, truth, accounts)


def load_truth(path: Path, read: ReadOptions) -> pd.DataFrame | None:
    """The simulator's true probabilities, or None when the file is absent."""
    if not path.exists():
        return None
    return parse_truth(str(path), read_table(path, read).to_pandas(), read)


def parse_truth(file: str, frame: pd.DataFrame, read: ReadOptions) -> pd.DataFrame:
    """``lead_id``, ``as_of`` (UTC) and ``true_probability`` from a truth file as read."""
    require_columns(file, frame, {c: c for c in ("lead_id", "as_of", "true_probability")})
    return pd.DataFrame({"lead_id": frame["lead_id"].astype("string"),
                         "as_of": parse_timestamps(frame["as_of"], read),
                         "true_probability": pd.to_numeric(frame["true_probability"])})


# ------------------------------------------------------------------- accounts
@dataclass(frozen=True)
class AccountsData:
    """The accounts file's kept rows (None without one) and the account truth, if any.

    Attributes:
        table: ``account_id`` and the company attributes, one row per account.
        truth: ``account_id``, ``as_of``, ``true_probability`` (the simulator's).
    """

    table: pd.DataFrame | None
    truth: pd.DataFrame | None


def load_accounts(config: DatasetConfig, root: Path,
                  checks: dict[str, TableCheck]) -> AccountsData | None:
    """Read the accounts section's files (adding the accounts file's check to ``checks``)."""
    spec = config.accounts
    if spec is None:
        return None
    table = None
    if spec.file:
        path = root / spec.file
        check = check_accounts(str(path), read_table(path, config.read), config)
        checks["accounts"] = check
        table = check.kept.drop(columns=[ROW], errors="ignore")
    truth = None
    if spec.truth and (root / spec.truth).exists():
        path = root / spec.truth
        frame = read_table(path, config.read).to_pandas()
        require_columns(str(path), frame, {c: c for c in ("account_id", "as_of",
                                                          "true_probability")})
        truth = pd.DataFrame({"account_id": frame["account_id"].astype("string"),
                              "as_of": parse_timestamps(frame["as_of"], config.read),
                              "true_probability": pd.to_numeric(frame["true_probability"])})
    return AccountsData(table, truth)


# ------------------------------------------------------------------- table shape
@dataclass(frozen=True)
class TableDataset:
    """The table shape, validated: lead_id, target (0/1), optional time, attributes."""

    table: pd.DataFrame
    checks: dict[str, TableCheck]
    dropped_for_leakage: list[str] = field(default_factory=list)
    accounts: AccountsData | None = None


def load_table_dataset(config: DatasetConfig, data_dir: Path) -> TableDataset:
    """Read and validate a table-shaped dataset (one row per lead with its outcome)."""
    spec = config.table
    path = config.root_dir(data_dir) / spec.file
    raw = read_table(path, config.read)
    required = {"target": spec.target, **{a: a for a in attribute_names(config)},
                **account_required(config)}
    if spec.id_column:
        required["lead_id"] = spec.id_column
    if spec.time_column:
        required["time"] = spec.time_column
    require_columns(str(path), raw, required)
    if raw.num_rows == 0:
        raise file_error(path, "no leads: the file has a header but no rows")
    check = check_table(str(path), raw, config)
    table = check.kept.assign(target=check.kept["target"].astype("int8"))
    checks = {"table": check}
    accounts = load_accounts(config, config.root_dir(data_dir), checks)
    return TableDataset(table, checks,
                        [c for c in spec.drop_columns if c in raw.column_names], accounts)


# ------------------------------------------------------------- policy and output
def checks_summary(checks: Mapping[str, TableCheck]) -> pd.DataFrame:
    """Rows read, kept and quarantined, and problems found, per file."""
    rows = [{"file": c.file, "read": c.n_read, "kept": len(c.kept),
             "quarantined": len(c.quarantined), "problems": len(c.problems)}
            for c in checks.values()]
    return pd.DataFrame(rows, columns=["file", "read", "kept", "quarantined", "problems"])


def all_problems(checks: Mapping[str, TableCheck]) -> pd.DataFrame:
    """Every problem of every file, in file order then row order."""
    return pd.concat([c.problems for c in checks.values()], ignore_index=True)


def write_quarantine(checks: Mapping[str, TableCheck], out_dir: Path) -> list[Path]:
    """Write each file's quarantined rows (as read, with row and reasons) to ``out_dir``.

    Returns:
        The files written: ``<name>.quarantine.csv`` per input file with bad rows, and
        ``problems.csv`` listing every problem.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, check in checks.items():
        if len(check.quarantined):
            path = out_dir / f"{name}.quarantine.csv"
            check.quarantined.rename(columns={ROW: "row"}).to_csv(path, index=False)
            written.append(path)
    if written:
        problems = out_dir / "problems.csv"
        all_problems(checks).to_csv(problems, index=False)
        written.append(problems)
    return written


def load_dataset(config: DatasetConfig, data_dir: Path) -> EventsDataset | TableDataset:
    """Read and validate a dataset of either shape."""
    if config.shape == "events":
        return load_events_dataset(config, data_dir)
    return load_table_dataset(config, data_dir)


def fingerprint(paths: Sequence[Path]) -> str:
    """A short SHA-256 of the files' bytes: which data a model was trained on."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def dataset_files(config: DatasetConfig, data_dir: Path) -> list[Path]:
    """The files a dataset config reads."""
    root = config.root_dir(data_dir)
    accounts = [root / config.accounts.file] if config.accounts and config.accounts.file else []
    if config.shape == "table":
        return [root / config.table.file, *accounts]
    files = config.files
    return [root / files.leads, root / files.events, root / files.stage_changes, *accounts]


def read_scoring_events(path: Path, read: ReadOptions,
                        columns: ColumnNames) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events to score with: the usable rows, and the rows that are not (with reasons).

    Events of leads that are not being scored are harmless and kept; an event without a
    lead, a parseable timestamp or a type cannot be used.
    """
    check = check_scoring_events(str(path), read_table(path, read), read, columns)
    # Scoring looks events up by lead chunk after chunk: category codes make that ~50x
    # faster than matching Arrow strings, and coded types and details are looked up in
    # the model's vocabulary once per category instead of once per event.
    return categorised(check.kept, ("lead_id", "event_type", "detail")), check.quarantined


def categorised(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The frame with those of ``columns`` it holds as pandas categoricals (each value
    stored once, each row a small code)."""
    return frame.assign(**{c: frame[c].astype("category") for c in columns if c in frame})


def shared_text(values: pd.Series) -> np.ndarray:
    """A text column as an object array whose equal values are one Python string (missing
    values NaN): 8 bytes a row, where ``to_numpy(object)`` makes a string per row (about
    60 bytes; 1.8 GB for the 29.5M snapshots of 5M leads)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.append(np.asarray(uniques, dtype=object), np.nan)[codes]
