"""Batch scoring of a leads file (CSV or Parquet) with a model bundle, chunk by chunk.

Every input row comes out, in order: scored rows carry probability, score, suggested
stage and the rules' points and stage, and when asked the fit vs engagement split
(grade, level, quadrant) and the top reasons up and down as sentences; a row that
cannot be scored (unparseable time, a number that is not a number, a lead id seen in an
earlier row, a CSV row whose fields do not fit the header) carries empty scores and the
reason in ``error``, and is also written to a quarantine file. Memory stays bounded by
the chunk size. The output appears whole or not at all: it is written aside and renamed
once every row is in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from predictive_scoring.config import ReadOptions
from predictive_scoring.data.problems import ROW, file_error
from predictive_scoring.data.read import (
    HIDDEN,
    MALFORMED,
    MALFORMED_TEXT,
    column_names,
    iter_batches,
    malformed_rows,
    read_table,
)
from predictive_scoring.data.validate import as_table, repeated_rows, trimmed_text
from predictive_scoring.data.values import parse_times, parse_timestamps
from predictive_scoring.explain import EXPLANATION_COLUMNS, reason_columns, score_explained
from predictive_scoring.models.scorer import LeadScorer

OUTPUT_COLUMNS = ["lead_id", "as_of", "probability", "score", "suggested_stage",
                  "rule_points", "rule_stage", "age_beyond_training", "error"]
NUMBER_COLUMNS = ("probability", "rule_points", "fit_logodds", "engagement_logodds")


def output_columns(reasons: int | None) -> list[str]:
    """Columns of the scores file: the scores, then (``reasons`` not None) fit vs
    engagement and ``reasons`` reason columns each way, then ``error``."""
    explained = [] if reasons is None else [*EXPLANATION_COLUMNS, *reason_columns(reasons)]
    return [*OUTPUT_COLUMNS[:-1], *explained, OUTPUT_COLUMNS[-1]]


@dataclass(frozen=True)
class ScoreSummary:
    """Rows in, rows scored, rows that could not be scored, and where they went."""

    rows_in: int
    rows_scored: int
    rows_failed: int
    output: Path
    quarantine: Path | None
    beyond_training: int = 0
    """Rows scored whose lead is older than any lead the model was trained on."""


@dataclass(frozen=True)
class LeadsInput:
    """What a first pass over a leads file's keys tells before scoring it.

    Attributes:
        rows: Data rows in the file.
        repeated: Per row (``row - 1``), the earlier row with the same lead id (and
            as_of, when the file has that column), or 0.
        malformed: The CSV rows whose fields do not fit the header (every column; none
            for Parquet).
    """

    rows: int
    repeated: np.ndarray
    malformed: pa.Table


def read_leads_input(path: Path, read: ReadOptions) -> LeadsInput:
    """Read a leads file's ``lead_id`` (and ``as_of``) once: rows, repeats, bad rows.

    Raises:
        DataValidationError: The file cannot be read, has no ``lead_id`` column, or no
            rows.
    """
    keys = read_table(path, read, columns=["lead_id", "as_of"])
    if "lead_id" not in keys.column_names:
        raise file_error(path, f"the leads file needs a lead_id column; it has "
                         f"{[n.strip() for n in column_names(path, read)]}", column="lead_id")
    if keys.num_rows == 0:
        raise file_error(path, "no leads to score: the file has a header but no rows")
    malformed = (malformed_rows(path, read) if MALFORMED in keys.column_names
                 else pa.table({ROW: pa.array([], pa.int64())}))
    return LeadsInput(keys.num_rows, repeated_leads(keys, read), malformed)


def repeated_leads(leads: pa.Table | pd.DataFrame, read: ReadOptions) -> np.ndarray:
    """Per row of leads numbered in ``_row``, the earlier row with the same lead id (and
    the same as_of, when there is that column), or 0. A malformed row repeats nothing."""
    leads = as_table(leads)
    if "lead_id" not in leads.column_names:  # prepare_chunk names what is missing
        return np.zeros(leads.num_rows, dtype=np.int64)
    ids = trimmed_text(leads["lead_id"])
    if MALFORMED in leads.column_names:
        ids = pc.if_else(pc.is_null(leads[MALFORMED]), ids, pa.scalar(None, ids.type))
    key = [ids]
    if "as_of" in leads.column_names:
        key.append(parse_times(leads["as_of"], read).cast(pa.int64()))
    return repeated_rows(key, leads[ROW].to_numpy())


def iter_chunks(path: Path, chunk_rows: int, read: ReadOptions,
                malformed: pa.Table | None = None) -> Iterator[pd.DataFrame]:
    """The file's rows as frames of about ``chunk_rows`` rows (text for CSV), numbered in
    ``_row``, malformed CSV rows in place (see :func:`.read.iter_batches`)."""
    for batch in iter_batches(path, read, chunk_rows, malformed):
        yield batch.to_pandas()


def prepare_chunk(chunk: pd.DataFrame, scorer: LeadScorer, as_of: pd.Timestamp,
                  read: ReadOptions, repeated: np.ndarray | None = None,
                  ) -> tuple[pd.DataFrame, pd.Series]:
    """Parse a chunk into the scorer's input and a per-row error (empty when fine).

    Args:
        chunk: Rows as read (``_row`` and ``_malformed`` are used when present).
        scorer: The model bundle's scorer.
        as_of: Moment to score at for rows without their own as_of.
        read: How text timestamps are read.
        repeated: Per row of the chunk, the earlier row with the same lead, or 0.
    """
    frame = chunk.drop(columns=[c for c in HIDDEN if c in chunk])
    error = pd.Series("", index=frame.index, dtype="string")
    if "lead_id" not in frame:
        raise ValueError(f"the leads file needs a lead_id column; it has {list(frame.columns)}")
    if MALFORMED in chunk:
        error = error.mask(chunk[MALFORMED].notna(), chunk[MALFORMED].astype("string"))
    frame["lead_id"] = frame["lead_id"].astype("string").str.strip()
    error = error.mask(frame["lead_id"].fillna("").eq("") & (error == ""), "lead_id is empty")
    if repeated is not None and (repeated > 0).any():
        again = pd.Series(repeated, index=frame.index)
        text = "duplicate lead_id (first seen in row " + again.astype("string") + ")"
        error = error.mask((again > 0) & (error == ""), text)
    for column in scorer.columns.numeric:
        if column in frame and column not in scorer.columns.behaviour:
            numbers = pd.to_numeric(frame[column], errors="coerce")
            bad = numbers.isna() & frame[column].notna()
            error = error.mask(bad & (error == ""), f"{column} is not a number")
            frame[column] = numbers
    if scorer.shape == "events":
        frame, error = _with_times(frame, error, as_of, read)
    return frame, error


def _with_times(frame: pd.DataFrame, error: pd.Series, as_of: pd.Timestamp,
                read: ReadOptions) -> tuple[pd.DataFrame, pd.Series]:
    created = (parse_timestamps(frame["created_at"], read) if "created_at" in frame
               else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]"))
    moment = (parse_timestamps(frame["as_of"], read).fillna(as_of) if "as_of" in frame
              else pd.Series(as_of, index=frame.index).astype("datetime64[ns, UTC]"))
    error = error.mask(created.isna() & (error == ""),
                       "created_at is missing or not a timestamp")
    error = error.mask(moment.isna() & (error == ""), "as_of is not a timestamp")
    error = error.mask((created > moment) & (error == ""), "created after as_of")
    return frame.assign(created_at=created, as_of=moment), error


def score_chunk(scorer: LeadScorer, frame: pd.DataFrame, error: pd.Series,
                events: pd.DataFrame | None, reasons: int | None = None) -> pd.DataFrame:
    """Scores for the good rows and empty scores with the reason for the others.

    Args:
        scorer: The model bundle's scorer.
        frame: The prepared chunk (:func:`prepare_chunk`).
        error: Its per-row errors (empty when fine).
        events: The leads' events (events shape), or None.
        reasons: None: scores only; 0: also fit vs engagement; k: also the top k
            reasons up and down.
    """
    columns = output_columns(reasons)
    good = (error == "").to_numpy()
    out = pd.DataFrame({"lead_id": frame["lead_id"],
                        "as_of": frame.get("as_of", pd.NaT)})
    if good.all():  # every row scored: the scores are the columns, as they come
        scored = _scored(scorer, frame, events, reasons)
        out = out.assign(**{c: scored[c].array for c in columns[2:-1]})  # no conversion
    else:
        for column in columns[2:-1]:
            out[column] = np.nan if column in NUMBER_COLUMNS else pd.NA
        if good.any():
            scored = _scored(scorer, frame.loc[good], events, reasons)
            for column in columns[2:-1]:
                out.loc[good, column] = scored[column].to_numpy()
    out["score"] = out["score"].astype("Int64")
    out["age_beyond_training"] = out["age_beyond_training"].astype("boolean")
    out["error"] = error.replace("", pd.NA)
    return out[columns]


def _scored(scorer: LeadScorer, frame: pd.DataFrame, events: pd.DataFrame | None,
            reasons: int | None) -> pd.DataFrame:
    # All events go in: encoding them keeps only the chunk's leads' (one pass, no copy)
    return (scorer.score(frame, events) if reasons is None
            else score_explained(scorer, frame, events, reasons))


class ChunkWriter:
    """Appends chunks to a CSV or Parquet file with a fixed schema."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self._parquet: pq.ParquetWriter | None = None
        self._first = True
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: pd.DataFrame) -> None:
        """Append one chunk."""
        if self.path.suffix.lower() not in (".parquet", ".pq"):
            frame.to_csv(self.path, mode="w" if self._first else "a", header=self._first,
                         index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema,
                                                 use_dictionary=_repeating(table.column_names))
            self._parquet.write_table(table.cast(self._parquet.schema))
        self._first = False

    def close(self) -> None:
        """Finish the file (an empty input still gets a header)."""
        if self._first:
            self.write(pd.DataFrame(columns=self.columns))
        if self._parquet is not None:
            self._parquet.close()


def _repeating(columns: list[str]) -> list[str]:
    """The output columns worth a Parquet dictionary: all but the lead ids, the times and
    the continuous numbers, which hardly repeat (trying a dictionary on them costs about
    as much as writing them, and the file gets no smaller)."""
    unique = {"lead_id", "as_of", *NUMBER_COLUMNS}
    return [c for c in columns if c not in unique]


@contextmanager
def written_aside(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix) that replaces ``path`` when the block
    ends without an error, and is removed when it fails: ``path`` is never left half
    written, and an earlier file there stays as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield staging
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)


def score_file(scorer: LeadScorer, leads_path: Path, events: pd.DataFrame | None,
               as_of: pd.Timestamp, output: Path, chunk_rows: int, read: ReadOptions,
               progress: Callable[[int, int], None] | None = None,
               reasons: int | None = None, leads: LeadsInput | None = None) -> ScoreSummary:
    """Score every row of a leads file into ``output``; rows that fail go to quarantine.

    ``output`` (and ``<output>.quarantine.csv``) appear only once every row is scored; a
    run that fails leaves neither (nor a stale quarantine file of an earlier run).

    Args:
        scorer: The model bundle's scorer.
        leads_path: Leads (CSV or Parquet): lead_id, attributes, and for the events
            shape created_at and optionally a per-row as_of.
        events: The leads' events (contract columns), or None.
        as_of: Moment to score at for rows without their own as_of.
        output: Scores file (.csv or .parquet).
        chunk_rows: Rows per chunk (bounds memory).
        read: Separator and how text timestamps are read.
        progress: Called with the rows done and the rows in all after each chunk.
        reasons: None: scores only; 0: also fit grade, engagement level and quadrant;
            k > 0: also the top k reasons up and down (see :func:`output_columns`).
        leads: :func:`read_leads_input` of the file, when already read.

    Raises:
        DataValidationError: The leads file cannot be read, lacks lead_id or has no rows.
    """
    leads = leads or read_leads_input(leads_path, read)
    quarantine = output.with_name(f"{output.stem}.quarantine.csv")
    rows_in = rows_failed = beyond = 0
    quarantined: list[pd.DataFrame] = []
    with written_aside(output) as staging:
        writer = ChunkWriter(staging, output_columns(reasons))
        try:
            for chunk in iter_chunks(leads_path, chunk_rows, read, leads.malformed):
                rows = chunk[ROW].to_numpy()
                frame, error = prepare_chunk(chunk, scorer, as_of, read,
                                             leads.repeated[rows - 1])
                scored = score_chunk(scorer, frame, error, events, reasons)
                writer.write(scored)
                beyond += int(scored["age_beyond_training"].fillna(False).sum())
                bad = (error != "").to_numpy()
                if bad.any():
                    quarantined.append(_quarantined_rows(chunk.loc[bad], error[bad]))
                rows_in += len(chunk)
                rows_failed += int(bad.sum())
                if progress:
                    progress(rows_in, leads.rows)
        finally:
            writer.close()
        if quarantined:
            with written_aside(quarantine) as quarantine_staging:
                pd.concat(quarantined).to_csv(quarantine_staging, index=False)
    if not quarantined:
        quarantine.unlink(missing_ok=True)
    return ScoreSummary(rows_in, rows_in - rows_failed, rows_failed, output,
                        quarantine if quarantined else None, beyond)


def _quarantined_rows(chunk: pd.DataFrame, error: pd.Series) -> pd.DataFrame:
    """Rows that could not be scored, as read, with their row number and reason (and a
    malformed CSV row's text as written)."""
    shown = chunk.drop(columns=[c for c in HIDDEN if c in chunk])
    shown = shown.assign(row=chunk[ROW].to_numpy(), error=error.to_numpy())
    if MALFORMED_TEXT in chunk:
        shown["text_as_written"] = chunk[MALFORMED_TEXT].to_numpy()
    return shown
