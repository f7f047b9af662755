"""Shared by the benchmark scripts: machine facts and RESULTS.md section updates."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from importlib.metadata import version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is rewritten by the script named in it.\n"


BASE_CONFIG = Path("configs/base.yaml")
SIMULATED_CONFIG = Path("configs/datasets/simulated.yaml")
"""The config files every benchmark starts from (run from the project root)."""


def timed(name: str, times: dict[str, float], function: Callable) -> Callable:
    """``function`` that adds its wall seconds to ``times[name]`` on every call."""
    @wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            times[name] = times.get(name, 0.0) + time.perf_counter() - start
    return run


def machine_info() -> str:
    """One line on the machine and the library versions that matter for speed."""
    packages = ", ".join(f"{name} {version(name)}" for name in
                         ("numpy", "pandas", "pyarrow", "scikit-learn", "lightgbm"))
    return (f"{os.cpu_count()} cores, {memory_gib():.0f} GiB RAM, Python "
            f"{platform.python_version()}, {packages}; measured "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def memory_gib() -> float:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        kib = int(meminfo.readline().split()[1])
    return kib / 2**20


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_times() -> tuple[int, int]:
    """(steal, total) clock ticks of all CPUs since boot, from ``/proc/stat``: steal is
    time the hypervisor gave to other guests while this machine wanted to run."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest times are inside user/nice)
    return fields[7], sum(fields[:8])


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of the machine's time stolen by the hypervisor between two ``cpu_times``."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def run_child(module: str, *args: str) -> str:
    """Run ``python -m module args`` in a fresh process (so its peak memory is its own).

    The child's standard error (its progress) is shown as it comes and kept for the
    error; its standard output (the result) is returned.

    Raises:
        subprocess.CalledProcessError: The child failed (``stderr`` holds its last lines).
    """
    command = [sys.executable, "-m", module, *args]
    with tempfile.TemporaryFile("w+") as out, subprocess.Popen(
            command, stdout=out, stderr=subprocess.PIPE, text=True,
            cwd=Path(__file__).parents[1]) as child:
        assert child.stderr is not None
        tail: deque[str] = deque(maxlen=200)
        for line in child.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            tail.append(line)
        code = child.wait()
        out.seek(0)
        stdout = out.read()
    if code:
        raise subprocess.CalledProcessError(code, command, stdout, "".join(tail))
    return stdout


def update_section(name: str, body: str) -> None:
    """Replace (or append) the section between this script's markers in RESULTS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else HEADER
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")


def publish(name: str, lines: list[str]) -> None:
    """Write a section's lines to RESULTS.md (:func:`update_section`) and print them."""
    update_section(name, "\n".join(lines))
    print("\n".join(lines))
