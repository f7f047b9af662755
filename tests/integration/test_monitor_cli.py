"""``monitor`` refuses what it cannot read with one paragraph and the documented exit code."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from predictive_scoring.cli import app

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    result = CliRunner().invoke(app, ["simulate", "--leads", "300", "--seed", "3", "--out",
                                      str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    return out / "dataset.yaml"


def _monitor(config: Path, url: str, out: Path, *extra: str) -> object:
    result = CliRunner().invoke(app, ["monitor", "--prediction-log", url, "--config",
                                      str(config), "--out", str(out), *extra], env=ENV)
    assert "Traceback" not in result.output
    return result


def test_an_unreachable_log_exits_3(config: Path, tmp_path: Path) -> None:
    result = _monitor(config, "postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path)
    assert result.exit_code == 3, result.output
    assert "cannot be read" in result.output and "127.0.0.1" in result.output


def test_a_database_without_the_log_exits_2(config: Path, tmp_path: Path) -> None:
    result = _monitor(config, f"sqlite:///{tmp_path}/other.db", tmp_path)
    assert result.exit_code == 2, result.output
    assert "no 'lead_predictions' table" in result.output


def test_a_bad_period_or_window_exits_2(config: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/other.db"
    assert _monitor(config, url, tmp_path, "--period", "day").exit_code == 2
    result = _monitor(config, url, tmp_path, "--since", "2025-03-01", "--until", "2025-02-01")
    assert result.exit_code == 2 and "is not before" in result.output
