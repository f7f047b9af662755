"""Every command and code block of the README runs, at a small size, in a scratch copy of
the project (its configs), in the order a reader meets them.

Shell blocks run with bash in independent chains (:data:`CHAINS`), one process group per
block: a server a block starts in the background (``mlflow ui ... &``, ``predictive-scoring
serve ... &``) is stopped when its block ends. YAML blocks are dataset configs and must load
as one. Text blocks are file layouts, crontab lines and commands for other machines: they
are shown, not run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from predictive_scoring.config import DatasetConfig
from tests.conftest import REPO
from tests.integration.conftest import QUIET_MLFLOW

pytestmark = pytest.mark.heavy

README = (REPO / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, flags=re.S | re.M)
INSTALL = re.compile(r"^python3 -m venv \.venv && \. \.venv/bin/activate && pip install [^&]+&& ")
SMALL = [("--leads 20000", "--leads 2000"), ("--tune 30", "--tune 2"),
         ("predictive-scoring quickstart", "predictive-scoring quickstart --leads 2000")]
"""The README's sizes, made small for the test (same commands otherwise)."""
BLOCK_SECONDS = 600


def _shell_blocks() -> list[str]:
    return [body for language, body in BLOCKS if language == "bash"]


def _small(command: str) -> str:
    for large, small in SMALL:
        command = command.replace(large, small)
    return command


def test_the_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    first, second = _shell_blocks()[:2]
    assert INSTALL.match(first) and first.strip().endswith("predictive-scoring quickstart")
    assert second.strip().endswith("&& pytest")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert second.strip() in ci.splitlines()


@pytest.mark.parametrize("body", [b for lang, b in BLOCKS if lang == "yaml"])
def test_yaml_blocks_are_valid_dataset_configs(body: str) -> None:
    DatasetConfig.model_validate(yaml.safe_load(body))


CHAINS = {"quickstart": (1,), "crm-export": (4,), "dask": (8,),
          "simulated": (3, 5, 6, 7, 9, 10, 11)}
"""The README's shell blocks (numbered from 1) in independent chains: each chain runs in
its own scratch copy, its blocks in the README's order (a later block of a chain uses
what an earlier one wrote), and the chains run side by side on the suite's workers.
Block 2 is the test command itself (checked above against .ci/run)."""


def test_every_shell_block_is_in_one_chain() -> None:
    numbers = sorted(n for chain in CHAINS.values() for n in chain)
    assert numbers == [n for n in range(1, len(_shell_blocks()) + 1) if n != 2]


@pytest.mark.parametrize("chain", [pytest.param(name, marks=pytest.mark.xdist_group(
    f"readme-{name}")) for name in CHAINS])
def test_every_shell_block_runs(chain: str, tmp_path: Path) -> None:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREDICTIVE_"))}
    env |= {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "PREDICTIVE_SCORING_DATA_DIR": str(REPO / "../shared/data"),
            "COLUMNS": "200", "NO_COLOR": "1"} | QUIET_MLFLOW
    blocks = _shell_blocks()
    for number in CHAINS[chain]:
        script = _small(INSTALL.sub("", blocks[number - 1]))
        done = _run_block(script, tmp_path, env)
        assert done.returncode == 0, f"README shell block {number} failed:\n{script}\n" \
                                     f"--- output ---\n{done.stdout[-4000:]}"


def _run_block(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run one block with bash -e; whatever it started in the background is stopped.

    Output goes to a file, not a pipe: a background server keeps a pipe open after the
    block ends, a file it may keep.
    """
    log = cwd / "block.log"
    with log.open("w") as sink:
        process = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd,
                                   env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            process.wait(timeout=BLOCK_SECONDS)
        finally:
            _stop_group(process.pid)
    return subprocess.CompletedProcess(process.args, process.returncode,
                                       log.read_text(errors="replace"))


def _stop_group(group: int, grace_seconds: float = 5) -> None:
    """SIGTERM the block's process group, then SIGKILL what is left after the grace."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, sent)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
