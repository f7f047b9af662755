"""The Dask driver gives the memory it frees back to the system."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the allocator settings are glibc's (Linux)")

PROBE = """
import os, sys
import numpy as np
if sys.argv[1] == "on":
    from predictive_scoring.distributed.cluster import return_freed_memory
    return_freed_memory()

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

first = np.ones(30 << 17); del first  # 30 MiB freed: glibc's own threshold rises to it
base = rss()
blocks = [np.ones(20 << 17) for _ in range(10)]  # ten 20 MiB blocks, as a gather's pieces
after = [np.ones(16) for _ in range(1000)]  # small blocks allocated after them
del blocks
print((rss() - base) / 2**20)
"""


def _kept_mib(setting: str) -> float:
    """MiB still resident after 200 MiB of blocks were freed, in a fresh process with
    glibc's defaults (no ``MALLOC_*`` settings: importing Dask sets some for its
    workers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE, setting], check=True,
                         capture_output=True, text=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def test_freed_blocks_leave_the_driver() -> None:
    """With glibc's defaults, 20 MiB blocks freed after a 30 MiB one stay resident (its
    threshold for mapping blocks on their own rose); return_freed_memory fixes the
    threshold, and the freed blocks go back to the system."""
    assert _kept_mib("off") > 150
    assert _kept_mib("on") < 20
