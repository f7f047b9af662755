"""Start-up: ``predictive-scoring --help`` and ``serve --workers 2`` until both workers
are ready, each as a ratio to a floor measured in the same run.

Usage: ``python -m benchmarks.bench_startup [--leads 20000] [--runs 5]``. The command
line's floor is ``python -c "import typer, rich"`` (what any Typer and Rich program
imports); the service's is ``uvicorn --workers 2`` serving a bare FastAPI app. A LightGBM
bundle is trained on simulated leads (the default config) and exported to a folder, which
``serve`` loads. Each worker logs how long it took to read the bundle (``read``), to
prepare it (fast path, explanations, smoke test: ``prepare``) and to settle the heap
(``settle``), after importing the model's libraries (``imports``); its time to ready after
the model is read is prepare + settle.

Targets (issue 19): ``--help`` <= 0.5 s; a worker ready <= 2 s after its model is read;
``serve --workers 2`` becomes ready (the supervisor's 5 s health check never kills a
worker still starting).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks._results import machine_info, update_section
from benchmarks._serving import REPO, Prepared, free_port, prepare, service_env

READY_IN_A_ROW = 20
"""Answers in a row on new connections before both workers count as ready."""
START_SECONDS = 120


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds one run of a command takes (it must succeed)."""
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=REPO)
    return time.perf_counter() - started


def medians(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median seconds of each command, the commands taking turns run by run."""
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # one untimed run each: warm file caches
        timed(command)
    for _ in range(runs):
        for name, command in commands.items():
            seconds[name].append(timed(command))
    return {name: statistics.median(values) for name, values in seconds.items()}


def until_ready(command: list[str], env: dict[str, str], url: str, log_path: Path
                ) -> tuple[float, float]:
    """Start a server, time it until it first answers and until READY_IN_A_ROW answers in
    a row (new connections reach either worker), then stop it.

    Returns:
        Seconds to the first answer and to ready.
    """
    started = time.perf_counter()
    first = None
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        in_a_row = 0
        while in_a_row < READY_IN_A_ROW:
            if time.perf_counter() - started > START_SECONDS or process.poll() is not None:
                raise RuntimeError(f"not ready:\n{log_path.read_text()[-3000:]}")
            try:
                ok = httpx.get(url, headers={"Connection": "close"}, timeout=5).status_code
            except httpx.TransportError:
                ok = 0
            first = first or (time.perf_counter() - started if ok else None)
            in_a_row = in_a_row + 1 if ok == 200 else 0
            if ok != 200:
                time.sleep(0.02)
        return first or 0.0, time.perf_counter() - started
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)


def worker_steps(log_path: Path) -> list[dict[str, Any]]:
    """Each worker's ``model loaded`` line: read, prepare and settle seconds."""
    lines = (json.loads(line) for line in log_path.read_text().splitlines()
             if line.startswith("{"))
    return [line for line in lines if line.get("message") == "model loaded"]


def serve_runs(prepared: Prepared, folder: Path, runs: int) -> dict[str, Any]:
    """``serve --workers 2`` and the no-op floor, taking turns run by run."""
    cli = str(Path(sys.executable).with_name("predictive-scoring"))
    env = service_env(prepared)
    results: dict[str, list[Any]] = {"serve": [], "floor": [], "steps": []}
    for run in range(runs):
        port = free_port()
        floor = [sys.executable, "-m", "uvicorn", "--factory",
                 "benchmarks._noop:noop_app", "--host", "127.0.0.1", "--port",
                 str(port), "--workers", "2", "--log-level", "warning"]
        results["floor"].append(until_ready(floor, env, f"http://127.0.0.1:{port}/docs",
                                            folder / f"floor{run}.log"))
        port = free_port()
        serve = [cli, "serve", "--model", str(prepared.bundle), "--port", str(port),
                 "--workers", "2"]
        log_path = folder / f"serve{run}.log"
        results["serve"].append(until_ready(serve, env, f"http://127.0.0.1:{port}/ready",
                                            log_path))
        results["steps"] += worker_steps(log_path)
    return results


def report(help_seconds: dict[str, float], serve: dict[str, Any], args: argparse.Namespace,
           load: tuple[float, float]) -> str:
    """The RESULTS.md section."""
    def median(values: list[float]) -> float:
        return statistics.median(values)

    def step(name: str, pick: Callable[[list[float]], float]) -> float:
        return pick([line[f"{name}_seconds"] for line in serve["steps"]])

    after_read = [line["prepare_seconds"] + line["settle_seconds"] for line in serve["steps"]]
    serve_first = median([first for first, _ in serve["serve"]])
    serve_ready = median([ready for _, ready in serve["serve"]])
    floor_ready = median([ready for _, ready in serve["floor"]])
    help_ratio = help_seconds["help"] / help_seconds["floor"]
    rows = [
        ("`python -c \"import typer, rich\"` (floor)", f"{help_seconds['floor']:.3f}", ""),
        ("`predictive-scoring --help`", f"{help_seconds['help']:.3f}", f"{help_ratio:.2f}x"),
        ("`uvicorn --workers 2`, bare FastAPI app: both workers answering (floor)",
         f"{floor_ready:.2f}", ""),
        ("`serve --workers 2`: first answer (`/ready`, 503 while loading)",
         f"{serve_first:.2f}", f"{serve_first / floor_ready:.2f}x"),
        ("`serve --workers 2`: both workers ready", f"{serve_ready:.2f}",
         f"{serve_ready / floor_ready:.2f}x"),
    ]
    steps = [(f"worker: {name} (median / max of {len(serve['steps'])} workers)",
              f"{step(name, median):.2f} / {step(name, max):.2f}", "")
             for name in ("imports", "read", "prepare", "settle")]
    targets = [
        ("`--help` <= 0.5 s", f"{help_seconds['help']:.2f} s",
         "met" if help_seconds["help"] <= 0.5 else "missed"),
        ("a worker ready <= 2 s after its model is read (prepare + settle, the slowest)",
         f"{max(after_read):.2f} s", "met" if max(after_read) <= 2 else "missed"),
        (f"`serve --workers 2` ready in every run ({args.runs})",
         f"{len(serve['serve'])} of {args.runs}",
         "met" if len(serve["serve"]) == args.runs else "missed"),
    ]
    return f"""
## Start-up (`python -m benchmarks.bench_startup`)

{machine_info()}; load average {load[0]:.1f} before and {load[1]:.1f} after the run (other
work shares the 2 cores).

Medians of {args.runs} runs, each command taking turns with its floor run by run (after one
untimed run each). The bundle: LightGBM on {args.leads:,} simulated leads, exported to a
folder. "Ready" is {READY_IN_A_ROW} answers of 200 in a row on new connections, which the
kernel hands to either worker. A worker imports no model library before it answers: the
model's (numpy, pandas, scikit-learn, LightGBM, MLflow) load on the thread that reads the
bundle, while the worker already answers uvicorn's health check and `/health`.

| what | seconds | ratio to its floor |
|---|---:|---:|
{_rows(rows + steps)}

| target | measured | |
|---|---:|---|
{_rows(targets)}
"""


def _rows(cells: list[tuple[str, ...]]) -> str:
    return "\n".join("| " + " | ".join(row) + " |" for row in cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000, help="simulated leads to train on")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    cli = shutil.which("predictive-scoring", path=str(Path(sys.executable).parent))
    help_seconds = medians({"floor": [sys.executable, "-c", "import typer, rich"],
                            "help": [cli, "--help"]}, args.runs)
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        folder = Path(tmp)
        print(f"training on {args.leads:,} simulated leads...", flush=True)
        prepared = prepare(folder, args.leads)
        print("timing serve --workers 2...", flush=True)
        serve = serve_runs(prepared, folder, args.runs)
    section = report(help_seconds, serve, args, (load_before, os.getloadavg()[0]))
    print(section)
    update_section("bench_startup", section)


if __name__ == "__main__":
    main()
