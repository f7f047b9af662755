"""Reading the Parquet tables by lead: each table (a file, a folder or a glob) is read row
group by row group and shuffled so that all rows of one lead land in the same partition
of every table (:func:`lead_bucket`); each partition is then validated by data.py's own
checks, and bad rows are named by the file and row they were read from (1 is a file's
first data row, as data.py counts).
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from predictive_scoring.config import BaseConfig, DatasetConfig
from predictive_scoring.data.dataset import (
    ROW,
    KnownLeads,
    TableCheck,
    categorised,
    check_events,
    check_leads,
    check_stage_changes,
)

BUCKET = "_bucket"
N_BUCKETS = 1 << 20
"""Lead buckets; many more than partitions, so hashing them spreads leads evenly."""


@dataclass(frozen=True)
class Piece:
    """One Parquet row group and the number of rows of its table before it."""

    file: str
    row_group: int
    rows_before: int


@dataclass(frozen=True)
class ParquetSource:
    """The Parquet files of one table (a file, a folder or a glob), numbered as one.

    Attributes:
        label: The path as given (for messages).
        files: The files, in name order.
        file_starts: Rows of the table before each file.
        pieces: Every row group, the unit of reading.
        n_rows: Rows in all files (from their metadata).
    """

    label: str
    files: tuple[str, ...]
    file_starts: tuple[int, ...]
    pieces: tuple[Piece, ...]
    n_rows: int

    def locate(self, rows: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The file and the row within it (1-based) of table-wide row numbers."""
        rows = np.asarray(rows, dtype=np.int64)
        index = np.searchsorted(np.asarray(self.file_starts), rows - 1, side="right") - 1
        return (np.asarray(self.files, dtype=object)[index],
                rows - np.asarray(self.file_starts)[index])


def parquet_source(path: str | Path) -> ParquetSource:
    """Find a table's Parquet files and their row groups (metadata only).

    Args:
        path: A Parquet file, a folder (its ``*.parquet`` files, recursively) or a glob.

    Raises:
        ValueError: No Parquet file matches.
    """
    text = str(path)
    if Path(text).is_dir():
        files = sorted(str(f) for f in Path(text).rglob("*.parquet"))
    elif glob.has_magic(text):
        files = sorted(glob.glob(text, recursive=True))
    else:
        files = [text] if Path(text).is_file() else []
    if not files:
        raise ValueError(f"no Parquet files at {text} (give a .parquet file, a folder of "
                         "them or a glob such as 'events/*.parquet')")
    pieces, starts, total = [], [], 0
    for file in files:
        starts.append(total)
        metadata = pq.ParquetFile(file).metadata
        for group in range(metadata.num_row_groups):
            pieces.append(Piece(file, group, total))
            total += metadata.row_group(group).num_rows
    return ParquetSource(text, tuple(files), tuple(starts), tuple(pieces), total)


def lead_bucket(lead_ids: pd.Series) -> np.ndarray:
    """A stable bucket per lead id (as validation reads it: text, stripped)."""
    text = lead_ids.astype("string").str.strip().fillna("").to_numpy(dtype=object)
    return (pd.util.hash_array(text, categorize=False) % N_BUCKETS).astype(np.int64)


def read_piece(piece: Piece, lead_column: str, coded: Sequence[str] = ()) -> pd.DataFrame:
    """One row group, its table-wide row numbers in ``_row`` and lead bucket in
    ``_bucket``; the ``coded`` columns as pandas categoricals (:func:`uncoded` gives the
    text back)."""
    frame = pq.ParquetFile(piece.file).read_row_group(piece.row_group).to_pandas()
    frame.columns = [str(c).strip() for c in frame.columns]
    ids = frame[lead_column] if lead_column in frame else pd.Series("", index=frame.index)
    return categorised(frame, coded).assign(**{
        ROW: piece.rows_before + np.arange(1, len(frame) + 1), BUCKET: lead_bucket(ids)})


CODED_SHARE = 0.01
"""A text column is shuffled coded when its distinct values are at most this share of the
rows of the table's first row group (an event's type and detail, a lead's attributes: a
few values repeated over every row)."""


def few_valued_columns(source: ParquetSource, lead_column: str) -> tuple[str, ...]:
    """The table's text columns, but the lead id, with few distinct values
    (:data:`CODED_SHARE`) in its first row group (read on its own, a column at a time).

    Shuffled as categoricals, each row of such a column moves as a small integer and each
    shard carries its row group's values once; a column of many values (a free-text
    detail, an account id) would carry nearly all of them to every partition, so it
    stays text.
    """
    file = pq.ParquetFile(source.files[0])
    if not file.metadata.num_row_groups:
        return ()
    schema = file.schema_arrow
    coded = []
    for name, kind in zip(schema.names, schema.types, strict=True):
        if str(name).strip() == lead_column or not (pa.types.is_string(kind)
                                                    or pa.types.is_large_string(kind)):
            continue
        values = file.read_row_group(0, columns=[name]).column(0)
        if pc.count_distinct(values, mode="all").as_py() <= CODED_SHARE * len(values):
            coded.append(str(name).strip())
    return tuple(coded)


def read_by_lead(source: ParquetSource, lead_column: str, n_partitions: int,
                 coded: Sequence[str] = ()) -> Any:
    """The table as a Dask DataFrame whose partition ``i`` holds buckets of leads, the
    ``coded`` columns as pandas categoricals (:func:`few_valued_columns`).

    Every table read with the same ``n_partitions`` puts a lead's rows in the same
    partition, so partition ``i`` of leads, events and stage changes go together.
    """
    import dask.dataframe as dd

    empty = pq.read_schema(source.files[0]).empty_table().to_pandas()
    empty.columns = [str(c).strip() for c in empty.columns]
    meta = categorised(empty, coded).assign(**{ROW: pd.Series(dtype="int64"),
                                            BUCKET: pd.Series(dtype="int64")})
    frame = dd.from_map(read_piece, list(source.pieces), lead_column=lead_column,
                        coded=tuple(coded), meta=meta, enforce_metadata=False)
    return frame.shuffle(on=BUCKET, npartitions=n_partitions)


def dataset_files(config: DatasetConfig, data_dir: Path) -> list[Path]:
    """Every Parquet file an events-shaped dataset config names (for its fingerprint)."""
    root = config.root_dir(data_dir)
    files = config.files
    names = [files.leads, files.events, files.stage_changes]
    return [Path(f) for name in names for f in parquet_source(root / name).files]


def dataset_sources(config: DatasetConfig, base: BaseConfig) -> dict[str, ParquetSource]:
    """The tables an events-shaped dataset config names (and the simulator's truth, when
    it is there), as Parquet sources."""
    root = config.root_dir(base.resolved_data_dir())
    files = config.files
    names = {"leads": files.leads, "events": files.events,
             "stage_changes": files.stage_changes}
    if files.truth and (glob.has_magic(files.truth) or (root / files.truth).exists()):
        names["truth"] = files.truth
    return {name: parquet_source(root / path) for name, path in names.items()}


def lead_id_column(config: DatasetConfig, table: str) -> str:
    """The column holding a table's lead ids (the truth is always in the contract's names)."""
    return "lead_id" if table == "truth" else config.columns.lead_id


# ------------------------------------------------------------------ validation
TABLES = ("leads", "events", "stage_changes")


def check_partition(leads: pd.DataFrame, events: pd.DataFrame, stage_changes: pd.DataFrame,
                    config: DatasetConfig, labels: dict[str, str]) -> dict[str, TableCheck]:
    """data.py's validation of one partition (whole leads: ids, events and stage changes).

    Args:
        leads: The partition's leads as read, with ``_row`` and ``_bucket``.
        events: Its events, same.
        stage_changes: Its stage changes, same.
        config: The dataset config.
        labels: Table name -> its path as configured (for messages).
    """
    lead_check = check_leads(labels["leads"], as_read(leads), config)
    known = KnownLeads.of(lead_check, config.columns.lead_id)
    return {
        "leads": lead_check,
        "events": coded_events(check_events(labels["events"], as_read(events), config,
                                            known)),
        "stage_changes": check_stage_changes(labels["stage_changes"],
                                             as_read(stage_changes), config, known),
    }


def as_read(rows: pd.DataFrame) -> pd.DataFrame:
    """A partition's rows as read from the files (text as text, without ``_bucket``), as
    validation takes them."""
    return uncoded(rows.drop(columns=BUCKET))


CODED_EVENT_COLUMNS = ("lead_id", "event_type", "detail")
"""The events' text columns a partition holds coded: as text they are most of an event's
bytes (about 50 of 70), coded each row holds a small integer and each value is stored once."""


def coded_events(check: TableCheck) -> TableCheck:
    """The events' check with its kept rows compact, as a partition holds them until its
    examples are built: lead ids, types and details as pandas categoricals (the features
    and the rules read them per category), and without row numbers (only the problems,
    already found, needed them). :func:`uncoded` gives the text back."""
    kept = categorised(check.kept, CODED_EVENT_COLUMNS)
    return replace(check, kept=kept.drop(columns=ROW, errors="ignore"))


def uncoded(frame: pd.DataFrame) -> pd.DataFrame:
    """Coded (categorical) columns back as the text columns they were coded from."""
    return frame.assign(**{c: frame[c].astype(frame[c].cat.categories.dtype)
                           for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)})


@dataclass(frozen=True)
class CheckFacts:
    """What the driver needs from one partition's validation."""

    read: dict[str, int]
    problems: dict[str, pd.DataFrame]
    quarantined: dict[str, pd.DataFrame]
    data_end: pd.Timestamp | None
    first_created: pd.Timestamp | None
    last_created: pd.Timestamp | None


def check_facts(checks: dict[str, TableCheck]) -> CheckFacts:
    """Counts, problems, bad rows and time range of one validated partition (its last
    lead's creation included: the moment the open leads are found at)."""
    stamps = [checks["leads"].kept["created_at"].max(), checks["events"].kept["timestamp"].max(),
              checks["stage_changes"].kept["timestamp"].max()]
    known = [s for s in stamps if pd.notna(s)]
    created = checks["leads"].kept["created_at"]
    first, last = created.min(), created.max()
    return CheckFacts({n: c.n_read for n, c in checks.items()},
                      {n: c.problems for n, c in checks.items()},
                      {n: c.quarantined for n, c in checks.items()},
                      max(known) if known else None, first if pd.notna(first) else None,
                      last if pd.notna(last) else None)


def located_checks(facts: Sequence[CheckFacts], sources: dict[str, ParquetSource]
                   ) -> dict[str, TableCheck]:
    """Problems and bad rows of all partitions per table, rows named by file and row.

    The returned checks hold no kept rows (those stay on the workers).
    """
    checks = {}
    for name, source in sources.items():
        problems = pd.concat([f.problems[name] for f in facts], ignore_index=True)
        if len(problems):
            files, rows = source.locate(problems["row"])
            problems = problems.assign(file=files, row=rows)
        problems = problems.sort_values(["file", "row"], kind="stable").reset_index(drop=True)
        bad = pd.concat([f.quarantined[name] for f in facts], ignore_index=True)
        bad = bad.drop(columns=BUCKET, errors="ignore")
        if len(bad):
            files, rows = source.locate(bad[ROW])
            bad = bad.assign(**{ROW: rows}).assign(file=files).sort_values(["file", ROW])
        checks[name] = TableCheck(source.label, bad.iloc[:0], bad.reset_index(drop=True),
                                  problems)
    return checks


def check_summary(facts: Sequence[CheckFacts], checks: dict[str, TableCheck]) -> pd.DataFrame:
    """Rows read, kept and quarantined, and problems found, per table (as data.py's)."""
    rows = []
    for name, check in checks.items():
        read = sum(f.read[name] for f in facts)
        rows.append({"file": check.file, "read": read, "kept": read - len(check.quarantined),
                     "quarantined": len(check.quarantined), "problems": len(check.problems)})
    return pd.DataFrame(rows, columns=["file", "read", "kept", "quarantined", "problems"])


def locate_rows(bad: pd.DataFrame, source: ParquetSource) -> pd.DataFrame:
    """Bad rows with the file and row (1-based, within the file) they were read from, and
    their reasons in ``error``, sorted by file and row."""
    if bad.empty:
        return bad
    files, rows = source.locate(bad[ROW])
    located = bad.drop(columns=ROW).rename(columns={"_problems": "error"})
    located.insert(0, "row", rows)
    located.insert(0, "file", files)
    return located.sort_values(["file", "row"]).reset_index(drop=True)
