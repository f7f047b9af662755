"""Shared fixtures: the repository root, the public data folder, a small hand-made funnel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The suite runs two workers on two cores, each training with LightGBM's two threads. With
# OpenMP's default, a waiting thread spins and keeps its core, so the workers' threads
# fight for the cores; here a waiting thread sleeps. Set before any OpenMP library loads
# (LightGBM reads it then); the servers and CLI runs the tests start inherit it. Measured:
# the suite took 11 min 9 s instead of 13 min 33 s on one machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from predictive_scoring.config import (
    DATA_DIR_ENV,
    BaseConfig,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    load_config,
)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist gives its workers COLUMNS=80 and LINES=24; the CLI's consoles would fix
    # that width when imported, so a test's own COLUMNS (CliRunner's env) would not count.
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)

REPO = Path(__file__).resolve().parents[1]
BASE = load_config(REPO / "configs/base.yaml", BaseConfig)
SIMULATED = load_config(REPO / "configs/datasets/simulated.yaml", DatasetConfig)
CLASSIC_RULES = load_config(REPO / "configs/rules/classic_points.yaml", RulesConfig)
LIGHTGBM = load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig)
"""The configs most tests start from, as shipped."""


@pytest.fixture(autouse=True)
def _run_from_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Config paths are relative to the project root, as when a user runs the CLI there."""
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The public datasets folder; tests that need it skip where it is absent."""
    base = load_config(REPO / "configs" / "base.yaml", BaseConfig)
    folder = Path(os.environ.get(DATA_DIR_ENV) or REPO / base.data_dir)
    if not folder.is_dir():
        pytest.skip(f"public datasets not found at {folder} (set {DATA_DIR_ENV} to the "
                    "folder holding uci_bank_marketing/, uci_online_shoppers/ and "
                    "olist_marketing_funnel/)")
    return folder


HEAVY = "heavy"
"""The marker of a module that trains on thousands of leads or runs commands end to end
(``pytestmark = pytest.mark.heavy``): such modules start first."""


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``pytest -n`` (the suite's default: one worker per core, ``--dist loadgroup``)
    each test module runs whole on one worker, so its module fixtures are built once; the
    service tests share session fixtures (two trained models) and run on one worker
    together; a test that names its own group keeps it. Heavy modules are handed out
    first, so the run does not end with one worker on a long module and the other idle."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            module = item.nodeid.split("::", 1)[0]
            group = "serving" if module.startswith("tests/serving/") else module
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.get_closest_marker(HEAVY) is None)
