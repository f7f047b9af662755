"""The real server process on 127.0.0.1: started by the test, called over HTTP, stopped.

Covers the ``serve`` command, the prediction log written by a running server (and kept
through a ``kill -9`` under load), a reload under load (no request fails while the model
is swapped) and two worker processes answering.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from predictive_scoring.tracking import registry as model_registry
from tests.conftest import REPO
from tests.helpers import free_port, stop_server
from tests.serving.conftest import ADMIN, ADMIN_KEY, API_KEY, AUTH, MODEL_NAME, Trained

START_SECONDS = 90
LOAD_SECONDS = 20
"""The reload-under-load test sends requests for at most this long."""


def _environment(registry: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDICTIVE_SCORING_")}
    return env | {"MLFLOW_TRACKING_URI": registry, "MLFLOW_DISABLE_TELEMETRY": "true",
                  "PREDICTIVE_SCORING_API_KEYS": API_KEY,
                  "PREDICTIVE_SCORING_ADMIN_KEYS": ADMIN_KEY,
                  "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])} | extra


class Server:
    """A server process in its own process group, logging to a file."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path,
                 port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"server not ready after {START_SECONDS} s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM (graceful: the prediction log is flushed), SIGKILL if it lingers."""
        stop_server(self.process, 30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start servers for one test; every one is stopped at the end."""
    servers: list[Server] = []

    def run(command: list[str], env: dict[str, str], port: int) -> Server:
        server = Server(command, env, tmp_path / f"server{len(servers)}.log", port)
        servers.append(server)
        server.wait_ready()
        return server

    yield run
    for server in servers:
        server.stop()


def test_serve_command_scores_over_http_and_logs_predictions(
        start: Any, registry: str, trained: Trained, requests_json: list[dict],
        tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "predictions.db"
    server = start([sys.executable, "-m", "predictive_scoring.cli", "serve",
                    "--model", f"models:/{MODEL_NAME}@champion", "--port", str(port),
                    "--prediction-log", f"sqlite:///{database}"], _environment(registry), port)
    leads = requests_json[:30]
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        batch = client.post("/v1/score/batch", json={"leads": leads}).json()
        single = client.post("/v1/score", json=leads[0]).json()
        docs = client.get("/openapi.json").json()
    assert batch["scored"] == 30 and batch["model"]["version"] == "1"
    assert single["probability"] == batch["results"][0]["probability"]
    assert "/v1/score/batch" in docs["paths"]
    server.stop()  # uvicorn re-raises the SIGTERM it handled once shut down cleanly
    assert server.process.returncode in (0, -signal.SIGTERM), server.log()
    assert "Application shutdown complete" in server.log()

    with sa.create_engine(f"sqlite:///{database}").connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT lead_id, probability, score, rule_points, model_name, model_version, "
            "request_id FROM lead_predictions ORDER BY id")).all()
    assert len(rows) == 31
    assert [row.lead_id for row in rows[:30]] == [lead["lead_id"] for lead in leads]
    np.testing.assert_array_equal([row.probability for row in rows[:30]],
                                  [r["probability"] for r in batch["results"]])
    assert [row.rule_points for row in rows[:30]] == [r["rules"]["points"]
                                                      for r in batch["results"]]
    assert {(row.model_name, row.model_version) for row in rows} == {(MODEL_NAME, "1")}
    assert rows[30].request_id == single["request_id"]


def test_reload_under_load_fails_no_request(start: Any, registry: str,
                                            requests_json: list[dict]) -> None:
    port = free_port()
    server = start([sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app",
                    "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
                   _environment(registry, PREDICTIVE_SCORING_MODEL_URI=
                                f"models:/{MODEL_NAME}@champion"), port)
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def hammer(leads: list[dict]) -> None:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            deadline = time.monotonic() + LOAD_SECONDS
            while not stop.is_set() and time.monotonic() < deadline:
                for lead in leads:
                    answer = client.post("/v1/score", json=lead)
                    version = answer.json().get("model", {}).get("version") \
                        if answer.status_code == 200 else None
                    answers.append((answer.status_code, version))

    workers = [threading.Thread(target=hammer, args=(requests_json[i::4][:10],))
               for i in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        model_registry.set_alias(MODEL_NAME, model_registry.CHAMPION, "2")
        reload = httpx.post(f"{server.url}/v1/admin/reload", headers=ADMIN, timeout=60)
        after_reload = len(answers)
        time.sleep(1.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=LOAD_SECONDS + 30)
        model_registry.set_alias(MODEL_NAME, model_registry.CHAMPION, "1")
    assert reload.status_code == 200, reload.text
    assert reload.json()["changed"] is True
    assert reload.json()["current"] == {"name": MODEL_NAME, "version": "2"}
    statuses = {status for status, _ in answers}
    assert statuses == {200}, f"failed requests during reload: {statuses}"
    versions = [version for _, version in answers]
    assert versions[0] == "1" and "2" in versions
    assert set(versions[after_reload + 20:]) == {"2"}


def test_a_failed_reload_keeps_the_old_model(start: Any, registry: str, tmp_path: Path,
                                             requests_json: list[dict]) -> None:
    bundle = model_registry.export_bundle(MODEL_NAME, model_registry.CHAMPION,
                                          tmp_path / "champion")
    port = free_port()
    server = start([sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app",
                    "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
                   _environment(registry, PREDICTIVE_SCORING_MODEL_URI=str(bundle)), port)
    (bundle / "MLmodel").write_text("not: [a model", encoding="utf-8")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        failed = client.post("/v1/admin/reload", headers=ADMIN)
        scored = client.post("/v1/score", json=requests_json[0], headers=AUTH)
    assert failed.status_code == 502
    assert "still serving" in failed.json()["detail"]
    assert "Traceback" not in failed.text
    assert scored.status_code == 200
    assert scored.json()["model"] == {"name": MODEL_NAME, "version": "1"}


def _workers_that_answered(log: str, route: str) -> set[int]:
    lines = (json.loads(line) for line in log.splitlines() if line.startswith("{"))
    return {line["worker"] for line in lines
            if line.get("route") == route and line.get("status") == 200}


def test_serve_with_two_workers_answers_from_both_and_shares_the_metrics(
        start: Any, registry: str, tmp_path: Path, requests_json: list[dict]) -> None:
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    server = start([sys.executable, "-m", "predictive_scoring.cli", "serve", "--model",
                    f"models:/{MODEL_NAME}@champion", "--port", str(port), "--workers", "2"],
                   _environment(registry, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), port)
    answers = []
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        # new connections reach either worker, and one busy loading its model may leave
        # the other to answer many in a row: wait until each has said it is ready
        deadline = time.monotonic() + START_SECONDS
        while len(_workers_that_answered(server.log_path.read_text(), "/ready")) < 2:
            assert time.monotonic() < deadline, "both workers were not ready in time"
            client.get("/ready", headers={"Connection": "close"})
        while len(answers) < 400 and (len(answers) < 40 or len(
                _workers_that_answered(server.log_path.read_text(), "/v1/score")) < 2):
            answers += [client.post("/v1/score", json=lead, headers={"Connection": "close"})
                        for lead in requests_json[:20]]
        metrics = client.get("/metrics").text
    assert {answer.status_code for answer in answers} == {200}
    workers = _workers_that_answered(server.log_path.read_text(), "/v1/score")
    assert len(workers) == 2, f"answers came from {workers} only"
    line = next(line for line in metrics.splitlines()
                if line.startswith('scoring_leads_total{outcome="scored"}'))
    assert float(line.rsplit(" ", 1)[1]) == len(answers)
    assert len(re.findall(r"^scoring_model_info\{.*\} 1\.0$", metrics, re.MULTILINE)) == 2


def test_kill_9_under_batch_load_loses_no_answered_score(
        start: Any, registry: str, tmp_path: Path, requests_json: list[dict],
        postgres_url: str) -> None:
    spool = tmp_path / "spool"
    env = _environment(registry, PREDICTIVE_SCORING_PREDICTION_LOG_SPOOL=str(spool))

    def serve(port: int) -> Server:
        return start([sys.executable, "-m", "predictive_scoring.cli", "serve", "--model",
                      f"models:/{MODEL_NAME}@champion", "--port", str(port),
                      "--prediction-log", postgres_url], env, port)

    server = serve(free_port())
    answered: list[tuple[str, str]] = []
    stop = threading.Event()

    def hammer(offset: int) -> None:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            for i in itertools.count(offset, 40):
                if stop.is_set():
                    return
                leads = [requests_json[(i + j) % len(requests_json)] for j in range(20)]
                try:
                    answer = client.post("/v1/score/batch", json={"leads": leads})
                except httpx.TransportError:  # the server is gone
                    return
                body = answer.json()
                answered.extend((body["request_id"], result["lead_id"])
                                for result in body["results"])

    clients = [threading.Thread(target=hammer, args=(offset,)) for offset in (0, 20)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + LOAD_SECONDS
    while len(answered) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(server.process.pid, signal.SIGKILL)
    stop.set()
    for client in clients:
        client.join(timeout=60)
    answered_then = list(answered)
    in_database_then = len(_logged(postgres_url))
    assert len(answered_then) >= 200
    assert in_database_then < len(answered_then), "nothing was left to replay"

    restarted = serve(free_port())
    deadline = time.monotonic() + START_SECONDS
    while httpx.get(f"{restarted.url}/ready").json()["prediction_log"]["status"] != "writing":
        assert time.monotonic() < deadline, restarted.log()
        time.sleep(0.2)
    restarted.stop()
    logged = collections.Counter(_logged(postgres_url))
    missing = collections.Counter(answered_then) - logged
    assert not missing, f"{sum(missing.values())} answered score(s) not in the log"
    doubled = {key: n for key, n in logged.items() if n > answered_then.count(key) > 0}
    assert not doubled, f"written twice: {list(doubled)[:5]}"
    unanswered = {request_id for request_id, _ in logged} - {r for r, _ in answered_then}
    assert len(unanswered) <= len(clients)  # requests in flight at the kill, at most


def _logged(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(
                "SELECT request_id, lead_id FROM lead_predictions")).all()]
    finally:
        engine.dispose()
