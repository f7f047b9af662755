"""The suite's own layout: under pytest-xdist each test module runs whole on one worker
(its module fixtures built once). A pytest release that changes node ids can make xdist
ignore the groups silently, building every trained fixture once per worker."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

MODULES = ("tests/unit/test_stages.py", "tests/unit/test_evaluate.py")


def test_each_module_runs_on_one_worker(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "base"), *MODULES],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    workers: dict[str, set[str]] = defaultdict(set)
    for worker, nodeid in re.findall(r"^\[(gw\d+)\] .*?PASSED (\S+)", done.stdout, re.M):
        workers[nodeid.split("::", 1)[0]].add(worker)
    assert set(workers) == set(MODULES), done.stdout[-3000:]
    assert all(len(ran_on) == 1 for ran_on in workers.values()), dict(workers)
