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
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import httpx
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from benchmarks._results import cpu_times, machine_info, steal_share, update_section
from benchmarks._serving import (
    API_KEY,
    BATCH_SIZE,
    SCORE_DAY,
    SEED,
    WARMUP,
    Connection,
    Prepared,
    batch_leads_per_second,
    ensure_wrk,
    http_post,
    httpx_caller,
    interleaved_ms,
    prepare,
    server,
    service_env,
    socket_caller,
    wrk_run,
)
from predictive_scoring.online import OnlineScorer, RawLead
from serving.requests import decode_lead
from serving.scoring import raw_lead as request_raw_lead

FIGURE = Path(__file__).with_name("serve_latency.png")
PG = ("127.0.0.1", 5432, "test", ("postgres", "root"))
"""The PostgreSQL server the prediction log series writes to (a database of its own)."""


# ------------------------------------------------------------------ model and requests
def raw_lead(lead: dict[str, Any]) -> RawLead:
    """A request lead as the online scorer takes it: the API's own decoding."""
    return request_raw_lead(decode_lead(json.dumps(lead).encode()).lead, datetime.now(UTC),
                            10_000)


def raw_model_timings(prepared: Prepared, n: int) -> dict[str, np.ndarray]:
    """Milliseconds per call in-process: booster alone, the whole fast path, and the
    one-row DataFrame path (LeadScorer.score), one lead at a time."""
    scorer = prepared.run.trained.scorer
    online = OnlineScorer(scorer)
    booster_rows = online.predictor  # the LightGBM kind's row predictor
    raws = [raw_lead(lead) for lead in prepared.leads]
    matrix = online.score(raws[:n]).matrix
    timings: dict[str, list[float]] = {"booster": [], "single row": [], "fast path": [],
                                       "one-row DataFrame": []}
    for i in range(n):
        row = matrix[i % len(matrix)][None, :]
        start = time.perf_counter()
        booster_rows.booster.predict(row, num_threads=1)
        timings["booster"].append(time.perf_counter() - start)
        start = time.perf_counter()
        booster_rows.single_row.predict(row)
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
@contextmanager
def log_database(folder: Path) -> Iterator[tuple[str, str]]:
    """A new PostgreSQL database for the prediction log (dropped after), or a SQLite file
    where no PostgreSQL server is usable. Yields its URL and the kind."""
    import psycopg

    host, port, admin_db, users = PG
    for user in users:
        try:
            admin = psycopg.connect(host=host, port=port, user=user, dbname=admin_db,
                                    autocommit=True, connect_timeout=3)
        except psycopg.OperationalError:
            continue
        name = f"bench_predictions_{uuid.uuid4().hex[:10]}"
        with admin:
            admin.execute(f"CREATE DATABASE {name}")
            try:
                yield f"postgresql+psycopg://{user}@{host}:{port}/{name}", "PostgreSQL"
            finally:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    yield f"sqlite:///{folder}/predictions.db", "SQLite"


def measure(prepared: Prepared, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every phase; returns the figures."""
    bodies = [json.dumps(lead).encode() for lead in prepared.leads]
    batches = [json.dumps({"leads": [prepared.leads[(b * BATCH_SIZE + i) % len(bodies)]
                                     for i in range(BATCH_SIZE)]}).encode()
               for b in range(3)]
    results: dict[str, Any] = {"raw": raw_model_timings(prepared, args.requests)}
    wrk = ensure_wrk()
    env = service_env(prepared)
    with ExitStack() as stack:
        log_url, results["log_database"] = stack.enter_context(log_database(folder))
        noop_port = stack.enter_context(server("benchmarks._noop:noop_app", env,
                                               folder / "noop.log", "/docs"))
        port = stack.enter_context(server("serving.app:create_app", env,
                                          folder / "service.log", "/ready"))
        logged_port = stack.enter_context(server(
            "serving.app:create_app", env | {
                "PREDICTIVE_SCORING_PREDICTION_LOG": "true",
                "PREDICTIVE_SCORING_PREDICTION_LOG_URL": log_url,
                "PREDICTIVE_SCORING_PREDICTION_LOG_SPOOL": str(folder / "spool")},
            folder / "logged.log", "/ready"))

        def connect(to_port: int) -> Connection:
            return stack.enter_context(closing(Connection(to_port)))

        results |= interleaved_ms({
            "noop": socket_caller(connect(noop_port),
                                  [http_post("/noop", body) for body in bodies]),
            **{f"score_{reasons}": socket_caller(
                connect(port), [http_post(f"/v1/score?reasons={reasons}", body)
                                for body in bodies])
               for reasons in ("false", "true")},
            "score_log": socket_caller(connect(logged_port), [
                http_post("/v1/score?reasons=false", body) for body in bodies]),
        }, args.requests, args.rounds)
        answer = json.loads(connect(port).call(http_post("/v1/score?reasons=true",
                                                          bodies[0])))
        if not answer["reasons"]:
            raise RuntimeError("the with-reasons requests got no reasons")
        headers = {"Content-Type": "application/json", "X-API-Key": API_KEY}
        results |= interleaved_ms({
            f"{name}_httpx": httpx_caller(
                stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{p}",
                                                 headers=headers)), path, bodies)
            for name, p, path in (("noop", noop_port, "/noop"),
                                  ("score_false", port, "/v1/score?reasons=false"),
                                  ("score_true", port, "/v1/score?reasons=true"),
                                  ("score_log", logged_port, "/v1/score?reasons=false"))
        }, args.requests, args.rounds)
        results["logged_rows"] = logged_rows(logged_port, log_url)
        for reasons in ("false", "true"):
            results[f"batch_{reasons}"] = batch_leads_per_second(
                port, [http_post(f"/v1/score/batch?reasons={reasons}", b) for b in batches],
                args.batches)
        results["noop_wrk"] = wrk_run(wrk, noop_port, "/noop", bodies, args.wrk_seconds,
                                      folder)
        results["score_wrk"] = wrk_run(wrk, port, "/v1/score?reasons=false", bodies,
                                       args.wrk_seconds, folder)
    return results


def logged_rows(port: int, url: str) -> int:
    """Rows in the prediction log once the service says it has written them all."""
    import sqlalchemy as sa

    deadline = time.monotonic() + 120
    while httpx.get(f"http://127.0.0.1:{port}/ready").json()["prediction_log"][
            "pending_rows"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the prediction log did not catch up in 120 s")
        time.sleep(0.2)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM lead_predictions")
                                      ).scalar_one()
    finally:
        engine.dispose()


def latency_figure(results: dict[str, Any]) -> None:
    """Latency distributions (CDF): one colour per endpoint, one line style per client."""
    figure, axis = plt.subplots(figsize=(9, 4))
    colours = {"noop": "tab:blue", "score_false": "tab:orange", "score_true": "tab:green",
               "score_log": "tab:purple"}
    names = {"noop": "no-op endpoint", "score_false": "score, no reasons",
             "score_log": "score, no reasons, prediction log on",
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
                          ("POST /v1/score (with reasons)", "score_true"),
                          (f"POST /v1/score (no reasons), prediction log on "
                           f"({results['log_database']})", "score_log")):
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
        *[(f"reported: p99 cost of the prediction log ({results['log_database']}, spool "
           f"before answering), {client} client",
           f"{p99[f'score_log{suffix}'] - p99[f'score_false{suffix}']:+.3f} ms "
           f"({p99[f'score_log{suffix}'] / p99[f'score_false{suffix}'] - 1:+.1%})",
           "reported") for client, suffix in (("minimal", ""), ("httpx", "_httpx"))],
        (f"every answered score in the prediction log ({results['log_database']})",
         f"{results['logged_rows']:,} rows of {logged_expected(args):,} answered",
         _verdict(results["logged_rows"] == logged_expected(args))),
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

The servers run side by side, and each client's series take turns in {args.rounds} blocks of
{args.requests // args.rounds} requests (the no-op endpoint, then the service without and with
reasons, then a second service writing the prediction log to {results["log_database"]}), so a
passing disturbance of the shared machine falls on every series alike. Two
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


def logged_expected(args: argparse.Namespace) -> int:
    """Scores the logging service answered: each client's warm-up and series."""
    return 2 * (WARMUP + args.requests)


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
