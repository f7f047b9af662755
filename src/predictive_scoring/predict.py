"""Batch scoring of a leads file (CSV or Parquet) with a model bundle, chunk by chunk.

Every input row comes out, in order: scored rows carry probability, score, suggested
stage and the rules' points and stage, and when asked the fit vs engagement split
(grade, level, quadrant) and the top reasons up and down as sentences; a row that
cannot be scored (unparseable time, a number that is not a number) carries empty scores
and the reason in ``error``, and is also written to a quarantine file. Memory stays
bounded by the chunk size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from predictive_scoring.config import ReadOptions
from predictive_scoring.data.dataset import parse_timestamps
from predictive_scoring.explain import EXPLANATION_COLUMNS, reason_columns, score_explained
from predictive_scoring.models.scorer import LeadScorer

OUTPUT_COLUMNS = ["lead_id", "as_of", "probability", "score", "suggested_stage",
                  "rule_points", "rule_stage", "error"]
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


def iter_chunks(path: Path, chunk_rows: int, read: ReadOptions) -> Iterator[pd.DataFrame]:
    """The file's rows as frames of at most ``chunk_rows`` rows (text for CSV)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(path, sep=read.sep, dtype="string", keep_default_na=False,
                           na_values=[""], chunksize=chunk_rows)


def count_rows(path: Path, read: ReadOptions) -> int:
    """Rows in the file (for progress): Parquet metadata, or a line count for CSV."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.ParquetFile(path).metadata.num_rows
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def prepare_chunk(chunk: pd.DataFrame, scorer: LeadScorer, as_of: pd.Timestamp,
                  read: ReadOptions) -> tuple[pd.DataFrame, pd.Series]:
    """Parse a chunk into the scorer's input and a per-row error (empty when fine)."""
    frame = chunk.copy()
    error = pd.Series("", index=frame.index, dtype="string")
    if "lead_id" not in frame:
        raise ValueError(f"the leads file needs a lead_id column; it has {list(chunk.columns)}")
    frame["lead_id"] = frame["lead_id"].astype("string").str.strip()
    error = error.mask(frame["lead_id"].isna(), "lead_id is empty")
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
    for column in columns[2:-1]:
        out[column] = np.nan if column in NUMBER_COLUMNS else pd.NA
    if good.any():
        # All events go in: encoding them keeps only the chunk's leads' (one pass, no copy)
        scored = (scorer.score(frame.loc[good], events) if reasons is None
                  else score_explained(scorer, frame.loc[good], events, reasons))
        for column in columns[2:-1]:
            out.loc[good, column] = scored[column].to_numpy()
    out["score"] = out["score"].astype("Int64")
    out["error"] = error.replace("", pd.NA)
    return out[columns]


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
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        self._first = False

    def close(self) -> None:
        """Finish the file (an empty input still gets a header)."""
        if self._first:
            self.write(pd.DataFrame(columns=self.columns))
        if self._parquet is not None:
            self._parquet.close()


def score_file(scorer: LeadScorer, leads_path: Path, events: pd.DataFrame | None,
               as_of: pd.Timestamp, output: Path, chunk_rows: int, read: ReadOptions,
               progress: Callable[[int], None] | None = None,
               reasons: int | None = None) -> ScoreSummary:
    """Score every row of a leads file into ``output``; rows that fail go to quarantine.

    Args:
        scorer: The model bundle's scorer.
        leads_path: Leads (CSV or Parquet): lead_id, attributes, and for the events
            shape created_at and optionally a per-row as_of.
        events: The leads' events (contract columns), or None.
        as_of: Moment to score at for rows without their own as_of.
        output: Scores file (.csv or .parquet).
        chunk_rows: Rows per chunk (bounds memory).
        read: How text timestamps are read.
        progress: Called with the number of rows done after each chunk.
        reasons: None: scores only; 0: also fit grade, engagement level and quadrant;
            k > 0: also the top k reasons up and down (see :func:`output_columns`).
    """
    writer = ChunkWriter(output, output_columns(reasons))
    quarantine = output.with_name(f"{output.stem}.quarantine.csv")
    rows_in = rows_failed = 0
    quarantined: list[pd.DataFrame] = []
    try:
        for chunk in iter_chunks(leads_path, chunk_rows, read):
            frame, error = prepare_chunk(chunk, scorer, as_of, read)
            writer.write(score_chunk(scorer, frame, error, events, reasons))
            bad = (error != "").to_numpy()
            if bad.any():
                quarantined.append(chunk.loc[bad].assign(row=np.flatnonzero(bad) + rows_in + 1,
                                                         error=error[bad]))
            rows_in += len(chunk)
            rows_failed += int(bad.sum())
            if progress:
                progress(rows_in)
    finally:
        writer.close()
    if quarantined:
        pd.concat(quarantined).to_csv(quarantine, index=False)
    return ScoreSummary(rows_in, rows_in - rows_failed, rows_failed, output,
                        quarantine if quarantined else None)
