"""The scoring service over loopback HTTP: single-lead latency, concurrent throughput and
batch throughput, next to a bare no-op FastAPI endpoint and the raw model, in one run.

Usage: ``python -m benchmarks.bench_serve [--leads 20000] [--requests 2000] [--rounds 10]
[--wrk-seconds 10] [--batches 10]``. A LightGBM scorer is trained on simulated leads (the
default config), logged to a temporary SQLite MLflow store and exported to a folder the
server loads. The requests are held-out simulated leads scored 30 days after creation, with
their events before that moment, as a CRM would send them. Servers run as
``uvicorn --factory`` processes with one worker, no access log, uvloop and httptools; the
service keeps its own structured log line per request (to a file). Sequential requests go
through a minimal keep-alive socket client (pre-encoded requests, so the client adds next to
nothing), the no-op and service series taking turns in blocks; concurrency is Debian's
``wrk`` (installed with apt-get when missing). Every answer is checked to be a 200. Each
phase is bounded in requests or seconds.

Targets (issue 5), on this 2-core machine with client and server sharing it:
- single lead, 2000 sequential requests: p99 < 3 ms without reasons, < 5 ms with reasons,
  and at most 3x the no-op endpoint's p99 (judged with httpx, the kind of client of the
  issue's anchors; the minimal client's ratios are reported);
- 16 concurrent connections, one worker: at least 1,500 leads/s;
- batches of 1000 leads: at least 20,000 leads/s without reasons; reported with reasons.
"""

from __future__ import annotations

import argparse
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
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import httpx
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from fastapi import FastAPI

from benchmarks._results import cpu_times, machine_info, steal_share, update_section
from predictive_scoring.config import (
    BaseConfig,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    load_config,
)
from predictive_scoring.data.dataset import EventsDataset, load_events_dataset
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.online import OnlineScorer, RawLead
from predictive_scoring.tracking import bundle, registry, store
from predictive_scoring.train import TrainingRun, bundle_example, run_training
from serving.requests import decode_lead
from serving.scoring import raw_lead as request_raw_lead

REPO = Path(__file__).resolve().parents[1]
SIMULATED = REPO / "configs/datasets/simulated.yaml"
BASE = REPO / "configs/base.yaml"
FIGURE = Path(__file__).with_name("serve_latency.png")
API_KEY = "benchmark-key-0123456789abcdef"
MODEL_NAME = "lead-scoring-bench"
SEED = 7
WARMUP = 200
SCORE_DAY = 30
BATCH_SIZE = 1000
START_SECONDS = 120


# ------------------------------------------------------------------ the no-op baseline
def noop_app() -> FastAPI:
    """A bare FastAPI app whose POST endpoint does nothing: the framework's own cost."""
    app = FastAPI()

    @app.post("/noop")
    async def noop() -> dict[str, bool]:
        return {"ok": True}

    return app


# ------------------------------------------------------------------ model and requests
@dataclass(frozen=True)
class Prepared:
    """The trained run, its dataset, the exported bundle and the request bodies."""

    run: TrainingRun
    dataset: EventsDataset
    bundle: Path
    store: str
    leads: list[dict[str, Any]]


def prepare(folder: Path, n_leads: int) -> Prepared:
    """Simulate, train, log, export; build the request bodies from held-out leads."""
    config = simulate_into(load_config(SIMULATED, DatasetConfig), n_leads, SEED,
                           folder / "data")
    dataset = load_events_dataset(config, Path("."))
    run = run_training(dataset, config, load_config(REPO / "configs/models/lightgbm.yaml",
                                                    ModelConfig),
                       load_config(REPO / config.rules, RulesConfig),
                       load_config(BASE, BaseConfig), strict=False)
    store_uri = f"sqlite:///{folder}/mlflow.db"
    os.environ[store.TRACKING_URI_ENV] = store_uri
    store.use_tracking(load_config(BASE, BaseConfig))
    with store.start_run("bench-serve", "train",
                            artifact_location=(folder / "artifacts").as_uri()):
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


def raw_lead(lead: dict[str, Any]) -> RawLead:
    """A request lead as the online scorer takes it: the API's own decoding."""
    return request_raw_lead(decode_lead(json.dumps(lead).encode()).lead, datetime.now(UTC),
                            10_000)


def raw_model_timings(prepared: Prepared, n: int) -> dict[str, np.ndarray]:
    """Milliseconds per call in-process: booster alone, the whole fast path, and the
    one-row DataFrame path (LeadScorer.score), one lead at a time."""
    scorer = prepared.run.trained.scorer
    online = OnlineScorer(scorer)
    raws = [raw_lead(lead) for lead in prepared.leads]
    matrix = online.score(raws[:n]).matrix
    timings: dict[str, list[float]] = {"booster": [], "single row": [], "fast path": [],
                                       "one-row DataFrame": []}
    for i in range(n):
        row = matrix[i % len(matrix)][None, :]
        start = time.perf_counter()
        online.booster.predict(row, num_threads=1)
        timings["booster"].append(time.perf_counter() - start)
        start = time.perf_counter()
        online._one_row.predict(row)
        timings["single row"].append(time.perf_counter() - start)
        start = time.perf_counter()
        online.score([raws[i % len(raws)]])
        timings["fast path"].append(time.perf_counter() - start)
    for i in range(min(n, 200)):
        leads, events = _frames(raws[i % len(raws)])
        start = time.perf_counter()
        scorer.score(leads, events)
        timings["one-row DataFrame"].append(time.perf_counter() - start)
    return {name: np.array(values) * 1000 for name, values in timings.items()}


def _frames(lead: RawLead) -> tuple[pd.DataFrame, pd.DataFrame]:
    leads = pd.DataFrame([{"lead_id": lead.lead_id, **lead.attributes}]).assign(
        created_at=pd.to_datetime([lead.created_at], utc=True),
        as_of=pd.to_datetime([lead.as_of], utc=True))
    events = pd.DataFrame({"lead_id": lead.lead_id,
                           "timestamp": pd.to_datetime(list(lead.event_times), utc=True),
                           "event_type": list(lead.event_types),
                           "detail": list(lead.event_details)})
    return leads, events


# ------------------------------------------------------------------ servers and clients
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def server(factory: str, env: dict[str, str], log_path: Path, ready_path: str
           ) -> Iterator[int]:
    """A one-worker uvicorn server on 127.0.0.1; stopped (its process group) on exit."""
    port = _free_port()
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


# ------------------------------------------------------------------ the run
def service_env(prepared: Prepared) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDICTIVE_SCORING_")}
    return env | {"PREDICTIVE_SCORING_MODEL_URI": str(prepared.bundle),
                  "PREDICTIVE_SCORING_API_KEYS": API_KEY,
                  "PREDICTIVE_SCORING_BASE_CONFIG": str(BASE),
                  "PREDICTIVE_SCORING_MAX_BATCH_LEADS": str(BATCH_SIZE),
                  "MLFLOW_TRACKING_URI": prepared.store, "MLFLOW_DISABLE_TELEMETRY": "true",
                  "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}


def measure(prepared: Prepared, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every phase; returns the figures."""
    bodies = [json.dumps(lead).encode() for lead in prepared.leads]
    batches = [json.dumps({"leads": [prepared.leads[(b * BATCH_SIZE + i) % len(bodies)]
                                     for i in range(BATCH_SIZE)]}).encode()
               for b in range(3)]
    results: dict[str, Any] = {"raw": raw_model_timings(prepared, args.requests)}
    wrk = ensure_wrk()
    env = service_env(prepared)
    noop_server = server("benchmarks.bench_serve:noop_app", env, folder / "noop.log", "/docs")
    service = server("serving.app:create_app", env, folder / "service.log", "/ready")
    with noop_server as noop_port, service as port, ExitStack() as clients:
        def connect(to_port: int) -> Connection:
            return clients.enter_context(closing(Connection(to_port)))

        results |= interleaved_ms({
            "noop": socket_caller(connect(noop_port),
                                  [http_post("/noop", body) for body in bodies]),
            **{f"score_{reasons}": socket_caller(
                connect(port), [http_post(f"/v1/score?reasons={reasons}", body)
                                for body in bodies])
               for reasons in ("false", "true")},
        }, args.requests, args.rounds)
        answer = json.loads(connect(port).call(http_post("/v1/score?reasons=true",
                                                          bodies[0])))
        if not answer["reasons"]:
            raise RuntimeError("the with-reasons requests got no reasons")
        headers = {"Content-Type": "application/json", "X-API-Key": API_KEY}
        results |= interleaved_ms({
            f"{name}_httpx": httpx_caller(
                clients.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{p}",
                                                   headers=headers)), path, bodies)
            for name, p, path in (("noop", noop_port, "/noop"),
                                  ("score_false", port, "/v1/score?reasons=false"),
                                  ("score_true", port, "/v1/score?reasons=true"))
        }, args.requests, args.rounds)
        for reasons in ("false", "true"):
            results[f"batch_{reasons}"] = batch_leads_per_second(
                port, [http_post(f"/v1/score/batch?reasons={reasons}", b) for b in batches],
                args.batches)
        results["noop_wrk"] = wrk_run(wrk, noop_port, "/noop", bodies, args.wrk_seconds,
                                      folder)
        results["score_wrk"] = wrk_run(wrk, port, "/v1/score?reasons=false", bodies,
                                       args.wrk_seconds, folder)
    return results


def latency_figure(results: dict[str, Any]) -> None:
    """Latency distributions (CDF): one colour per endpoint, one line style per client."""
    figure, axis = plt.subplots(figsize=(9, 4))
    colours = {"noop": "tab:blue", "score_false": "tab:orange", "score_true": "tab:green"}
    names = {"noop": "no-op endpoint", "score_false": "score, no reasons",
             "score_true": "score, with reasons"}
    for suffix, client, style in (("", "minimal client", "-"), ("_httpx", "httpx", ":")):
        for key, name in names.items():
            _cdf(axis, results[f"{key}{suffix}"], f"{name}, {client}", colours[key], style)
    _cdf(axis, results["raw"]["fast path"], "scoring in-process (fast path)", "tab:red", "--")
    axis.axvline(3.0, color="grey", linestyle="--", linewidth=1, label="3 ms target")
    axis.set_xscale("log")
    axis.set_xlabel("milliseconds per request (log scale)")
    axis.set_ylabel("share of requests")
    axis.set_title("One lead per request, sequential requests over loopback")
    axis.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    figure.tight_layout()
    figure.savefig(FIGURE, dpi=110)
    plt.close(figure)


def _cdf(axis: plt.Axes, values: np.ndarray, label: str, colour: str, style: str) -> None:
    ordered = np.sort(values)
    axis.plot(ordered, np.arange(1, len(ordered) + 1) / len(ordered), label=label,
              color=colour, linestyle=style)


def _q(values: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(np.percentile(values, q)) for q in (50, 90, 99))


def report(results: dict[str, Any], prepared: Prepared, args: argparse.Namespace,
           load: tuple[float, float]) -> str:
    """The RESULTS.md section."""
    scorer = prepared.run.trained.scorer
    events = [len(lead["events"]) for lead in prepared.leads]
    table = ["| what | client | p50 (ms) | p90 (ms) | p99 (ms) | p99 / the client's no-op p99 |",
             "|---|---|---:|---:|---:|---:|"]
    for client, suffix in (("minimal socket", ""), ("httpx", "_httpx")):
        noop_p99 = _q(results[f"noop{suffix}"])[2]
        for name, key in (("no-op FastAPI endpoint", "noop"),
                          ("POST /v1/score (no reasons)", "score_false"),
                          ("POST /v1/score (with reasons)", "score_true")):
            p50, p90, p99 = _q(results[f"{key}{suffix}"])
            ratio = f"{p99 / noop_p99:.2f}x" if key != "noop" else ""
            table.append(f"| {name} | {client} | {p50:.3f} | {p90:.3f} | {p99:.3f} | {ratio} |")
    for name, values in (
            ("fast path (features, booster, calibration, rules)", results["raw"]["fast path"]),
            ("LightGBM single-row fast path (what the service calls)",
             results["raw"]["single row"]),
            ("Booster.predict, one row", results["raw"]["booster"]),
            ("one-row DataFrame (LeadScorer.score)", results["raw"]["one-row DataFrame"])):
        p50, p90, p99 = _q(values)
        table.append(f"| {name} | in-process | {p50:.3f} | {p90:.3f} | {p99:.3f} | |")
    wrk_noop, wrk_score = results["noop_wrk"], results["score_wrk"]
    batch_f, batch_t = results["batch_false"], results["batch_true"]
    wrk_label = f"wrk 16 connections, one worker, {args.wrk_seconds} s"
    batch_label = f"{BATCH_SIZE} leads per request (median of {args.batches})"
    throughput = _rows([
        (f"no-op endpoint, {wrk_label}", f"{wrk_noop['rps']:,.0f} req/s "
         f"(p50 {wrk_noop['p50']:.2f} ms, p99 {wrk_noop['p99']:.2f} ms)"),
        (f"POST /v1/score, {wrk_label}", f"{wrk_score['rps']:,.0f} leads/s "
         f"(p50 {wrk_score['p50']:.2f} ms, p99 {wrk_score['p99']:.2f} ms)"),
        (f"POST /v1/score/batch, no reasons, {batch_label}",
         f"{batch_f[0]:,.0f} leads/s ({batch_f[1]:.0f} ms per batch)"),
        (f"POST /v1/score/batch, with reasons, {batch_label}",
         f"{batch_t[0]:,.0f} leads/s ({batch_t[1]:.0f} ms per batch)"),
    ])
    p99 = {key: _q(values)[2] for key, values in results.items()
           if isinstance(values, np.ndarray)}  # the sequential series

    def slowest(key: str) -> float:  # the higher p99 of the two clients
        return max(p99[key], p99[f"{key}_httpx"])

    def ratio(key: str, suffix: str) -> float:
        return p99[f"{key}{suffix}"] / p99[f"noop{suffix}"]

    targets = _rows([
        ("single lead p99 < 3 ms without reasons (either client)",
         f"{slowest('score_false'):.2f} ms", _verdict(slowest("score_false") < 3)),
        ("single lead p99 < 5 ms with reasons (either client)",
         f"{slowest('score_true'):.2f} ms", _verdict(slowest("score_true") < 5)),
        (f"single lead p99 <= 3x the no-op p99 without reasons, httpx client (no-op "
         f"{p99['noop_httpx']:.2f} ms)", f"{ratio('score_false', '_httpx'):.2f}x",
         _verdict(ratio("score_false", "_httpx") <= 3)),
        ("single lead p99 <= 3x the no-op p99 with reasons, httpx client",
         f"{ratio('score_true', '_httpx'):.2f}x", _verdict(ratio("score_true", "_httpx") <= 3)),
        ("16 connections, one worker: >= 1,500 leads/s", f"{wrk_score['rps']:,.0f}",
         _verdict(wrk_score["rps"] >= 1500)),
        ("batches of 1000: >= 20,000 leads/s without reasons", f"{batch_f[0]:,.0f}",
         _verdict(batch_f[0] >= 20000)),
        (f"reported: p99 / no-op p99 without reasons, minimal client (no-op "
         f"{p99['noop']:.2f} ms)", f"{ratio('score_false', ''):.2f}x", "reported"),
        ("reported: p99 / no-op p99 with reasons, minimal client",
         f"{ratio('score_true', ''):.2f}x", "reported"),
    ])
    return f"""
## Scoring service (`python -m benchmarks.bench_serve`)

{machine_info()}; load average {load[0]:.1f} before and {load[1]:.1f} after the run (other
work shares the 2 cores); the hypervisor took {results["steal"]:.1%} of the CPU time during the
measurements (steal: time other guests of the host had while this machine wanted it).

LightGBM scorer: {len(scorer.columns.all)} features, {scorer.pipeline[-1].booster_.num_trees()}
trees, trained on {args.leads:,} simulated leads (seed {SEED}). Requests: {len(events):,}
held-out leads scored {SCORE_DAY} days after creation, {np.mean(events):.1f} events per lead
on average (median {np.median(events):.0f}, max {max(events)}). One uvicorn worker (uvloop,
httptools, no access log; the service's own JSON log line per request on). Client and
server share the machine over loopback.

### One lead per request, {args.requests:,} sequential requests on one keep-alive connection

Both servers run side by side, and each client's series take turns in {args.rounds} blocks of
{args.requests // args.rounds} requests (the no-op endpoint, then the service without and with
reasons), so a passing disturbance of the shared machine falls on every series alike. Two
clients, each with its own no-op floor:

- a minimal socket client that sends pre-encoded requests: it adds next to nothing, so its
  floor is the framework alone (no-op p99 {p99["noop"]:.2f} ms here);
- httpx, as a Python CRM integration calls the API. The issue's anchors (no-op p50 0.84 ms /
  p99 1.5 ms on this machine) are of this kind.

The issue's targets only agree with the second floor. Three times the anchors' no-op p99 is
4.5 ms, in line with its 3 ms and 5 ms bounds. Three times the minimal client's floor is
{3 * p99["noop"]:.2f} ms for everything a request does, while the reasons alone (TreeSHAP over
the model's trees) add {_q(results["score_true"])[0] - _q(results["score_false"])[0]:.2f} ms at
the median; and that floor's p99 moves by 2x between runs (a few slow requests at the start of
each block decide it). So the 3x targets are judged with the httpx client, and the minimal
client's ratios are reported beside them. The absolute p99 bounds are judged on the slower of
the two clients.

{chr(10).join(table)}

![latency]({FIGURE.name})

### Throughput

| what | result |
|---|---:|
{throughput}

### Targets

| target | measured | |
|---|---:|---|
{targets}
"""


def _rows(cells: list[tuple[str, ...]]) -> str:
    return "\n".join("| " + " | ".join(row) + " |" for row in cells)


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000, help="simulated leads to train on")
    parser.add_argument("--requests", type=int, default=2000,
                        help="sequential requests per series")
    parser.add_argument("--rounds", type=int, default=10,
                        help="blocks the sequential series take turns in")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="wrk run length")
    parser.add_argument("--batches", type=int, default=10, help="batch requests timed")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp:
        folder = Path(tmp)
        print(f"training on {args.leads:,} simulated leads...", flush=True)
        prepared = prepare(folder, args.leads)
        print(f"{len(prepared.leads):,} request leads; measuring...", flush=True)
        ticks = cpu_times()
        results = measure(prepared, folder, args)
        results["steal"] = steal_share(ticks, cpu_times())
        latency_figure(results)
        section = report(results, prepared, args, (load_before, os.getloadavg()[0]))
    print(section)
    update_section("bench_serve", section)


if __name__ == "__main__":
    main()
