"""What the service benchmarks share: a trained model exported as a bundle with held-out
request leads, servers started on 127.0.0.1 (and always stopped), and the clients that time
them (a minimal keep-alive socket client, httpx, wrk)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from predictive_scoring.config import (
    BaseConfig,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    load_config,
)
from predictive_scoring.data.dataset import EventsDataset, load_events_dataset
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.tracking import bundle, registry, store
from predictive_scoring.train import TrainingPlan, TrainingRun, bundle_example
from predictive_scoring.workflow.training import run_training

REPO = Path(__file__).resolve().parents[1]
SIMULATED = REPO / "configs/datasets/simulated.yaml"
BASE = REPO / "configs/base.yaml"
API_KEY = "benchmark-key-0123456789abcdef"
MODEL_NAME = "lead-scoring-bench"
SEED = 7
WARMUP = 200
SCORE_DAY = 30
BATCH_SIZE = 1000
START_SECONDS = 120


# ------------------------------------------------------------------ model and requests
@dataclass(frozen=True)
class Prepared:
    """The trained run, its dataset, the exported bundle and the request bodies."""

    run: TrainingRun
    dataset: EventsDataset
    bundle: Path
    store: str
    leads: list[dict[str, Any]]


def prepare(folder: Path, n_leads: int, accounts: bool = False,
            experiment: str = "bench-serve") -> Prepared:
    """Simulate, train (with the account model when ``accounts``), log, export; build the
    request bodies from held-out leads."""
    config = simulate_into(load_config(SIMULATED, DatasetConfig), n_leads, SEED,
                           folder / "data")
    dataset = load_events_dataset(config, Path("."))
    plan = TrainingPlan(config, load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig),
                        load_config(REPO / config.rules, RulesConfig),
                        load_config(BASE, BaseConfig))
    run = run_training(dataset, plan)
    if accounts:
        from predictive_scoring.accounts.training import add_accounts

        add_accounts(run, dataset, plan)
        if run.trained.scorer.accounts is None:
            raise RuntimeError(f"no account model was learnt: {run.metrics['notes']}")
    store_uri = f"sqlite:///{folder}/mlflow.db"
    os.environ[store.TRACKING_URI_ENV] = store_uri
    store.use_tracking(load_config(BASE, BaseConfig))
    with store.start_run(experiment, "train", artifact_location=(folder / "artifacts").as_uri()):
        bundle.log_bundle(run.trained.scorer, bundle_example(run, dataset.events, 3),
                          MODEL_NAME)
    registry.set_alias(MODEL_NAME, registry.CHAMPION, "1")
    exported = registry.export_bundle(MODEL_NAME, registry.CHAMPION, folder / "champion")
    return Prepared(run, dataset, exported, store_uri, request_leads(run, dataset, config))


def request_leads(run: TrainingRun, dataset: EventsDataset,
                  config: DatasetConfig) -> list[dict[str, Any]]:
    """Held-out leads scored 30 days after creation, with their events before then."""
    test = run.examples.frame.iloc[run.trained.rows["test"]]
    test = test.loc[test["as_of"] == test["created_at"] + pd.Timedelta(days=SCORE_DAY)]
    attributes = [*config.attributes.categorical, *config.attributes.numeric]
    events = dataset.events.loc[dataset.events["lead_id"].isin(test["lead_id"])]
    by_lead = dict(tuple(events.groupby("lead_id", sort=False)))
    leads = []
    for row in test.itertuples(index=False):
        own = by_lead.get(row.lead_id)
        own = own.loc[own["timestamp"] < row.as_of] if own is not None else None
        leads.append({
            "lead_id": row.lead_id, "created_at": row.created_at.isoformat(),
            "as_of": row.as_of.isoformat(),
            "attributes": {a: (None if pd.isna(getattr(row, a)) else getattr(row, a))
                           for a in attributes},
            "events": [] if own is None else [
                {"timestamp": t.isoformat(), "event_type": e,
                 "detail": None if pd.isna(d) else d}
                for t, e, d in zip(own["timestamp"], own["event_type"], own["detail"],
                                   strict=True)]})
    return leads



# ------------------------------------------------------------------ servers and clients
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def server(factory: str, env: dict[str, str], log_path: Path, ready_path: str
           ) -> Iterator[int]:
    """A one-worker uvicorn server on 127.0.0.1; stopped (its process group) on exit."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--no-access-log", "--loop", "uvloop",
               "--http", "httptools", "--log-level", "warning"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}{ready_path}", log_path)
        yield port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def _wait_ready(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server not ready after {START_SECONDS} s")


def http_post(path: str, body: bytes) -> bytes:
    """A complete keep-alive HTTP/1.1 POST, encoded once."""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection that sends pre-encoded requests and reads whole answers."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def call(self, request: bytes) -> bytes:
        """Send; return the body (fails unless the status is 200)."""
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.pending:
            self.pending += self._recv()
        head, _, rest = self.pending.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(rest) < length:
            rest += self._recv()
        body, self.pending = rest[:length], rest[length:]
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
        return body

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def interleaved_ms(callers: dict[str, Callable[[int], object]], n: int, rounds: int
                   ) -> dict[str, np.ndarray]:
    """Milliseconds of n sequential requests per series after a warm-up each.

    The series take turns in ``rounds`` blocks of ``n / rounds`` requests, so a passing
    disturbance of the shared machine falls on every series alike instead of on whichever
    ran at that moment; each series' p99 is then over all of its requests.

    Args:
        callers: Series name -> a call sending its i-th request (raises unless a 200).
        n: Requests per series.
        rounds: Blocks per series.
    """
    for call in callers.values():
        for i in range(WARMUP):
            call(i)
    out = {name: np.empty(n) for name in callers}
    bounds = np.linspace(0, n, rounds + 1).astype(int)
    for start, stop in itertools.pairwise(bounds):
        for name, call in callers.items():
            for i in range(start, stop):
                begin = time.perf_counter()
                call(i)
                out[name][i] = time.perf_counter() - begin
    return {name: values * 1000 for name, values in out.items()}


def socket_caller(connection: Connection, requests: list[bytes]) -> Callable[[int], object]:
    """Sends the i-th pre-encoded request (cycling) on a minimal keep-alive connection."""
    return lambda i: connection.call(requests[i % len(requests)])


def httpx_caller(client: httpx.Client, path: str, bodies: list[bytes]
                 ) -> Callable[[int], object]:
    """Posts the i-th body (cycling) through httpx: how a Python CRM integration calls the
    API (the issue's anchors were measured this way)."""
    return lambda i: client.post(path, content=bodies[i % len(bodies)]).raise_for_status()


def batch_leads_per_second(port: int, requests: list[bytes], n: int) -> tuple[float, float]:
    """Median leads/s and median ms per batch request of BATCH_SIZE leads."""
    connection = Connection(port)
    try:
        connection.call(requests[0])
        seconds = []
        for i in range(n):
            start = time.perf_counter()
            body = connection.call(requests[i % len(requests)])
            seconds.append(time.perf_counter() - start)
            if json.loads(body)["scored"] != BATCH_SIZE:
                raise RuntimeError("a benchmark batch had leads that were not scored")
    finally:
        connection.close()
    median = statistics.median(seconds)
    return BATCH_SIZE / median, median * 1000


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


WRK_SCRIPT = """
local bodies = {}
local i = 0
for line in io.lines("%s") do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "%s", nil, bodies[i])
end
"""


def wrk_run(binary: str, port: int, path: str, bodies: list[bytes], seconds: int,
            folder: Path) -> dict[str, float]:
    """16 connections, one wrk thread, for ``seconds``: requests/s and latency."""
    lines = folder / f"bodies{abs(hash(path))}.jsonl"
    lines.write_bytes(b"\n".join(bodies) + b"\n")
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT % (lines, API_KEY, path), encoding="utf-8")
    result = subprocess.run([binary, "-t1", "-c16", f"-d{seconds}s", "--latency", "-s",
                             str(script), f"http://127.0.0.1:{port}{path}"],
                            check=True, capture_output=True, text=True,
                            timeout=seconds + 60)
    text = result.stdout
    if "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"wrk saw failed requests:\n{text}")
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "p50": _wrk_ms(text, "50%"), "p99": _wrk_ms(text, "99%")}


def _wrk_ms(text: str, quantile: str) -> float:
    value, unit = re.search(rf"{quantile}\s+([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]




def service_env(prepared: Prepared) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDICTIVE_SCORING_")}
    return env | {"PREDICTIVE_SCORING_MODEL_URI": str(prepared.bundle),
                  "PREDICTIVE_SCORING_API_KEYS": API_KEY,
                  "PREDICTIVE_SCORING_BASE_CONFIG": str(BASE),
                  "PREDICTIVE_SCORING_MAX_BATCH_LEADS": str(BATCH_SIZE),
                  "MLFLOW_TRACKING_URI": prepared.store, "MLFLOW_DISABLE_TELEMETRY": "true",
                  "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}

