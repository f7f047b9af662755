"""Validation of the contract's tables: vectorised checks on Arrow arrays, one problem per
bad value named by file, row, column, value and reason, and one conversion to pandas of
the rows kept.

Each check takes the rows as read (an Arrow table from :mod:`.read`, or a pandas frame:
a Dask partition), numbered in ``_row``, and returns a :class:`TableCheck`. Only the bad
rows are ever formatted for messages, so a clean file costs a few passes of Arrow
kernels. A row whose fields did not fit the CSV header (``_malformed``) gets that one
problem and no others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from predictive_scoring.config import ColumnNames, DatasetConfig, ReadOptions
from predictive_scoring.data.problems import (
    ROW,
    DataValidationError,
    TableCheck,
    no_problems,
    problem_frame,
)
from predictive_scoring.data.read import HIDDEN, MALFORMED, MALFORMED_TEXT
from predictive_scoring.data.values import as_text, chunked, parse_numbers, parse_times

KEY_TEXT = ("lead_id", "event_type")
"""Kept columns handed on as pandas' ``string`` dtype (the others as Arrow-backed ``str``)."""

Reason = str | Callable[[np.ndarray], Sequence[str]]
"""One reason for every bad row, or a function of the bad rows' positions."""


# ------------------------------------------------------------------ the pieces
def as_table(raw: pa.Table | pd.DataFrame) -> pa.Table:
    """Rows as read as an Arrow table (a pandas frame, such as a Dask partition, is
    converted once; its index is dropped)."""
    if isinstance(raw, pa.Table):
        return raw
    return pa.Table.from_pandas(raw, preserve_index=False)


def _mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy (null counts as False)."""
    return chunked(values).fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def trimmed_text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Values as text without surrounding whitespace."""
    return pc.utf8_trim_whitespace(as_text(values))


def is_empty(trimmed: pa.ChunkedArray) -> np.ndarray:
    """Missing, or nothing but whitespace (of text already trimmed)."""
    return _mask(pc.or_kleene(pc.is_null(trimmed), pc.equal(trimmed, "")))


class Found:
    """The problems of one file, gathered check by check, and which rows have any."""

    def __init__(self, file: str, raw: pa.Table) -> None:
        self.file = file
        self.raw = raw
        self.rows = raw[ROW].to_numpy()
        self.bad = np.zeros(raw.num_rows, dtype=bool)
        self.frames: list[pd.DataFrame] = []
        self.skip = np.zeros(raw.num_rows, dtype=bool)
        if MALFORMED in raw.column_names:
            self.skip = _mask(pc.is_valid(raw[MALFORMED]))
            at = np.flatnonzero(self.skip)
            if len(at):
                self.frames.append(problem_frame(
                    file, self.rows[at], "", self.values(raw[MALFORMED_TEXT], at),
                    self.values(raw[MALFORMED], at).to_numpy()))
                self.bad |= self.skip

    def values(self, values: pa.ChunkedArray, at: np.ndarray) -> pd.Series:
        """Some rows' values as pandas writes them (for messages)."""
        return chunked(values).take(at).to_pandas().astype("string").reset_index(drop=True)

    def add(self, mask: np.ndarray, column: str, values: pa.ChunkedArray | None,
            reason: Reason) -> None:
        """Problems for the rows where ``mask`` holds (``values``: what to show)."""
        at = np.flatnonzero(mask & ~self.skip)
        if not len(at):
            return
        shown = self.values(values, at) if values is not None else ""
        reasons = reason if isinstance(reason, str) else list(reason(at))
        self.frames.append(problem_frame(self.file, self.rows[at], column, shown, reasons))
        self.bad[at] = True

    def missing(self, trimmed: pa.ChunkedArray, column: str) -> None:
        """Rows whose ``column`` (text already trimmed) is empty."""
        self.add(is_empty(trimmed), column, trimmed, f"{column} is empty")

    def times(self, raw: pa.ChunkedArray, parsed: pa.ChunkedArray, column: str,
              read: ReadOptions) -> None:
        """Rows whose time is missing or cannot be read."""
        expected = (f"format {read.timestamp_format!r}" if read.timestamp_format
                    else "ISO 8601, e.g. 2025-03-04T10:15:00Z")
        was_missing = _mask(pc.is_null(raw))
        self.add(_mask(pc.is_null(parsed)), column, raw,
                 lambda at: np.where(was_missing[at], "missing timestamp",
                                     f"not a timestamp (expected {expected})"))

    def numbers(self, raw: pa.Table, columns: Sequence[str]) -> dict[str, pa.ChunkedArray]:
        """Numeric columns as float64 (what is not a number becomes null, and a problem)."""
        parsed = {}
        for column in columns:
            parsed[column], unreadable = parse_numbers(raw[column])
            self.add(_mask(unreadable), column, raw[column], "not a number")
        return parsed

    def check(self, parsed: pa.Table) -> TableCheck:
        """Keep the rows without problems; quarantine the others with their reasons."""
        problems = (pd.concat(self.frames, ignore_index=True) if self.frames
                    else no_problems())
        problems = problems.sort_values("row", kind="stable").reset_index(drop=True)
        if not self.bad.any():
            return TableCheck(self.file, to_frame(parsed), _quarantined(
                self.raw.slice(0, 0), problems), problems)
        keep = pa.array(~self.bad)
        return TableCheck(self.file, to_frame(parsed.filter(keep)),
                          _quarantined(self.raw.filter(pa.array(self.bad)), problems), problems)


def _quarantined(bad: pa.Table, problems: pd.DataFrame) -> pd.DataFrame:
    shown = bad.drop_columns([c for c in (MALFORMED, MALFORMED_TEXT) if c in bad.column_names])
    frame = shown.to_pandas()
    summary = problems.groupby("row", sort=False)["reason"].agg(
        lambda reasons: "; ".join(dict.fromkeys(reasons)))
    frame["_problems"] = frame[ROW].map(summary).astype("str")
    return frame


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The one conversion of kept rows to pandas (lead ids and event types as ``string``)."""
    frame = table.to_pandas()
    for column in KEY_TEXT:
        if column in frame:
            frame[column] = frame[column].astype("string")
    return frame


def require_columns(file: str, raw: pa.Table | pd.DataFrame, required: Mapping[str, str]) -> None:
    """Fail with every missing column named, and the columns the file does have.

    Args:
        file: File name for the message.
        raw: The rows as read.
        required: Contract name -> the column name expected in the file.
    """
    names = raw.column_names if isinstance(raw, pa.Table) else [str(c) for c in raw.columns]
    missing = [(contract, name) for contract, name in required.items() if name not in names]
    if not missing:
        return
    found = [c for c in names if c not in HIDDEN]
    rows = [[file, 0, name, "", f"required column missing (the {contract} column); the file "
             f"has {found}"] for contract, name in missing]
    raise DataValidationError(pd.DataFrame(rows, columns=["file", "row", "column", "value",
                                                          "reason"]), "missing columns")


def repeated_rows(keys: Sequence[pa.ChunkedArray | np.ndarray], rows: np.ndarray) -> np.ndarray:
    """For each row, the row where its key was first seen if that is an earlier row, else 0.

    Args:
        keys: One or more aligned key columns (a row repeats another when all are equal);
            a row with a missing first key never repeats.
        rows: Each row's number (rows may come in any order, as in a Dask partition).
    """
    order = np.argsort(rows, kind="stable")
    combined = None
    for key in keys:
        values = key.to_pandas() if isinstance(key, pa.ChunkedArray) else pd.Series(key)
        codes, uniques = pd.factorize(values.iloc[order])
        if combined is None:
            missing = codes < 0
            combined = codes.astype(np.int64)
        else:
            combined = combined * (len(uniques) + 1) + codes + 1
    if combined is None:
        return np.zeros(len(rows), dtype=np.int64)
    codes, _ = pd.factorize(combined)
    # factorize numbers keys in order of first appearance: a first appearance is the row
    # whose code exceeds every code before it
    running = np.maximum.accumulate(codes)
    is_first = np.r_[True, codes[1:] > running[:-1]] if len(codes) else np.zeros(0, bool)
    first_row = rows[order][is_first]
    found = np.where(is_first | missing, 0, first_row[codes])
    result = np.empty(len(rows), dtype=np.int64)
    result[order] = found
    return result


# ------------------------------------------------------------------ leads
@dataclass(frozen=True)
class KnownLeads:
    """The leads other tables may refer to, and the ids that were quarantined.

    Attributes:
        file: The leads file (for messages).
        ids: Kept lead ids.
        created_ns: Their creation times, nanoseconds since the epoch (UTC).
        quarantined: Ids of quarantined lead rows (stripped).
    """

    file: str
    ids: pa.ChunkedArray
    created_ns: pa.ChunkedArray
    quarantined: pa.ChunkedArray

    @classmethod
    def of(cls, leads: TableCheck, id_column: str) -> KnownLeads:
        """From the check of the leads file (``id_column`` as named in that file)."""
        created = leads.kept["created_at"].dt.tz_convert("UTC").array.as_unit("ns").asi8
        bad = leads.quarantined.get(id_column, pd.Series(dtype="string"))
        return cls(leads.file, chunked(pa.array(leads.kept["lead_id"], pa.string())),
                   chunked(pa.array(created, pa.int64())),
                   trimmed_text(chunked(pa.array(bad.astype("string"), pa.string()))))


ACCOUNT_ID, ACCOUNT_ROLE = "account_id", "account_role"
"""Contract names of a lead's company and buying-group role (datasets with accounts)."""


def account_required(config: DatasetConfig) -> dict[str, str]:
    """The accounts section's columns a leads (or table) file must have."""
    spec = config.accounts
    if spec is None:
        return {}
    required = {ACCOUNT_ID: spec.id_column}
    if spec.role_column:
        required[ACCOUNT_ROLE] = spec.role_column
    return required


def account_columns(raw: pa.Table, config: DatasetConfig) -> dict[str, pa.ChunkedArray]:
    """A lead's account id and role as trimmed text, blank as missing: a lead without an
    account is no problem (it scores as a lead alone)."""
    return {contract: _blank_as_null(trimmed_text(raw[name]))
            for contract, name in account_required(config).items()}


def _blank_as_null(trimmed: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def check_accounts(file: str, raw: pa.Table | pd.DataFrame,
                   config: DatasetConfig) -> TableCheck:
    """Validate the accounts file: ids present and unique, numbers readable."""
    raw = as_table(raw)
    spec = config.accounts
    attributes = [*spec.attributes.categorical, *spec.attributes.numeric]
    require_columns(file, raw, {ACCOUNT_ID: spec.id_column, **{a: a for a in attributes}})
    found = Found(file, raw)
    ids = trimmed_text(raw[spec.id_column])
    found.missing(ids, ACCOUNT_ID)
    first = repeated_rows([ids], found.rows)
    found.add(first > 0, ACCOUNT_ID, ids, lambda at: [
        f"duplicate account id (first seen in row {row})" for row in first[at]])
    numbers = found.numbers(raw, spec.attributes.numeric)
    return found.check(pa.table({ACCOUNT_ID: ids,
                                 **{a: raw[a] for a in spec.attributes.categorical},
                                 **numbers, ROW: raw[ROW]}))


def attribute_names(config: DatasetConfig) -> list[str]:
    """The attribute columns, categorical then numeric."""
    return [*config.attributes.categorical, *config.attributes.numeric]


def check_leads(file: str, raw: pa.Table | pd.DataFrame, config: DatasetConfig) -> TableCheck:
    """Validate the leads table: ids present and unique, creation times parseable."""
    raw = as_table(raw)
    cols = config.columns
    require_columns(file, raw, {"lead_id": cols.lead_id, "created_at": cols.created_at,
                                **{a: a for a in attribute_names(config)},
                                **account_required(config)})
    found = Found(file, raw)
    ids = trimmed_text(raw[cols.lead_id])
    created = parse_times(raw[cols.created_at], config.read)
    found.missing(ids, "lead_id")
    found.times(raw[cols.created_at], created, "created_at", config.read)
    _duplicates(found, ids)
    numbers = found.numbers(raw, config.attributes.numeric)
    columns = {"lead_id": ids, "created_at": created,
               **{a: raw[a] for a in config.attributes.categorical}, **numbers,
               **account_columns(raw, config), ROW: raw[ROW]}
    return found.check(pa.table(columns))


def _duplicates(found: Found, ids: pa.ChunkedArray) -> None:
    first = repeated_rows([ids], found.rows)
    found.add(first > 0, "lead_id", ids,
              lambda at: [f"duplicate lead_id (first seen in row {row})" for row in first[at]])


# ------------------------------------------------------------------ events
def _lead_problems(found: Found, ids: pa.ChunkedArray, leads: KnownLeads) -> pa.ChunkedArray:
    """Rows whose lead is unknown, or was quarantined; returns each row's lead position."""
    position = pc.index_in(ids, value_set=leads.ids)
    unknown = _mask(pc.and_(pc.is_null(position), pc.is_valid(ids)))
    found.add(unknown, "lead_id", ids, lambda at: np.where(
        _mask(pc.is_in(ids.take(at), value_set=leads.quarantined)),
        f"its lead was quarantined from {leads.file}", f"unknown lead_id (not in {leads.file})"))
    return position


def check_events(file: str, raw: pa.Table | pd.DataFrame, config: DatasetConfig,
                 leads: KnownLeads) -> TableCheck:
    """Validate events: known lead, parseable time not before the lead's creation, a type."""
    raw = as_table(raw)
    cols = config.columns
    require_columns(file, raw, {"lead_id": cols.lead_id, "timestamp": cols.timestamp,
                                "event_type": cols.event_type})
    found = Found(file, raw)
    ids = trimmed_text(raw[cols.lead_id])
    stamp = parse_times(raw[cols.timestamp], config.read)
    found.missing(ids, "lead_id")
    position = _lead_problems(found, ids, leads)
    found.times(raw[cols.timestamp], stamp, "timestamp", config.read)
    event_type = trimmed_text(raw[cols.event_type])
    found.missing(event_type, "event_type")
    created = leads.created_ns.take(position)
    early = _mask(pc.less(stamp.cast(pa.int64()), created))
    found.add(early, "timestamp", raw[cols.timestamp], lambda at: [
        f"event before its lead was created ({text})"
        for text in _utc_text(created.take(at))])
    return found.check(pa.table({"lead_id": ids, "timestamp": stamp,
                                 "event_type": event_type,
                                 "detail": _detail(raw, cols.detail), ROW: raw[ROW]}))


def _utc_text(nanoseconds: pa.ChunkedArray) -> pd.Series:
    """Instants as pandas writes UTC times (``2025-01-05 00:00:00+00:00``)."""
    return pd.to_datetime(nanoseconds.to_numpy(zero_copy_only=False), utc=True).astype(
        "string")


def _detail(raw: pa.Table, column: str | None) -> pa.ChunkedArray:
    if column is not None and column in raw.column_names:
        return raw[column]
    return pa.chunked_array([pa.nulls(raw.num_rows, pa.string())])


def check_stage_changes(file: str, raw: pa.Table | pd.DataFrame, config: DatasetConfig,
                        leads: KnownLeads) -> TableCheck:
    """Validate stage changes: known lead, parseable time, a stage name the config maps."""
    raw = as_table(raw)
    cols = config.columns
    require_columns(file, raw, {"lead_id": cols.lead_id, "stage": cols.stage,
                                "timestamp": cols.timestamp})
    found = Found(file, raw)
    ids = trimmed_text(raw[cols.lead_id])
    stamp = parse_times(raw[cols.timestamp], config.read)
    found.missing(ids, "lead_id")
    _lead_problems(found, ids, leads)
    found.times(raw[cols.timestamp], stamp, "timestamp", config.read)
    names = list(config.stage_names)
    position = pc.index_in(trimmed_text(raw[cols.stage]), value_set=pa.array(names, pa.string()))
    stage = pa.array([config.stage_names[n].value for n in names], pa.string()).take(position)
    found.add(_mask(pc.is_null(position)), "stage", raw[cols.stage],
              f"unknown stage name; the dataset config maps {sorted(names)}")
    return found.check(pa.table({"lead_id": ids, "stage": stage, "timestamp": stamp,
                                 ROW: raw[ROW]}))


def check_scoring_events(file: str, raw: pa.Table | pd.DataFrame, read: ReadOptions,
                         columns: ColumnNames) -> TableCheck:
    """Validate events read for scoring (numbered with ``_row``): lead, time and type set.

    Args:
        file: The file's name for problem messages.
        raw: The rows as read, with their row numbers in ``_row``.
        read: How text timestamps are read.
        columns: The contract columns' names in the file.
    """
    raw = as_table(raw)
    require_columns(file, raw, {"lead_id": columns.lead_id, "timestamp": columns.timestamp,
                                "event_type": columns.event_type})
    found = Found(file, raw)
    ids = trimmed_text(raw[columns.lead_id])
    stamp = parse_times(raw[columns.timestamp], read)
    found.missing(ids, "lead_id")
    found.add(is_empty(trimmed_text(raw[columns.event_type])), "event_type",
              raw[columns.event_type], "event_type is empty")
    found.times(raw[columns.timestamp], stamp, "timestamp", read)
    return found.check(pa.table({"lead_id": ids, "timestamp": stamp,
                                 "event_type": as_text(raw[columns.event_type]),
                                 "detail": _detail(raw, columns.detail), ROW: raw[ROW]}))


# ------------------------------------------------------------------ table shape
def check_table(file: str, raw: pa.Table | pd.DataFrame, config: DatasetConfig) -> TableCheck:
    """Validate a table-shaped file: ids present and unique, a known outcome, numbers and
    the time column readable."""
    raw = as_table(raw)
    spec = config.table
    found = Found(file, raw)
    ids = (trimmed_text(raw[spec.id_column]) if spec.id_column
           else as_text(raw[ROW]))
    found.missing(ids, "lead_id")
    _duplicates(found, ids)
    target = parse_target(raw[spec.target], spec.positive_values, spec.negative_values)
    choices = spec.positive_values + spec.negative_values
    found.add(_mask(pc.is_null(target)), "target", raw[spec.target],
              f"target must be one of {choices} (case-insensitive)")
    numbers = found.numbers(raw, config.attributes.numeric)
    columns = {"lead_id": ids, "target": target,
               **{a: raw[a] for a in config.attributes.categorical}, **numbers}
    if spec.time_column:
        time = parse_times(raw[spec.time_column], config.read)
        found.times(raw[spec.time_column], time, spec.time_column, config.read)
        columns["time"] = time
    columns = {name: columns[name] for name in ["lead_id", "target", *attribute_names(config),
                                                *(["time"] if spec.time_column else [])]}
    return found.check(pa.table({**columns, **account_columns(raw, config), ROW: raw[ROW]}))


def parse_target(values: pa.ChunkedArray | pd.Series, positive: Sequence[str],
                 negative: Sequence[str]) -> pa.ChunkedArray:
    """Map yes/no style outcome values to 1/0 (case-insensitive); anything else null."""
    if isinstance(values, pd.Series):
        values = chunked(pa.Array.from_pandas(values))
    lookup = {v.lower(): 1 for v in positive} | {v.lower(): 0 for v in negative}
    text = pc.utf8_lower(trimmed_text(values))
    position = pc.index_in(text, value_set=pa.array(list(lookup), pa.string()))
    return pa.array(list(lookup.values()), pa.int8()).take(position)
