"""learn-points and report from a registered model, via the CLI; the report renders in
headless Chromium without console messages, and its screenshot is a real page."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from predictive_scoring.cli import app
from predictive_scoring.config import RulesConfig, load_config

runner = CliRunner()
BROWSER_SECONDS = 120
WINDOW = (1280, 2400)
LOAD_CHECK = """<script>
window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0));
  document.body.setAttribute("data-images", document.images.length);
  document.body.setAttribute("data-broken-images", broken.length);
});
</script>"""


def invoke(*args: object, env: dict[str, str]) -> object:
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **env})
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("report_cli")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"}
    invoke("simulate", "--leads", 5000, "--seed", 8, "--out", root / "sim", env=env)
    invoke("train", "--config", root / "sim" / "dataset.yaml", "--output", root / "run",
           env=env)
    return {"root": root, "env": env, "config": root / "sim" / "dataset.yaml",
            "model": "models:/lead-scoring-simulated@champion"}


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; installed with apt-get when missing, else the tests skip."""
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get"):
        for command in (["apt-get", "install", "-y", "-qq", "chromium"],
                        ["apt-get", "update", "-qq"],  # a fresh machine has no index yet
                        ["apt-get", "install", "-y", "-qq", "chromium"]):
            subprocess.run(command, capture_output=True, timeout=900, check=False)
            found = shutil.which("chromium")
            if found:
                break
    if found is None:
        pytest.skip("headless Chromium is not installed and `apt-get install -y chromium` "
                    "could not install it (no root or no package index)")
    return found


def headless(chromium: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=BROWSER_SECONDS, check=False)


def test_learn_points_writes_a_rules_file_that_beats_the_hand_set_points(trained: dict
                                                                        ) -> None:
    out = trained["root"] / "learned.yaml"
    result = invoke("learn-points", "--model", trained["model"], "--config", trained["config"],
                    "--out", out, env=trained["env"])
    rules = load_config(out, RulesConfig)
    assert rules.event_rules and rules.attribute_rules
    auc = {name: float(re.search(rf"{name}\s+│\s+([0-9.]+)", result.output).group(1))
           for name in ("model", "learned points", "hand-set points")}
    assert auc["learned points"] > auc["hand-set points"]
    assert result.output.count("event rules and") == 1


def test_train_writes_learned_points_metrics_and_the_report(trained: dict) -> None:
    import json

    metrics = json.loads((trained["root"] / "run" / "metrics.json").read_text())
    assert metrics["learned_points"]["roc_auc"] > metrics["rules"]["roc_auc"]
    assert (trained["root"] / "run" / "report.html").stat().st_size > 50_000
    load_config(trained["root"] / "run" / "learned_points.yaml", RulesConfig)


@pytest.fixture(scope="module")
def report_html(trained: dict) -> Path:
    out = trained["root"] / "report" / "report.html"
    invoke("report", "--model", trained["model"], "--config", trained["config"], "--out", out,
           env=trained["env"])
    return out


def test_report_is_self_contained_with_every_section(report_html: Path) -> None:
    page = report_html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page)  # no outside asset
    assert "<link" not in page and "@import" not in page and "url(" not in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 6 and all(i.startswith("data:image/png;base64,") for i in images)
    for heading in ("Funnel: conversion by stage, rules vs model", "Gain and lift",
                    "Calibration", "Score distributions", "Rule stage vs suggested stage",
                    "Learned points vs hand-set points", "Leads the rules over- and under-rate",
                    "Data and leakage warnings"):
        assert f"<h2>{heading}</h2>" in page
    assert "Over-rated by the rules" in page and "Under-rated by the rules" in page


def test_report_renders_in_headless_chromium_without_console_messages(
        report_html: Path, chromium: str, tmp_path: Path) -> None:
    checked = tmp_path / "checked.html"  # the report plus a script that counts broken images
    checked.write_text(report_html.read_text().replace("</body>", f"{LOAD_CHECK}</body>"))
    result = headless(chromium, "--virtual-time-budget=5000", "--dump-dom", checked.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # the page has no script: any console line is an error
    assert 'data-images="6"' in result.stdout
    assert 'data-broken-images="0"' in result.stdout


def test_report_screenshot_is_a_full_non_blank_page(report_html: Path, chromium: str,
                                                    tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = headless(chromium, "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                      f"--screenshot={shot}", report_html.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    ink = (pixels < 0.9).any(axis=2)  # anything darker than near-white
    assert 0.03 < ink.mean() < 0.6
    rows_with_ink = ink.any(axis=1)
    assert rows_with_ink[: WINDOW[1] // 2].mean() > 0.3  # text and figures down the page
    assert rows_with_ink[WINDOW[1] // 2:].mean() > 0.3
    assert np.unique(pixels.reshape(-1, 3).round(2), axis=0).shape[0] > 50  # colour figures
