"""Every numbered notebook runs top to bottom at a small size, and is kept without outputs.

The notebooks read their size and folders from environment variables (see each one's first
code cell); the kernel inherits them from this process.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from predictive_scoring.config import DATA_DIR_ENV
from tests.conftest import REPO

pytestmark = pytest.mark.heavy

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SMALL = {
    "PREDICTIVE_SCORING_NOTEBOOK_LEADS": "3000",
    "PREDICTIVE_SCORING_NOTEBOOK_ROWS": "6000",
}
CELL_TIMEOUT_S = 600


def _needs_data(path: Path) -> bool:
    metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"]
    return bool(metadata.get("predictive_scoring", {}).get("needs_data"))


def _base_config(tmp_path: Path) -> Path:
    """The project settings with the MLflow store and outputs moved into ``tmp_path``."""
    settings = yaml.safe_load((REPO / "configs/base.yaml").read_text(encoding="utf-8"))
    settings |= {"tracking_uri": f"sqlite:///{tmp_path}/mlruns/mlflow.db",
                 "artifact_location": str(tmp_path / "mlruns" / "artifacts"),
                 "output_dir": str(tmp_path / "out")}
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def test_there_are_notebooks_to_run() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert names[:2] == ["1.0-funnel-and-points.ipynb", "2.0-train-and-compare.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: strip outputs before committing")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_at_a_small_size(path: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       request: pytest.FixtureRequest) -> None:
    if _needs_data(path):
        monkeypatch.setenv(DATA_DIR_ENV, str(request.getfixturevalue("data_dir")))
    for name, value in SMALL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PREDICTIVE_SCORING_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("PREDICTIVE_SCORING_BASE_CONFIG", str(_base_config(tmp_path)))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "a notebook shows plots"
