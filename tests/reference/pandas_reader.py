"""The pandas reader and validator as it was before the Arrow-native rewrite, frozen.

Kept only as the reference that ``tests/unit/test_ingest_equivalence.py`` compares the
current reader with on damaged files: the same rows must be kept and quarantined, with
the same problems. Do not change it; the package does not use it.

Its original notes:
Read and validate both shapes of the data contract.

Reading never loses a row: every row read is either kept or quarantined with the
file, row number, column, value and reason of each problem. Callers decide whether
problems stop the run (:class:`DataValidationError`) or go to a quarantine file.

Row numbers are 1-based data rows of the file as read (the header is not a row), so
row 1 is the first line under the header of a CSV file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from predictive_scoring.config import ColumnNames, DatasetConfig, ReadOptions

ROW = "_row"
PROBLEM_COLUMNS = ["file", "row", "column", "value", "reason"]
SHOWN_PROBLEMS = 20
_OFFSET_AT_END = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


# ------------------------------------------------------------------------ reports
@dataclass(frozen=True)
class TableCheck:
    """What validation made of one file.

    Attributes:
        file: The file's path as configured.
        kept: Rows that passed, in contract column names, plus ``_row``.
        quarantined: Rows that failed, as read, plus ``_row`` and ``_problems``.
        problems: One row per problem: file, row, column, value, reason.
    """

    file: str
    kept: pd.DataFrame
    quarantined: pd.DataFrame
    problems: pd.DataFrame

    @property
    def n_read(self) -> int:
        """Rows read from the file."""
        return len(self.kept) + len(self.quarantined)


class DataValidationError(ValueError):
    """Input that cannot be used, with every problem found (the first ones shown)."""

    def __init__(self, problems: pd.DataFrame, headline: str = "invalid input data"):
        self.problems = problems
        super().__init__(describe_problems(problems, headline))


def describe_problems(problems: pd.DataFrame, headline: str) -> str:
    """A readable list of the first problems and how many there are in all."""
    lines = [f"{headline}: {len(problems)} problem(s)"]
    for p in problems.head(SHOWN_PROBLEMS).itertuples(index=False):
        where = f"row {p.row}" if p.row > 0 else "header"
        lines.append(f"  {p.file}, {where}, column '{p.column}', value {p.value!r}: {p.reason}")
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(problems) - SHOWN_PROBLEMS} more")
    return "\n".join(lines)


def _problems(
    file: str, frame: pd.DataFrame, mask: pd.Series, column: str, reason: str | pd.Series
) -> pd.DataFrame:
    """Problem rows for the rows of ``frame`` where ``mask`` holds."""
    bad = frame.loc[mask.to_numpy(dtype=bool)]
    reasons = reason[mask] if isinstance(reason, pd.Series) else reason
    values = bad[column].astype("string").fillna("") if column in bad else ""
    return pd.DataFrame({"file": file, "row": bad[ROW].to_numpy(), "column": column,
                         "value": values, "reason": reasons}, columns=PROBLEM_COLUMNS)


def _split(file: str, raw: pd.DataFrame, parsed: pd.DataFrame,
           problems: Sequence[pd.DataFrame]) -> TableCheck:
    """Keep the rows without problems; quarantine the others with their reasons."""
    found = pd.concat([p for p in problems if len(p)] or [_no_problems()], ignore_index=True)
    found = found.sort_values("row", kind="stable").reset_index(drop=True)
    bad_rows = set(found["row"])
    is_bad = parsed[ROW].isin(bad_rows)
    summary = found.groupby("row")["reason"].agg(
        lambda reasons: "; ".join(dict.fromkeys(reasons)))
    quarantined = raw.loc[is_bad.to_numpy()].copy()
    quarantined["_problems"] = quarantined[ROW].map(summary)
    kept = parsed.loc[~is_bad.to_numpy()].reset_index(drop=True)
    return TableCheck(file, kept, quarantined.reset_index(drop=True), found)


def _no_problems() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "string")
                         for c in PROBLEM_COLUMNS})


# ------------------------------------------------------------------------ reading
def read_frame(path: Path, read: ReadOptions) -> pd.DataFrame:
    """Read a CSV (every column as text) or Parquet file and number its rows.

    Raises:
        DataValidationError: The file is missing or cannot be parsed.
    """
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep=read.sep, dtype="string", keep_default_na=False,
                                na_values=[""])
    except FileNotFoundError:
        raise _file_error(path, "file not found") from None
    except (ValueError, OSError) as exc:
        raise _file_error(path, f"cannot read the file: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[ROW] = np.arange(1, len(frame) + 1)
    return frame


def _file_error(path: Path, reason: str) -> DataValidationError:
    problem = pd.DataFrame([[str(path), 0, "", "", reason]], columns=PROBLEM_COLUMNS)
    return DataValidationError(problem, "cannot read input")


def require_columns(file: str, frame: pd.DataFrame, required: Mapping[str, str]) -> None:
    """Fail with every missing column named, and the columns the file does have.

    Args:
        file: File name for the message.
        frame: The frame as read.
        required: Contract name -> the column name expected in the file.
    """
    missing = [(contract, name) for contract, name in required.items() if name not in frame]
    if not missing:
        return
    found = [c for c in frame.columns if c != ROW]
    rows = [[file, 0, name, "", f"required column missing (the {contract} column); the file "
             f"has {found}"] for contract, name in missing]
    raise DataValidationError(pd.DataFrame(rows, columns=PROBLEM_COLUMNS), "missing columns")


def parse_timestamps(values: pd.Series, read: ReadOptions) -> pd.Series:
    """Parse timestamps to tz-aware UTC; unparseable values become NaT.

    Values with an offset (``Z``, ``+02:00``) are converted to UTC; values without one
    are taken in ``read.timezone``. Already-parsed datetimes are normalised the same way.
    Wall-clock times a daylight-saving change makes ambiguous (the repeated hour in
    autumn) are read as the first of the two instants, and times it skips (spring) are
    moved forward to the first valid instant: CRM exports without offsets hold both, and
    an hour's doubt beats losing the row.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values):
        return _localised(values, read.timezone)
    text = values.astype("string").str.strip()
    fmt = read.timestamp_format or "ISO8601"
    has_offset = text.str.contains(_OFFSET_AT_END, na=False)
    aware = pd.to_datetime(text.where(has_offset), format=fmt, utc=True, errors="coerce")
    naive = pd.to_datetime(text.where(~has_offset), format=fmt, errors="coerce")
    if not isinstance(naive.dtype, pd.DatetimeTZDtype):
        naive = _localised(naive, read.timezone)
    return aware.where(has_offset, naive).astype("datetime64[ns, UTC]")


def _localised(naive: pd.Series, timezone: str) -> pd.Series:
    """Naive wall-clock times in ``timezone`` as UTC (see :func:`parse_timestamps`)."""
    first_of_two = np.ones(len(naive), dtype=bool)  # True: the daylight-saving instant
    return naive.dt.tz_localize(timezone, ambiguous=first_of_two,
                                nonexistent="shift_forward").dt.tz_convert("UTC")


def _time_problems(file: str, frame: pd.DataFrame, column: str, parsed: pd.Series,
                   read: ReadOptions) -> pd.DataFrame:
    bad = parsed.isna()
    expected = (f"format {read.timestamp_format!r}" if read.timestamp_format
                else "ISO 8601, e.g. 2025-03-04T10:15:00Z")
    reason = pd.Series("missing timestamp", index=frame.index).where(
        frame[column].isna(), f"not a timestamp (expected {expected})")
    return _problems(file, frame, bad, column, reason)


def _missing(file: str, frame: pd.DataFrame, column: str) -> pd.DataFrame:
    empty = frame[column].isna() | (frame[column].astype("string").str.strip() == "")
    return _problems(file, frame, empty, column, f"{column} is empty")


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


def check_leads(file: str, raw: pd.DataFrame, config: DatasetConfig) -> TableCheck:
    """Validate the leads table: ids present and unique, creation times parseable."""
    cols = config.columns
    require_columns(file, raw, {"lead_id": cols.lead_id, "created_at": cols.created_at,
                                **{a: a for a in _attribute_names(config)}})
    frame = raw.rename(columns={cols.lead_id: "lead_id", cols.created_at: "created_at"})
    frame["lead_id"] = frame["lead_id"].astype("string").str.strip()
    created = parse_timestamps(frame["created_at"], config.read)
    problems = [_missing(file, frame, "lead_id"),
                _time_problems(file, frame, "created_at", created, config.read),
                _duplicate_ids(file, frame),
                *_numeric_problems(file, frame, config.attributes.numeric)]
    parsed = _with_numeric(frame.assign(created_at=created), config.attributes.numeric)
    columns = ["lead_id", "created_at", *_attribute_names(config), ROW]
    return _split(file, raw, parsed[columns], problems)


def _attribute_names(config: DatasetConfig) -> list[str]:
    return [*config.attributes.categorical, *config.attributes.numeric]


def _duplicate_ids(file: str, frame: pd.DataFrame) -> pd.DataFrame:
    ids = frame["lead_id"]
    repeated = ids.duplicated(keep="first") & ids.notna()
    first_row = frame.drop_duplicates("lead_id").set_index("lead_id")[ROW]
    reason = "duplicate lead_id (first seen in row " + ids.map(first_row).astype(
        "string") + ")"
    return _problems(file, frame, repeated, "lead_id", reason)


def _numeric_problems(file: str, frame: pd.DataFrame,
                      numeric: Sequence[str]) -> list[pd.DataFrame]:
    found = []
    for column in numeric:
        parsed = pd.to_numeric(frame[column], errors="coerce")
        bad = parsed.isna() & frame[column].notna()
        found.append(_problems(file, frame, bad, column, "not a number"))
    return found


def _with_numeric(frame: pd.DataFrame, numeric: Sequence[str]) -> pd.DataFrame:
    converted = {c: pd.to_numeric(frame[c], errors="coerce").astype("float64") for c in numeric}
    return frame.assign(**converted)


@dataclass(frozen=True)
class KnownLeads:
    """The leads other tables may refer to, and the ids that were quarantined."""

    file: str
    created_at: pd.Series
    quarantined: frozenset[str]

    @classmethod
    def of(cls, leads: TableCheck, id_column: str) -> KnownLeads:
        """From the check of the leads file (``id_column`` as named in that file)."""
        ids = leads.quarantined.get(id_column, pd.Series(dtype="string"))
        quarantined = frozenset(ids.dropna().astype("string").str.strip())
        return cls(leads.file, leads.kept.set_index("lead_id")["created_at"], quarantined)


def _lead_problems(file: str, frame: pd.DataFrame, leads: KnownLeads) -> pd.DataFrame:
    """Rows whose lead is unknown, or whose lead was quarantined."""
    unknown = ~frame["lead_id"].isin(leads.created_at.index) & frame["lead_id"].notna()
    in_quarantine = frame["lead_id"].isin(leads.quarantined)
    reason = pd.Series(f"unknown lead_id (not in {leads.file})", index=frame.index).where(
        ~in_quarantine, f"its lead was quarantined from {leads.file}")
    return _problems(file, frame, unknown, "lead_id", reason)


def _timed_child(file: str, raw: pd.DataFrame, config: DatasetConfig,
                 leads: KnownLeads, renames: dict[str, str]) -> tuple[pd.DataFrame, list]:
    """Shared checks of events and stage changes: lead known, timestamp parseable.

    Returns:
        The renamed frame as read (for problem values), its parsed ``timestamp`` column
        as ``parsed_timestamp``, and the problems found.
    """
    frame = raw.rename(columns=renames)
    frame["lead_id"] = frame["lead_id"].astype("string").str.strip()
    stamp = parse_timestamps(frame["timestamp"], config.read)
    problems = [_missing(file, frame, "lead_id"), _lead_problems(file, frame, leads),
                _time_problems(file, frame, "timestamp", stamp, config.read)]
    return frame.assign(parsed_timestamp=stamp), problems


def check_events(file: str, raw: pd.DataFrame, config: DatasetConfig,
                 leads: KnownLeads) -> TableCheck:
    """Validate events: known lead, parseable time not before the lead's creation, a type."""
    cols = config.columns
    required = {"lead_id": cols.lead_id, "timestamp": cols.timestamp,
                "event_type": cols.event_type}
    require_columns(file, raw, required)
    renames = {v: k for k, v in required.items()}
    has_detail = cols.detail is not None and cols.detail in raw
    if has_detail:
        renames[cols.detail] = "detail"
    frame, problems = _timed_child(file, raw, config, leads, renames)
    frame["event_type"] = frame["event_type"].astype("string").str.strip()
    # reindex, not map: map fails on an empty datetime lookup (every lead quarantined)
    created = pd.to_datetime(pd.Series(leads.created_at.reindex(frame["lead_id"]).to_numpy(),
                                       index=frame.index), utc=True)
    early = frame["parsed_timestamp"] < created
    reason = "event before its lead was created (" + created.astype("string") + ")"
    problems += [_missing(file, frame, "event_type"),
                 _problems(file, frame, early.fillna(False), "timestamp", reason)]
    if not has_detail:
        frame["detail"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    columns = ["lead_id", "timestamp", "event_type", "detail", ROW]
    return _split(file, raw, _parsed_time(frame)[columns], problems)


def check_stage_changes(file: str, raw: pd.DataFrame, config: DatasetConfig,
                        leads: KnownLeads) -> TableCheck:
    """Validate stage changes: known lead, parseable time, a stage name the config maps."""
    cols = config.columns
    required = {"lead_id": cols.lead_id, "stage": cols.stage, "timestamp": cols.timestamp}
    require_columns(file, raw, required)
    frame, problems = _timed_child(file, raw, config, leads, {v: k for k, v in required.items()})
    names = frame["stage"].astype("string").str.strip()
    stage = names.map({k: v.value for k, v in config.stage_names.items()})
    known = sorted(config.stage_names)
    problems.append(_problems(file, frame, stage.isna(), "stage",
                              f"unknown stage name; the dataset config maps {known}"))
    columns = ["lead_id", "stage", "timestamp", ROW]
    return _split(file, raw, _parsed_time(frame.assign(stage=stage))[columns], problems)


def _parsed_time(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="timestamp").rename(columns={"parsed_timestamp": "timestamp"})


def load_events_dataset(config: DatasetConfig, data_dir: Path) -> EventsDataset:
    """Read and validate the three tables of an events-shaped dataset.

    Args:
        config: The dataset config (shape ``events``).
        data_dir: Where ``{data_dir}`` in the config's root points.

    Returns:
        The kept rows of each table and what validation made of each file.
    """
    root = config.root_dir(data_dir)
    files = config.files
    paths = {"leads": root / files.leads, "events": root / files.events,
             "stage_changes": root / files.stage_changes}
    raws = {name: read_frame(path, config.read) for name, path in paths.items()}
    leads = check_leads(str(paths["leads"]), raws["leads"], config)
    known = KnownLeads.of(leads, config.columns.lead_id)
    events = check_events(str(paths["events"]), raws["events"], config, known)
    changes = check_stage_changes(str(paths["stage_changes"]), raws["stage_changes"], config,
                                  known)
    truth = load_truth(root / files.truth, config.read) if files.truth else None
    checks = {"leads": leads, "events": events, "stage_changes": changes}
    return EventsDataset(leads.kept, events.kept, changes.kept, checks, truth)


def load_truth(path: Path, read: ReadOptions) -> pd.DataFrame | None:
    """The simulator's true probabilities, or None when the file is absent."""
    if not path.exists():
        return None
    return parse_truth(str(path), read_frame(path, read), read)


def parse_truth(file: str, frame: pd.DataFrame, read: ReadOptions) -> pd.DataFrame:
    """``lead_id``, ``as_of`` (UTC) and ``true_probability`` from a truth file as read."""
    require_columns(file, frame, {c: c for c in ("lead_id", "as_of", "true_probability")})
    return pd.DataFrame({"lead_id": frame["lead_id"].astype("string"),
                         "as_of": parse_timestamps(frame["as_of"], read),
                         "true_probability": pd.to_numeric(frame["true_probability"])})


# ------------------------------------------------------------------- table shape
@dataclass(frozen=True)
class TableDataset:
    """The table shape, validated: lead_id, target (0/1), optional time, attributes."""

    table: pd.DataFrame
    checks: dict[str, TableCheck]
    dropped_for_leakage: list[str] = field(default_factory=list)


def load_table_dataset(config: DatasetConfig, data_dir: Path) -> TableDataset:
    """Read and validate a table-shaped dataset (one row per lead with its outcome)."""
    spec = config.table
    path = config.root_dir(data_dir) / spec.file
    raw = read_frame(path, config.read)
    required = {"target": spec.target, **{a: a for a in _attribute_names(config)}}
    if spec.id_column:
        required["lead_id"] = spec.id_column
    if spec.time_column:
        required["time"] = spec.time_column
    require_columns(str(path), raw, required)
    return _check_table(str(path), raw, config)


def _check_table(file: str, raw: pd.DataFrame, config: DatasetConfig) -> TableDataset:
    spec = config.table
    frame = raw.rename(columns={spec.target: "target"})
    frame["lead_id"] = (frame[spec.id_column].astype("string").str.strip() if spec.id_column
                        else frame[ROW].astype("string"))
    target = parse_target(frame["target"], spec.positive_values, spec.negative_values)
    choices = spec.positive_values + spec.negative_values
    problems = [_missing(file, frame, "lead_id"), _duplicate_ids(file, frame),
                _problems(file, frame, target.isna(), "target",
                          f"target must be one of {choices} (case-insensitive)"),
                *_numeric_problems(file, frame, config.attributes.numeric)]
    columns = ["lead_id", "target", *_attribute_names(config)]
    frame = frame.assign(target=target)
    if spec.time_column:
        time = parse_timestamps(frame[spec.time_column], config.read)
        problems.append(_time_problems(file, frame, spec.time_column, time, config.read))
        frame = frame.assign(time=time)
        columns.append("time")
    parsed = _with_numeric(frame, config.attributes.numeric)[[*columns, ROW]]
    check = _split(file, raw, parsed, problems)
    table = check.kept.assign(target=check.kept["target"].astype("int8"))
    return TableDataset(table, {"table": check}, [c for c in spec.drop_columns if c in raw])


def parse_target(values: pd.Series, positive: Sequence[str],
                 negative: Sequence[str]) -> pd.Series:
    """Map yes/no style outcome values to 1/0 (case-insensitive); anything else NA."""
    lookup = {v.lower(): 1 for v in positive} | {v.lower(): 0 for v in negative}
    text = values.astype("string").str.strip().str.lower()
    return text.map(lookup).astype("Int8")


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
    if config.shape == "table":
        return [root / config.table.file]
    files = config.files
    return [root / files.leads, root / files.events, root / files.stage_changes]


def read_scoring_events(path: Path, read: ReadOptions,
                        columns: ColumnNames) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events to score with: the usable rows, and the rows that are not (with reasons).

    Events of leads that are not being scored are harmless and kept; an event without a
    lead, a parseable timestamp or a type cannot be used.
    """
    check = check_scoring_events(str(path), read_frame(path, read), read, columns)
    # Scoring looks events up by lead chunk after chunk: category codes make that ~50x
    # faster than matching Arrow strings, and coded types and details are looked up in
    # the model's vocabulary once per category instead of once per event.
    kept = check.kept
    coded = {c: kept[c].astype("category") for c in ("lead_id", "event_type", "detail")}
    return kept.assign(**coded), check.quarantined


def check_scoring_events(file: str, raw: pd.DataFrame, read: ReadOptions,
                         columns: ColumnNames) -> TableCheck:
    """Validate events read for scoring (numbered with ``_row``): lead, time and type set.

    Args:
        file: The file's name for problem messages.
        raw: The rows as read, with their row numbers in ``_row``.
        read: How text timestamps are read.
        columns: The contract columns' names in the file.
    """
    required = {"lead_id": columns.lead_id, "timestamp": columns.timestamp,
                "event_type": columns.event_type}
    require_columns(file, raw, required)
    renames = {v: k for k, v in required.items()}
    if columns.detail is not None and columns.detail in raw:
        renames[columns.detail] = "detail"
    frame = raw.rename(columns=renames)
    stamp = parse_timestamps(frame["timestamp"], read)
    problems = [_missing(file, frame, "lead_id"), _missing(file, frame, "event_type"),
                _time_problems(file, frame, "timestamp", stamp, read)]
    frame = frame.assign(parsed_timestamp=stamp,
                         lead_id=frame["lead_id"].astype("string").str.strip())
    if "detail" not in frame:
        frame["detail"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    return _split(file, raw, _parsed_time(frame)[["lead_id", "timestamp", "event_type",
                                                  "detail", ROW]], problems)
