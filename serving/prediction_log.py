"""The prediction log: every score answered, with the rules' points and the model version.

Marketing ops compare predicted and rule scores over time from it. Rows go to any
database SQLAlchemy reaches by URL: a SQLite file by default, PostgreSQL in production
(``postgresql+psycopg://user@host/db``).

Nothing answered is lost. Before a request is answered, its rows are appended to a local
spool file of the worker (one ``write`` of JSON lines: once it returns, the rows are the
kernel's and survive the process being killed, ``kill -9`` included). A writer thread
copies the spool into the database in batches and records, in the same transaction, how
far it got (table ``prediction_log_spool``), so a row is written exactly once whatever
stops the service between the two. At start the writer replays every spool file no live
worker holds (each worker keeps an exclusive lock on its own), then follows its own. A
database that is down, at start or later, only makes the spool grow: scoring goes on,
``/ready`` says the log is spooling and ``/metrics`` counts the rows pending; the writer
retries and catches up. A row the database refuses for good (not an outage) is set aside
in ``rejected.jsonl`` beside the spool with the reason, and counted.

Durability covers the service failing; a power cut can still lose what the operating
system had not written to disk.

**What monitoring needs** (``predictive-scoring monitor``): besides the scores, each row
keeps the lead's fit grade, engagement level and quadrant, and its model input as
*bins* of the model's training reference (``input_bins``: one character per input, which
training decile or category it falls in; see
:mod:`predictive_scoring.monitoring.reference`), never the values themselves. Bins are
kept :data:`BINS_RETENTION_DAYS` days by default (``PREDICTIVE_SCORING_PREDICTION_LOG_BINS_DAYS``):
the writer then clears them (drift looks at recent weeks; the scores stay). A table made
before these columns existed gets them added when the log opens (``ALTER TABLE ... ADD
COLUMN``, on SQLite and PostgreSQL); its old rows read back with them empty.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from serving.observability import Metrics

TABLE = "lead_predictions"
FLUSH_ROWS = 1000
FLUSH_SECONDS = 0.5
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
"""Waits between attempts while the database is unreachable (the last one repeats)."""
ROTATE_BYTES = 64 * 2**20
"""A spool file this large and fully written is replaced by a new one."""
SUFFIX = ".spool"
REJECTED = "rejected.jsonl"
TIMES = ("scored_at", "as_of")
BINS_RETENTION_DAYS = 400
PURGE_SECONDS = 3600.0
"""How often the writer clears bins past their retention."""

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
    sa.Column("fit_grade", sa.String(8)),
    sa.Column("engagement", sa.String(16)),
    sa.Column("quadrant", sa.String(32)),
    sa.Column("input_bins", sa.Text),
)
ADDED_COLUMNS = ("fit_grade", "engagement", "quadrant", "input_bins")
"""Columns added after the first release: nullable, added to an existing table on open."""
spool_offsets = sa.Table(
    "prediction_log_spool", metadata,
    sa.Column("spool", sa.String(255), primary_key=True),
    sa.Column("written_bytes", sa.BigInteger, nullable=False),
)
"""How much of each spool file is in ``lead_predictions`` (updated with its rows)."""

log = logging.getLogger(__name__)


class Unreachable(RuntimeError):
    """The database cannot be reached (or set up) right now; the rows wait in the spool."""


def create_log_engine(url: str) -> Engine:
    """An engine for the log's database, its tables created if missing.

    A SQLite file's folder is created; SQLite runs in WAL mode with a busy timeout so
    several worker processes can append to one file.

    Raises:
        Unreachable: The database cannot be reached or its tables created.
    """
    parsed = make_url(url)
    try:
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "",
                                                                              ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 30})
            sa.event.listen(engine, "connect", _sqlite_wal)
            sa.event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True,
                                      connect_args=_connect_timeout(parsed))
        try:
            metadata.create_all(engine)
        except OperationalError:  # another worker created them at the same moment
            metadata.create_all(engine)
        add_missing_columns(engine)
    except (OSError, DBAPIError) as exc:
        raise Unreachable(_why(exc)) from exc
    return engine


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the columns of :data:`ADDED_COLUMNS` an existing table lacks (nullable, so its
    rows stay valid). Another worker adding the same column at the same moment is fine.

    Returns:
        The columns added.
    """
    added = []
    for name in ADDED_COLUMNS:
        if name in {c["name"] for c in sa.inspect(engine).get_columns(TABLE)}:
            continue
        column = predictions.c[name]
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}")
        except (OperationalError, DBAPIError):
            if name not in {c["name"] for c in sa.inspect(engine).get_columns(TABLE)}:
                raise
            continue
        added.append(name)
        log.info("prediction log: column %s added to %s", name, TABLE)
    return added


def _connect_timeout(url: sa.URL) -> dict[str, Any]:
    return {"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {}


def _sqlite_wal(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # SQLAlchemy's recipe for SAVEPOINTs on pysqlite: the driver must not open
    # transactions itself; the "begin" listener does.
    connection.isolation_level = None


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _why(exc: BaseException) -> str:
    """An error's kind and first line, never the URL or row values (the driver's message
    can hold both: only its first line is kept, and only for operational errors)."""
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()[0] if str(original).strip() else ""
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError | InterfaceError):
        first = ""
    return f"{type(original).__name__}: {first}"[:300] if first else type(original).__name__


class SpoolFile:
    """One worker's spool: JSON lines appended with one ``write`` each, under an exclusive
    lock that says the file is in use (a killed worker's lock goes with it)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"{os.getpid()}-{time.time_ns()}{SUFFIX}"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def append(self, data: bytes) -> None:
        """Append bytes (the kernel's once this returns).

        Raises:
            OSError: The disk refused them (full, read-only...).
        """
        written = os.write(self.fd, data)
        if written != len(data):  # a regular file takes all of it, or raises
            raise OSError(f"the spool took {written} of {len(data)} bytes")

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        os.close(self.fd)


class PredictionLog:
    """Rows spooled before they are answered, copied into the database by a thread.

    Args:
        url: SQLAlchemy database URL.
        spool: Folder of the spool files (local; shared by the workers of one server).
        metrics: Where the rows spooled, written, replayed and rejected are counted.
    """

    def __init__(self, url: str, spool: Path, metrics: Metrics,
                 bins_days: float = BINS_RETENTION_DAYS) -> None:
        self.url = url
        self.bins_days = bins_days
        self._purged_at = -math.inf
        self.folder = Path(spool)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._metrics = metrics
        self._file = SpoolFile(self.folder)
        self._lock = threading.Lock()  # one append or file switch at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._engine: Engine | None = None
        self.pending = 0
        self.reason: str | None = "connecting to the database"
        self._writer = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------------ requests
    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Spool rows before their request is answered.

        Raises:
            OSError: The spool cannot take them (the request must then not be answered
                as scored).
        """
        data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        with self._lock:
            self._file.append(data)
            self.pending += len(rows)
        self._count("spooled", len(rows))
        self._metrics.prediction_log_pending.inc(len(rows))
        if self.pending >= FLUSH_ROWS:
            self._wake.set()

    def status(self) -> dict[str, Any]:
        """``writing`` or ``spooling`` (with the reason), and the rows not yet written."""
        return {"status": "spooling" if self.reason else "writing",
                "pending_rows": self.pending, "reason": self.reason}

    def close(self, timeout: float = 30) -> None:
        """Write what the database takes within ``timeout``, then stop; what it did not
        take stays spooled for the next start."""
        self._stop.set()
        self._wake.set()
        self._writer.join(timeout=timeout)
        if self._engine is not None:
            self._engine.dispose()

    # ------------------------------------------------------------------ the writer
    def _run(self) -> None:
        attempt = 0
        while True:
            try:
                if self._engine is None:
                    self._engine = create_log_engine(self.url)
                    self._replay_others()
                self._drain_own()
                self._purge_old_bins()
                if self.reason:
                    log.info("prediction log: writing to the database again")
                self.reason, attempt = None, 0
            except Unreachable as exc:
                if self.reason != str(exc):
                    log.error("prediction log: spooling, the database is unreachable (%s)",
                              exc)
                self.reason = str(exc)
                self._engine = _disposed(self._engine)
                if self._stop.is_set():
                    return
                self._stop.wait(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1
                continue
            if self._stop.is_set():
                self._finish_own()
                return
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()

    def _drain_own(self) -> None:
        while True:
            written = self._copy(self._file.path, own=True)
            if written == 0:
                break
        self._rotate_if_large()

    def _purge_old_bins(self) -> None:
        """Clear ``input_bins`` of rows scored more than ``bins_days`` ago (hourly)."""
        now = time.monotonic()
        if now - self._purged_at < PURGE_SECONDS:
            return
        cutoff = datetime.now(UTC) - timedelta(days=self.bins_days)
        try:
            with self._engine.begin() as connection:
                cleared = connection.execute(
                    predictions.update().where(predictions.c.scored_at < cutoff,
                                               predictions.c.input_bins.is_not(None))
                    .values(input_bins=None)).rowcount
        except (OperationalError, InterfaceError) as exc:
            raise Unreachable(_why(exc)) from exc
        self._purged_at = now
        if cleared:
            log.info("prediction log: bins of %d row(s) older than %g days cleared",
                     cleared, self.bins_days)

    def _replay_others(self) -> None:
        """Copy every spool file no live worker holds, then remove it."""
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            if path == self._file.path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # another worker finished it
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its worker is alive
                os.close(fd)
                continue
            try:
                replayed = 0
                while (rows := self._copy(path, own=False)) > 0:
                    replayed += rows
                self._forget(path)
                if replayed:
                    log.info("prediction log: %d row(s) replayed from %s", replayed, path.name)
            finally:
                os.close(fd)

    def _copy(self, path: Path, own: bool) -> int:
        """Copy the next rows of a spool file into the database with its new offset.

        Returns:
            Rows copied (0: nothing new).

        Raises:
            Unreachable: The database is down; nothing was recorded as written.
        """
        try:
            with self._engine.begin() as connection:
                offset = connection.execute(
                    sa.select(spool_offsets.c.written_bytes)
                    .where(spool_offsets.c.spool == path.name).with_for_update()
                ).scalar()
                lines, end = _read_lines(path, offset or 0)
                if not lines:
                    return 0
                rows = [_row(line) for line in lines]
                rejected = self._insert(connection, rows)
                if offset is None:
                    connection.execute(spool_offsets.insert().values(spool=path.name,
                                                                     written_bytes=end))
                else:
                    connection.execute(spool_offsets.update()
                                       .where(spool_offsets.c.spool == path.name)
                                       .values(written_bytes=end))
        except (OperationalError, InterfaceError) as exc:
            raise Unreachable(_why(exc)) from exc
        self._set_aside(rejected)
        taken = len(rows) - len(rejected)
        self._count("written" if own else "replayed", taken)
        self._count("rejected", len(rejected))
        if own:
            with self._lock:
                self.pending -= len(rows)
            self._metrics.prediction_log_pending.dec(len(rows))
        return len(rows)

    def _insert(self, connection: sa.Connection, rows: list[dict[str, Any]]
                ) -> list[tuple[dict[str, Any], str]]:
        """Insert rows; if the batch is refused for its data, row by row, returning the
        rows refused with the reason (an outage propagates: nothing is set aside)."""
        try:
            with connection.begin_nested():
                connection.execute(predictions.insert(), rows)
            return []
        except (OperationalError, InterfaceError):
            raise
        except DBAPIError:
            pass
        refused = []
        for row in rows:
            try:
                with connection.begin_nested():
                    connection.execute(predictions.insert(), [row])
            except (OperationalError, InterfaceError):
                raise
            except DBAPIError as exc:
                refused.append((row, _why(exc)))
        return refused

    def _set_aside(self, rejected: list[tuple[dict[str, Any], str]]) -> None:
        if not rejected:
            return
        log.error("prediction log: the database refused %d row(s); kept in %s",
                  len(rejected), self.folder / REJECTED)
        with (self.folder / REJECTED).open("ab") as out:
            out.write(b"".join(orjson.dumps({"row": row, "reason": reason}) + b"\n"
                               for row, reason in rejected))

    def _rotate_if_large(self) -> None:
        """Start a new spool file once this one is large and entirely written."""
        with self._lock:
            if self._file.size() < ROTATE_BYTES or self.pending:
                return
            old, self._file = self._file, SpoolFile(self.folder)
        old.close()
        self._forget(old.path)

    def _finish_own(self) -> None:
        """At shutdown: a spool entirely written is removed; otherwise it stays (unlocked
        once this process ends) for the next start to replay."""
        with self._lock:
            done = self.pending == 0 and self.reason is None
        if done:
            try:
                self._forget(self._file.path)
            except Unreachable:
                return
        self._file.close()

    def _forget(self, path: Path) -> None:
        """Remove a spool file whose rows are all written, and its offset."""
        try:
            with self._engine.begin() as connection:
                connection.execute(spool_offsets.delete().where(
                    spool_offsets.c.spool == path.name))
        except (OperationalError, InterfaceError) as exc:
            raise Unreachable(_why(exc)) from exc
        path.unlink(missing_ok=True)

    def _count(self, outcome: str, rows: int) -> None:
        if rows:
            self._metrics.child(self._metrics.prediction_log, outcome).inc(rows)


def _read_lines(path: Path, offset: int) -> tuple[list[bytes], int]:
    """Up to FLUSH_ROWS complete lines from ``offset``, and the offset after them (a last
    line without its newline was never answered: it is left)."""
    with path.open("rb") as spool:
        spool.seek(offset)
        data = spool.read(FLUSH_ROWS * 1024)
    complete = data[:data.rfind(b"\n") + 1]
    lines = complete.splitlines()[:FLUSH_ROWS]
    return lines, offset + sum(len(line) + 1 for line in lines)


def _row(line: bytes) -> dict[str, Any]:
    row = orjson.loads(line)
    for name in ADDED_COLUMNS:  # a row spooled by an older version has none of them
        row.setdefault(name, None)
    for name in TIMES:
        if row.get(name) is not None:
            row[name] = datetime.fromisoformat(row[name])
    return row


def _disposed(engine: Engine | None) -> None:
    if engine is not None:
        engine.dispose()
