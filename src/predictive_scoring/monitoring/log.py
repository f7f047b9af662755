"""The prediction log read back through SQLAlchemy (a SQLite file or PostgreSQL).

The service writes the table (``serving/prediction_log.py``); this module only reads it,
by the column names it finds, so a table written before the monitoring columns existed
reads with them empty. Rows are streamed in chunks: each chunk's scalar columns are kept
(a few dozen bytes a row) and its input bins are counted at once per model version and
dropped, so memory grows with the rows' scores, never with their inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

TABLE = "lead_predictions"
COLUMNS = ("scored_at", "request_id", "lead_id", "as_of", "probability", "score",
           "suggested_stage", "rule_points", "rule_stage", "model_name", "model_version",
           "fit_grade", "engagement", "quadrant")
REQUIRED = COLUMNS[:11]
BINS = "input_bins"
TIMES = ("scored_at", "as_of")
CHUNK_ROWS = 100_000


class LogError(ValueError):
    """The prediction log cannot be read (no such table, a column missing)."""


class LogUnreachable(OSError):
    """The prediction log's database cannot be reached."""


@dataclass
class LogRead:
    """What was read from the log.

    Attributes:
        rows: One row per logged score (:data:`COLUMNS`, times as UTC timestamps, plus
            ``moment``: ``as_of``, or ``scored_at`` when the score had none).
        bin_counts: ``(model_name, model_version, length)`` -> counts ``(length, 256)``
            of each byte at each position of the rows' input bins.
        without_bins: ``(model_name, model_version)`` -> rows with no input bins (logged
            before they existed, or past their retention).
        has_bins_column: The table has the ``input_bins`` column at all.
    """

    rows: pd.DataFrame
    bin_counts: dict[tuple[str, str, int], np.ndarray] = field(default_factory=dict)
    without_bins: dict[tuple[str, str], int] = field(default_factory=dict)
    has_bins_column: bool = True


def read_log(url: str, since: datetime | None = None, until: datetime | None = None,
             progress: Callable[[int, int], None] | None = None,
             chunk_rows: int = CHUNK_ROWS) -> LogRead:
    """Logged scores whose moment (``as_of``, else ``scored_at``) is in ``[since, until)``.

    Args:
        url: SQLAlchemy URL of the log's database.
        since: First moment included (None: from the start).
        until: First moment excluded (None: to the end).
        progress: Called with (rows read, rows in all) after each chunk.
        chunk_rows: Rows read per chunk.

    Raises:
        LogUnreachable: The database cannot be reached.
        LogError: It has no prediction log table, or the table lacks a needed column.
    """
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    try:
        engine = sa.create_engine(url)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise LogError(f"--prediction-log {_redact(url)} is not a database URL SQLAlchemy "
                       f"reads ({exc}); e.g. sqlite:///out/predictions.db or "
                       "postgresql+psycopg://user@host/db") from None
    try:
        with engine.connect() as connection:
            table = _table(connection, url)
            moment = sa.func.coalesce(table.c.as_of, table.c.scored_at)
            where = [moment >= since] if since is not None else []
            where += [moment < until] if until is not None else []
            total = connection.execute(sa.select(sa.func.count()).select_from(table)
                                       .where(*where)).scalar_one()
            # Times come as the driver gives them (SQLite: text) and are parsed by pandas
            # at once: a million rows through SQLAlchemy's per-value processing and Row
            # objects cost more than all the rest of monitoring.
            wanted = [(sa.cast(table.c[name], sa.Text) if name in TIMES else table.c[name])
                      .label(name) if name in table.c else sa.null().label(name)
                      for name in COLUMNS]
            has_bins = BINS in table.c
            wanted.append(table.c[BINS] if has_bins else sa.null().label(BINS))
            query = sa.select(*wanted).where(*where).order_by(table.c.id)
            result = _raw_rows(connection, query, chunk_rows)
            read = _read_chunks(result, total, progress, chunk_rows)
    except DBAPIError as exc:
        raise LogUnreachable(f"the prediction log at {_redact(url)} cannot be read: "
                             f"{_first_line(exc)}") from None
    finally:
        engine.dispose()
    read.has_bins_column = has_bins
    return read


def _raw_rows(connection: Any, query: Any, chunk_rows: int) -> Any:
    """The rows of the query as the driver gives them (no per-value processing), streamed
    (a server-side cursor where the database has them); the
    window's bounds bound as the column type binds them (SQLite stores times as text)."""
    import sqlalchemy as sa

    dialect = connection.dialect
    compiled = query.compile(dialect=dialect)
    process = sa.DateTime(timezone=True).bind_processor(dialect)
    params = {name: (process(_utc(value).replace(tzinfo=None)) if process is not None
                     else _utc(value)) if isinstance(value, datetime) else value
              for name, value in compiled.params.items()}
    args = (tuple(params[name] for name in compiled.positiontup) if compiled.positional
            else params)
    return connection.execution_options(stream_results=True, yield_per=chunk_rows
                                        ).exec_driver_sql(str(compiled), args)


def _utc(moment: datetime) -> datetime:
    """A UTC datetime (a naive one is taken as UTC); SQLite keeps times as UTC text
    without the offset, so its binding drops it."""
    moment = pd.Timestamp(moment)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    return moment.to_pydatetime()


def _table(connection: Any, url: str) -> Any:
    import sqlalchemy as sa

    inspector = sa.inspect(connection)
    if not inspector.has_table(TABLE):
        raise LogError(f"the database at {_redact(url)} has no '{TABLE}' table: is it the "
                       "service's prediction log (PREDICTIVE_SCORING_PREDICTION_LOG_URL)?")
    table = sa.Table(TABLE, sa.MetaData(), autoload_with=connection)
    missing = [name for name in (*REQUIRED, "id") if name not in table.c]
    if missing:
        raise LogError(f"the '{TABLE}' table at {_redact(url)} lacks the column(s) "
                       f"{missing}: it was not written by the scoring service")
    return table


def _read_chunks(result: Any, total: int, progress: Callable[[int, int], None] | None,
                 chunk_rows: int) -> LogRead:
    frames: list[pd.DataFrame] = []
    counts: dict[tuple[str, str, int], np.ndarray] = {}
    without: dict[tuple[str, str], int] = {}
    done = 0
    for chunk in result.partitions(chunk_rows):
        frame = pd.DataFrame.from_records([tuple(row) for row in chunk],
                                          columns=[*COLUMNS, BINS])
        _count_bins(frame, counts, without)
        frames.append(frame.drop(columns=BINS))
        done += len(frame)
        if progress is not None:
            progress(done, total)
    rows = (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame({name: pd.Series(dtype=object) for name in COLUMNS}))
    return LogRead(_typed(rows), counts, without)


def _count_bins(frame: pd.DataFrame, counts: dict, without: dict) -> None:
    """Add a chunk's input bins to the per-version byte counts (one bincount per input
    position over the chunk's rows of a version)."""
    bins = frame[BINS].to_numpy(object)
    for (name, version), positions in frame.groupby(
            ["model_name", "model_version"], sort=False).indices.items():
        strings = bins[positions]
        present = [s for s in strings if s is not None]
        if len(present) < len(strings):
            without[(name, version)] = without.get((name, version), 0) + (
                len(strings) - len(present))
        by_length: dict[int, list[str]] = {}
        for text in present:
            by_length.setdefault(len(text), []).append(text)
        for length, group in by_length.items():
            data = "".join(group).encode("ascii", errors="replace")
            matrix = np.frombuffer(data, dtype=np.uint8).reshape(len(group), length)
            chunk = np.stack([np.bincount(matrix[:, j], minlength=256)
                              for j in range(length)]) if length else np.zeros((0, 256),
                                                                               np.int64)
            key = (str(name), str(version), length)
            counts[key] = counts[key] + chunk if key in counts else chunk


def _typed(rows: pd.DataFrame) -> pd.DataFrame:
    for name in TIMES:
        rows[name] = pd.to_datetime(rows[name], utc=True, format="ISO8601")
    for name in ("probability", "rule_points"):
        rows[name] = pd.to_numeric(rows[name], errors="coerce").astype("float64")
    for name in ("request_id", "lead_id", "model_name", "model_version", "suggested_stage",
                 "rule_stage"):
        rows[name] = rows[name].astype(object).where(rows[name].notna(), None)
    rows["moment"] = rows["as_of"].fillna(rows["scored_at"])
    return rows


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show nothing of it
        return "the given URL"


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return f"{type(original).__name__}: {text.splitlines()[0] if text else ''}"
