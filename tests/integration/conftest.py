"""MLflow stores for the tracking tests: a SQLite file, and a real ``mlflow server`` on a
fresh PostgreSQL database (skipped where PostgreSQL is not reachable).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from predictive_scoring.config import BaseConfig, load_config
from predictive_scoring.tracking import store
from tests.conftest import REPO
from tests.helpers import free_port, stop_server

PG_HOST, PG_PORT, PG_ADMIN_DB = "127.0.0.1", 5432, "test"
PG_USERS = ("postgres", "root")
SERVER_START_SECONDS = 90
QUIET_MLFLOW = {"MLFLOW_DISABLE_TELEMETRY": "true",
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""MLflow settings for the tests' stores and servers: no telemetry, and no job runner (an
``mlflow server`` on a database store otherwise starts three job-consumer processes,
which the tests never use, on a 2-core machine running the suite)."""


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh SQLite tracking store, shared by the module's tests."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture(scope="module")
def server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a new PostgreSQL database, both removed at the end."""
    # SQLAlchemy 2.1 reaches postgresql:// through psycopg 3, as MLflow's server does here.
    psycopg = pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg[binary]")
    user = _admin_user(psycopg)
    database = f"mlflow_test_{uuid.uuid4().hex[:12]}"
    _run_sql(psycopg, user, f"CREATE DATABASE {database}")
    folder = tmp_path_factory.mktemp("mlflow_server")
    log_path = folder / "server.log"
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server",
               "--backend-store-uri", f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{database}",
               "--artifacts-destination", (folder / "artifacts").as_uri(),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | QUIET_MLFLOW
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  cwd=folder, start_new_session=True)
    try:
        _wait_healthy(server, f"http://127.0.0.1:{port}/health", log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(server, 15)
        _run_sql(psycopg, user, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _admin_user(psycopg: ModuleType) -> str:
    """The first of PG_USERS that can connect and create databases, else skip."""
    reasons = []
    for user in PG_USERS:
        try:
            with _connect(psycopg, user) as connection:
                allowed = connection.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles "
                                             "WHERE rolname = current_user").fetchone()[0]
        except psycopg.OperationalError as exc:
            reasons.append(f"{user}: {str(exc).strip().splitlines()[0]}")
            continue
        if allowed:
            return user
        reasons.append(f"{user}: may not create databases")
    pytest.skip(f"PostgreSQL at {PG_HOST}:{PG_PORT} unusable ({'; '.join(reasons)})")


def _connect(psycopg: ModuleType, user: str) -> Any:
    # autocommit: CREATE / DROP DATABASE refuse to run inside a transaction.
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, dbname=PG_ADMIN_DB,
                           connect_timeout=3, autocommit=True)


def _run_sql(psycopg: ModuleType, user: str, statement: str) -> None:
    with _connect(psycopg, user) as connection:
        connection.execute(statement)


def _wait_healthy(server: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n"
                        f"{log_path.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"mlflow server not healthy after {SERVER_START_SECONDS} s:\n"
                f"{log_path.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def use_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Point MLflow at a store URI for one test; MLflow's global state is reset after."""
    import mlflow

    for name, value in QUIET_MLFLOW.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    base = load_config(REPO / "configs" / "base.yaml", BaseConfig)

    def use(uri: str) -> str:
        monkeypatch.setenv(store.TRACKING_URI_ENV, uri)
        return store.use_tracking(base)

    yield use
    while mlflow.active_run() is not None:
        mlflow.end_run("FAILED")
    mlflow.set_tracking_uri(None)
