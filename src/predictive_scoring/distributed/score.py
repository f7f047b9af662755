"""Scoring on Dask: a Parquet table of leads, partition by partition, into a folder of
Parquet part files, with retries for a partition that fails and rows in = rows out.

Each partition runs predict.py's chunk scoring on its leads and their events (read by
lead, as :mod:`.sources` does for training), and writes ``part-NNNNN.parquet`` whole or
not at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from predictive_scoring.config import ColumnNames, ReadOptions
from predictive_scoring.data.dataset import check_scoring_events
from predictive_scoring.distributed.cluster import DaskPlan, partitions
from predictive_scoring.distributed.sources import (
    BUCKET,
    ParquetSource,
    locate_rows,
    parquet_source,
    read_by_lead,
)
from predictive_scoring.errors import IncompleteOutput
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.predict import (
    NUMBER_COLUMNS,
    output_columns,
    prepare_chunk,
    repeated_leads,
    score_chunk,
)

if TYPE_CHECKING:
    from distributed import Client, Future

PART_GLOB = "part-*.parquet"
"""The scores' part files in the output folder."""
_OUTPUT_TYPES = {"lead_id": pa.string(), "as_of": pa.timestamp("ns", tz="UTC"),
                 "probability": pa.float64(), "score": pa.int64(),
                 "suggested_stage": pa.string(), "rule_points": pa.float64(),
                 "rule_stage": pa.string(), "age_beyond_training": pa.bool_(),
                 "error": pa.string()}


def output_schema(reasons: int | None) -> pa.Schema:
    """Every scores part file's schema: predict.py's columns for ``reasons``, typed even
    where a partition has them all missing (explanation numbers float, the rest text)."""
    def kind(name: str) -> pa.DataType:
        return _OUTPUT_TYPES.get(name, pa.float64() if name in NUMBER_COLUMNS else pa.string())
    return pa.schema([(name, kind(name)) for name in output_columns(reasons)])


@dataclass(frozen=True)
class ScoreRequest:
    """What to score: a table of leads (and their events) as of a moment, into a folder,
    with or without explanations.

    Attributes:
        leads: Leads (a Parquet file, folder or glob): lead_id, attributes, and for the
            events shape created_at and optionally a per-row as_of.
        events: The leads' events (Parquet file, folder or glob), or None.
        as_of: Moment to score at for rows without their own as_of.
        output: A new or empty folder for ``part-NNNNN.parquet`` files.
        reasons: None: scores only; 0: also fit vs engagement; k: also the top k reasons
            up and down (as :func:`~predictive_scoring.predict.score_file`).
        read: How text timestamps are read.
    """

    leads: Path
    events: Path | None
    as_of: pd.Timestamp
    output: Path
    reasons: int | None = None
    read: ReadOptions = field(default_factory=ReadOptions)

    @property
    def events_label(self) -> str:
        """The events' path as given (for messages)."""
        return "" if self.events is None else str(self.events)


@dataclass(frozen=True)
class PartitionScores:
    """What scoring one partition produced."""

    partition: int
    rows_in: int
    rows_scored: int
    rows_failed: int
    path: str
    bad_leads: pd.DataFrame
    bad_events: pd.DataFrame


@dataclass(frozen=True)
class PartitionFailure:
    """A partition that failed, every attempt's error."""

    partition: int
    errors: tuple[str, ...]


class PartitionsFailed(IncompleteOutput):
    """Partitions failed on every attempt: the output is incomplete."""

    def __init__(self, failures: Sequence[PartitionFailure], output: Path):
        self.failures = list(failures)
        lines = [f"{len(failures)} partition(s) failed on every attempt, so {output} is "
                 "incomplete (the other partitions' files are there):"]
        lines += [f"  partition {f.partition}: {len(f.errors)} attempt(s); last error: "
                  f"{f.errors[-1]}" for f in failures]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class DistributedScoreSummary:
    """Rows in, rows scored and failed, the output folder and what was retried."""

    rows_in: int
    rows_scored: int
    rows_failed: int
    output: Path
    partitions: int
    retried: dict[int, tuple[str, ...]]
    quarantine: Path | None
    events_quarantine: Path | None


def score_partition(leads: pd.DataFrame, events: pd.DataFrame | None, scorer: LeadScorer,
                    request: ScoreRequest, partition: int) -> PartitionScores:
    """predict.py's chunk scoring of one partition, written as ``part-NNNNN.parquet`` in
    the request's output (``reasons`` as in :func:`~predictive_scoring.predict.score_chunk`).

    The file appears whole or not at all (written aside, then renamed), so a retried
    partition never leaves half a file.
    """
    read = request.read
    usable, bad_events = None, pd.DataFrame()
    if events is not None:
        check = check_scoring_events(request.events_label, events.drop(columns=BUCKET), read,
                                     ColumnNames())
        usable, bad_events = check.kept, check.quarantined
    chunk = leads.drop(columns=BUCKET).reset_index(drop=True)
    # a lead's rows share a bucket, so its repeats are all in this partition
    frame, error = prepare_chunk(chunk, scorer, request.as_of, read, repeated_leads(chunk, read))
    scores = score_chunk(scorer, frame, error, usable, request.reasons)
    scores["as_of"] = pd.to_datetime(scores["as_of"], utc=True)
    path = Path(request.output) / f"part-{partition:05d}.parquet"
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(pa.Table.from_pandas(scores, schema=output_schema(request.reasons),
                                        preserve_index=False), staging)
    staging.replace(path)
    bad = (error != "").to_numpy()
    bad_leads = leads.iloc[np.flatnonzero(bad)].drop(columns=BUCKET).assign(
        error=error[bad].to_numpy())
    return PartitionScores(partition, len(chunk), int((~bad).sum()), int(bad.sum()),
                           str(path), bad_leads, bad_events)


PartitionJob = Callable[..., PartitionScores]


def run_partitions(client: Client, submit: Callable[[int], Future], n: int, retries: int,
                   done: Callable[[int], None] = lambda _: None
                   ) -> tuple[dict[int, Any], dict[int, list[str]], list[PartitionFailure]]:
    """Run one job per partition, resubmitting a failed one up to ``retries`` times.

    Args:
        client: The Dask client.
        submit: Starts partition ``i``'s job and returns its future.
        n: Number of partitions.
        retries: Extra attempts per partition after a failure.
        done: Called with the number of partitions finished so far.

    Returns:
        Results by partition, the errors of every failed attempt by partition, and the
        partitions that failed on every attempt.
    """
    from distributed import as_completed

    running = {submit(i): i for i in range(n)}
    results: dict[int, Any] = {}
    errors: dict[int, list[str]] = {}
    failures = []
    pending = as_completed(list(running))
    for future in pending:
        partition = running.pop(future)
        if future.status == "finished":
            results[partition] = future.result()
            done(len(results))
            continue
        errors.setdefault(partition, []).append(_error_text(future.exception()))
        if len(errors[partition]) <= retries:
            again = submit(partition)
            running[again] = partition
            pending.add(again)
        else:
            failures.append(PartitionFailure(partition, tuple(errors[partition])))
    return results, errors, sorted(failures, key=lambda f: f.partition)


def _error_text(error: BaseException | None) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) < 2000 else text[:2000] + " ..."


def score_distributed(client: Client, scorer: LeadScorer, request: ScoreRequest,
                      plan: DaskPlan, done: Callable[[int], None] = lambda _: None,
                      job: PartitionJob = score_partition) -> DistributedScoreSummary:
    """Score a Parquet table of leads partition by partition into a Parquet folder.

    Args:
        client: A connected Dask client; every worker must read the inputs and write to
            the request's output.
        scorer: The bundle's scorer.
        request: What to score, as of when, into which folder.
        plan: Partitions of leads, and extra attempts for a partition that fails.
        done: Called with the number of partitions finished.
        job: The per-partition job (:func:`score_partition` or a wrapper of it).

    Returns:
        The summary; rows that could not be scored have their reason in ``error`` and
        are listed with file and row in ``<output>.quarantine.csv``.

    Raises:
        PartitionsFailed: Some partition failed on every attempt.
        IncompleteOutput: Rows out differ from rows in.
        ValueError: The output folder holds files, or no Parquet input was found.
    """
    output, n_partitions = request.output, plan.partitions
    if output.exists() and any(output.iterdir()):
        raise ValueError(f"{output} is not empty; score into a new or empty folder so no "
                         "earlier part file mixes with this run's")
    output.mkdir(parents=True, exist_ok=True)
    lead_source = parquet_source(request.leads)
    lead_parts = partitions(client, read_by_lead(lead_source, "lead_id", n_partitions))
    event_source = parquet_source(request.events) if request.events is not None else None
    event_parts = (partitions(client, read_by_lead(event_source, ColumnNames().lead_id,
                                                   n_partitions))
                   if event_source else [None] * n_partitions)
    scorer_future = client.scatter(scorer, broadcast=True)

    def submit(i: int) -> Future:
        return client.submit(job, lead_parts[i], event_parts[i], scorer_future, request, i,
                             pure=False)

    results, errors, failures = run_partitions(client, submit, n_partitions, plan.retries,
                                               done)
    if failures:
        raise PartitionsFailed(failures, output)
    scored = [results[i] for i in range(n_partitions)]
    summary = _checked_counts(scored, lead_source, output)
    bad_leads = locate_rows(pd.concat([s.bad_leads for s in scored]), lead_source)
    bad_events = (locate_rows(pd.concat([s.bad_events for s in scored]), event_source)
                  if event_source else pd.DataFrame())
    return DistributedScoreSummary(
        summary[0], summary[1], summary[0] - summary[1], output, n_partitions,
        {i: tuple(e) for i, e in errors.items() if i in results},
        _write_csv(bad_leads, output.with_name(f"{output.name}.quarantine.csv")),
        _write_csv(bad_events, output.with_name(f"{output.name}.events.quarantine.csv")))


def _checked_counts(scored: list[PartitionScores], source: ParquetSource,
                    output: Path) -> tuple[int, int]:
    """Rows in, as read, as in the input's metadata and as written, must all agree."""
    rows_in = sum(s.rows_in for s in scored)
    written = sum(pq.ParquetFile(s.path).metadata.num_rows for s in scored)
    if not rows_in == written == source.n_rows:
        raise IncompleteOutput(f"row counts disagree: {source.n_rows:,} rows in {source.label}, "
                               f"{rows_in:,} read by the partitions, {written:,} written to "
                               f"{output}; the output is not complete")
    return rows_in, sum(s.rows_scored for s in scored)


def _write_csv(frame: pd.DataFrame, path: Path) -> Path | None:
    if frame.empty:
        return None
    frame.to_csv(path, index=False)
    return path
