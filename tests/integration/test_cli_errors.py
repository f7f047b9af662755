"""Bad invocations of the command line: each ends in one paragraph naming what is wrong
and how to fix it, with the documented exit code (1 bad data, 2 bad configuration or
settings, 3 a model URI that names no model), and never a traceback.

The registry holds one registered model whose version points at no bundle: every model
error here must be found before anything is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from predictive_scoring.cli import app
from tests.conftest import REPO

runner = CliRunner()
MODEL = "lead-scoring-simulated"
KEY = "k" * 24


@dataclass(frozen=True)
class Place:
    """Where a case's files are: the simulated dataset and a scratch folder."""

    sim: Path
    scratch: Path

    def file(self, name: str, text: str | bytes) -> Path:
        path = self.scratch / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    def dataset(self, name: str, **files: str) -> Path:
        """A copy of the simulated dataset config, with some files replaced."""
        root = self.scratch / name
        root.mkdir()
        for table in ("leads", "events", "stage_changes", "accounts", "account_truth"):
            text = files.get(table, (self.sim / f"{table}.csv").read_text())
            (root / f"{table}.csv").write_text(text)
        config = (self.sim / "dataset.yaml").read_text().replace(f"root: {self.sim}",
                                                                 f"root: {root}")
        (root / "dataset.yaml").write_text(config.replace("  truth: truth.csv\n", ""))
        return root / "dataset.yaml"

    def config(self, old: str, new: str) -> Path:
        """The simulated dataset's config with one text replaced."""
        path = self.scratch / "changed.yaml"
        path.write_text((self.sim / "dataset.yaml").read_text().replace(old, new))
        return path

    def leads(self) -> str:
        return (self.sim / "leads.csv").read_text()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite registry with '{MODEL}' version 1 as champion (its bundle is absent)."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, source=str(folder / "no-bundle"))
    client.set_registered_model_alias(MODEL, "champion", "1")
    return uri


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    result = runner.invoke(app, ["simulate", "--leads", "150", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _score(place: Place, leads: Path | None = None, model: str = f"models:/{MODEL}@champion",
           *more: str) -> list[str]:
    return ["score", "--model", model, "--input", str(leads or place.sim / "leads.csv"),
            "--output", str(place.scratch / "scores.csv"), *more]


SEMICOLONS = "lead_id;created_at;employees\nA;2025-01-01T00:00:00Z;10\n"
Case = tuple[Callable[[Place], list[str]], dict[str, str], int, str]
CASES: dict[str, Case] = {
    # a model URI that names nothing: exit 3, with what the store does have
    "score: misspelled model name": (
        lambda p: _score(p, model="models:/lead-scoring-simulatd@champion"), {}, 3,
        "no registered model 'lead-scoring-simulatd'"),
    "score: misspelled alias": (
        lambda p: _score(p, model=f"models:/{MODEL}@champoin"), {}, 3,
        "has no alias 'champoin' (did you mean 'champion'?); its aliases: champion (version 1)"),
    "score: version that does not exist": (
        lambda p: _score(p, model=f"models:/{MODEL}/7"), {}, 3,
        "has no version 7; its versions: 1"),
    "score: run id that does not exist": (
        lambda p: _score(p, model="runs:/0123456789abcdef0123456789abcdef/model"), {}, 3,
        "no run '0123456789abcdef0123456789abcdef'"),
    "score: folder that does not exist": (
        lambda p: _score(p, None, str(p.scratch / "models" / "champion")), {}, 3,
        "no such folder"),
    "score: folder that is no bundle": (
        lambda p: _score(p, None, str(p.sim)), {}, 3, "is not a model bundle folder"),
    "score: registry URI without alias": (
        lambda p: _score(p, model=f"models:/{MODEL}"), {}, 3, "names no alias or version"),
    "report: misspelled alias": (
        lambda p: ["report", "--model", f"models:/{MODEL}@chamption", "--config",
                   str(p.sim / "dataset.yaml"), "--out", str(p.scratch / "r.html")], {}, 3,
        "did you mean 'champion'?"),
    "learn-points: misspelled model name": (
        lambda p: ["learn-points", "--model", "models:/lead-scoring@champion", "--config",
                   str(p.sim / "dataset.yaml"), "--out", str(p.scratch / "p.yaml")], {}, 3,
        f"did you mean '{MODEL}'?"),
    "serve: misspelled alias": (
        lambda p: ["serve", "--model", f"models:/{MODEL}@champoin"],
        {"PREDICTIVE_SCORING_API_KEYS": KEY}, 3, "has no alias 'champoin'"),
    # service settings: exit 2, by environment variable, never the key itself
    "serve: API key shorter than 16": (
        lambda p: ["serve", "--model", f"models:/{MODEL}@champion"],
        {"PREDICTIVE_SCORING_API_KEYS": f"{KEY},short-key"}, 2,
        "PREDICTIVE_SCORING_API_KEYS: key(s) number [2] are shorter than 16 characters"),
    "serve: no API key": (
        lambda p: ["serve", "--model", f"models:/{MODEL}@champion"],
        {"PREDICTIVE_SCORING_API_KEYS": ""}, 2, "the service never runs without authentication"),
    # bad files: exit 1
    "validate: empty leads file": (
        lambda p: ["validate", "--config", str(p.dataset("empty", leads=""))], {}, 1,
        "the file is empty (not even a header line)"),
    "validate: semicolon-separated leads": (
        lambda p: ["validate", "--config", str(p.dataset("semi", leads=p.leads().replace(
            ",", ";")))], {}, 1, "set read.sep: ';' in the dataset config"),
    "validate: leads with a header only": (
        lambda p: ["validate", "--config", str(p.dataset("header", leads=p.leads().split(
            "\n")[0] + "\n"))], {}, 1, "no leads: the file has a header but no rows"),
    "validate: repeated column name": (
        lambda p: ["validate", "--config", str(p.dataset("dup", leads=p.leads().replace(
            "seniority", "industry", 1)))], {}, 1, "named 2 times in the header"),
    "validate: truncated last row": (
        lambda p: ["validate", "--config", str(p.dataset("cut", leads=p.leads()[:-30]))], {}, 1,
        "row 150, value"),
    "score: empty input": (
        lambda p: _score(p, p.file("empty.csv", "")), {}, 1, "the file is empty"),
    "score: semicolon-separated input": (
        lambda p: _score(p, p.file("semi.csv", SEMICOLONS)), {}, 1, "--sep ';'"),
    "score: input with a header only": (
        lambda p: _score(p, p.file("header.csv", "lead_id,created_at\n")), {}, 1,
        "no leads to score"),
    "score: events that are not UTF-8": (
        lambda p: [*_score(p), "--events", str(p.file("latin.csv", (
            b"lead_id,timestamp,event_type,detail\nL0000001,2025-01-01T00:00:00Z,page_view,"
            b"caf\xe9\n")))], {}, 1, "line 2 is not UTF-8 text"),
    "score: input that is not Parquet": (
        lambda p: _score(p, p.file("fake.parquet", "lead_id\nA\n")), {}, 1,
        "cannot read it as Parquet"),
    "score: events file that does not exist": (
        lambda p: [*_score(p), "--events", str(p.scratch / "nope.csv")], {}, 1,
        "nope.csv: file not found"),
    "score: bad --as-of": (
        lambda p: [*_score(p), "--as-of", "tomorrow"], {}, 1, "--as-of 'tomorrow'"),
    # configuration: exit 2
    "validate: config key typo": (
        lambda p: ["validate", "--config", str(p.config("horizon_days", "horizon_dayz"))], {},
        2, "snapshots.horizon_dayz: unknown key; did you mean 'horizon_days'?"),
    "validate: unknown time zone": (
        lambda p: ["validate", "--config", str(p.config("shape: events",
                                                         "shape: events\nread: {timezone: "
                                                         "America/New_Yrok}"))], {}, 2,
        "did you mean 'America/New_York'?"),
    "train: config file that does not exist": (
        lambda p: ["train", "--config", str(p.scratch / "nope.yaml")], {}, 2,
        "nope.yaml: cannot read the file"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_invocation_is_one_paragraph_and_its_exit_code(
        name: str, sim: Path, store: str, tmp_path: Path) -> None:
    build, env, code, says = CASES[name]
    args = build(Place(sim, tmp_path))
    result = runner.invoke(app, args, env={"COLUMNS": "400", "NO_COLOR": "1",
                                           "MLFLOW_TRACKING_URI": store, **env})
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert says in " ".join(result.output.split()), result.output
    assert KEY not in result.output and "short-key" not in result.output
    assert not (tmp_path / "scores.csv").exists()


def test_enough_bad_invocations_are_covered() -> None:
    assert len(CASES) >= 20
    assert {case[2] for case in CASES.values()} == {1, 2, 3}


def test_the_installed_command_prints_no_traceback(store: str, tmp_path: Path) -> None:
    """Outside the test runner too: the real entry point, its standard error and code."""
    leads = tmp_path / "leads.csv"
    leads.write_text("lead_id,created_at\nA,2025-01-01T00:00:00Z\n")
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "COLUMNS": "300"}
    result = subprocess.run([sys.executable, "-m", "predictive_scoring.cli", "score", "--model",
                             f"models:/{MODEL}@champoin", "--input", str(leads), "--output",
                             str(tmp_path / "s.csv")], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=120)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: 'lead-scoring-simulated' has no alias 'champoin'")
