"""The prediction log: every score given, with the rules' points and the model version.

Marketing ops compare predicted and rule scores over time from it. Rows go to any
database SQLAlchemy reaches by URL: a SQLite file by default, PostgreSQL in production
(``postgresql+psycopg://user@host/db``). Requests only put rows on a queue; one writer
thread inserts them in batches, so a slow database never slows scoring. If the queue
fills up (the database is down for long), new rows are dropped and counted in the
``scoring_prediction_log_rows{outcome="dropped"}`` metric rather than exhausting memory.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

TABLE = "lead_predictions"
FLUSH_ROWS = 1000
FLUSH_SECONDS = 0.5
QUEUE_ROWS = 200_000

metadata = sa.MetaData()
predictions = sa.Table(
    TABLE, metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("lead_id", sa.String(256), nullable=False, index=True),
    sa.Column("as_of", sa.DateTime(timezone=True)),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("suggested_stage", sa.String(32), nullable=False),
    sa.Column("rule_points", sa.Float, nullable=False),
    sa.Column("rule_stage", sa.String(32)),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
)

log = logging.getLogger(__name__)


def create_log_engine(url: str) -> Engine:
    """An engine for the log's database, its table created if missing.

    A SQLite file's folder is created; SQLite runs in WAL mode with a busy timeout so
    several worker processes can append to one file.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_wal)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        metadata.create_all(engine)
    except OperationalError:  # another worker created it at the same moment
        metadata.create_all(engine)
    return engine


def _sqlite_wal(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class PredictionLog:
    """Queued, batched inserts into the prediction log from a background thread.

    Args:
        url: SQLAlchemy database URL.
        on_rows: Called with ``("written" | "dropped", count)`` (the metrics).
    """

    def __init__(self, url: str, on_rows: Callable[[str, int], None]) -> None:
        self.engine = create_log_engine(url)
        self._rows: queue.Queue[Mapping[str, Any] | None] = queue.Queue(QUEUE_ROWS)
        self._on_rows = on_rows
        self._writer = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._writer.start()

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue rows (never blocks; rows that do not fit are dropped and counted)."""
        dropped = 0
        for row in rows:
            try:
                self._rows.put_nowait(row)
            except queue.Full:
                dropped += 1
        if dropped:
            self._on_rows("dropped", dropped)

    def close(self) -> None:
        """Write what is queued, stop the writer and release the database."""
        self._rows.put(None)
        self._writer.join(timeout=30)
        self.engine.dispose()

    def _run(self) -> None:
        while True:
            batch, stop = self._next_batch()
            if batch:
                self._insert(batch)
            if stop:
                return

    def _next_batch(self) -> tuple[list[Mapping[str, Any]], bool]:
        first = self._rows.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < FLUSH_ROWS:
            try:
                row = self._rows.get(timeout=FLUSH_SECONDS if len(batch) == 1 else 0.01)
            except queue.Empty:
                break
            if row is None:
                return batch, True
            batch.append(row)
        return batch, False

    def _insert(self, batch: list[Mapping[str, Any]]) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(predictions.insert(), batch)
        except Exception as exc:  # a database outage must not stop the writer
            # The type only: the driver's message can hold the URL and the row values.
            log.error("prediction log: %d row(s) could not be written (%s)", len(batch),
                      type(exc).__name__)
            self._on_rows("dropped", len(batch))
        else:
            self._on_rows("written", len(batch))
