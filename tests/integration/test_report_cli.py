"""learn-points and report from a registered model, via the CLI: the learned table is one
a CRM admin can type in and `rules --rules` scores with it; metrics.json holds the
accuracy page; the report renders in headless Chromium without console messages, every
figure loads, every table column is in sight at 1,400 px, and its screenshot is a real
page.

One small simulated funnel is trained once through the CLI (which also writes the train-time
report) and shared by every test of the module."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from predictive_scoring.cli import app
from predictive_scoring.config import RulesConfig, load_config
from tests.learned_table import assert_a_crm_table

pytestmark = pytest.mark.heavy

runner = CliRunner()
BROWSER_SECONDS = 120
WINDOW = (1280, 2400)
LEADS = 5_000  # at 2,500 leads (~80 converters) the model itself ranks below the rules
FIGURES = 14  # the simulated leads are contacts of accounts: the accounts' gain too
SECTIONS = ("Promotion: this model against the one in use",
            "Funnel: conversion by stage, rules vs model", "Gain and lift",
            "Accuracy at a threshold", "Calibration", "Score distributions",
            "Rule stage vs suggested stage", "By lead age", "Global drivers",
            "Fit vs engagement", "Accounts: scores from their contacts",
            "Learned points: edits to the current table",
            "Leads the rules over- and under-rate", "Data and leakage warnings")
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
    invoke("simulate", "--leads", LEADS, "--seed", 8, "--out", root / "sim", env=env)
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


def test_learn_points_writes_a_crm_table_that_rules_scores_and_shows_its_edits(
        trained: dict) -> None:
    out = trained["root"] / "learned.yaml"
    result = invoke("learn-points", "--model", trained["model"], "--config", trained["config"],
                    "--out", out, "--max-rules", 12, env=trained["env"])
    rules = load_config(out, RulesConfig)
    assert_a_crm_table(rules, max_rules=12)
    auc = {name: float(re.search(rf"{name}\s+│\s+([0-9.]+)", result.output).group(1))
           for name in ("model", "learned points", "hand-set points")}
    assert auc["learned points"] > auc["hand-set points"]
    names = [r.name for r in [*rules.event_rules, *rules.attribute_rules]]
    assert f"Learned points as edits to 'classic_points' ({len(names)} rules:" in result.output
    scored_path = trained["root"] / "learned_scores.csv"
    invoke("rules", "--config", trained["config"], "--rules", out, "--output", scored_path,
           env=trained["env"])
    scored = pd.read_csv(scored_path)
    fired = scored["fired_rules"].fillna("").str.split("; ").explode()
    fired_names = set(fired[fired != ""].str.rsplit(" ", n=1).str[0])
    assert fired_names and fired_names <= {*names, "starting_points"}
    assert scored["rule_stage"].isin([s.value for s in rules.stage_thresholds]).all()


def test_train_writes_learned_points_metrics_and_the_report(trained: dict) -> None:
    import json

    run = trained["root"] / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["learned_points"]["roc_auc"] > metrics["rules"]["roc_auc"]
    page = (run / "report.html").read_text()
    assert all(f"<h2>{heading}</h2>" in page for heading in SECTIONS)
    assert_a_crm_table(load_config(run / "learned_points.yaml", RulesConfig), max_rules=25)
    # The report's global drivers are the weights the run logged (same test leads).
    logged = pd.read_csv(run / "global_importance.csv")
    assert _strongest_fields(page) == logged["feature"].head(10).tolist()


def test_metrics_hold_the_accuracy_page_whose_matrices_sum_to_the_test_leads(trained: dict
                                                                           ) -> None:
    import json

    metrics = json.loads((trained["root"] / "run" / "metrics.json").read_text())
    page = metrics["accuracy_page"]
    assert page["test_leads"] == metrics["n_test"] and page["capacity"] == "10% of the leads"
    volumes = {"handoff_volume": metrics["handoff_volume_test"],
               "capacity": round(0.1 * metrics["n_test"])}
    for name, block in page["thresholds"].items():
        assert block["volume"] == volumes[name]
        assert set(block["scorers"]) == {"model", "learned points", "hand-set points"}
        for row in block["scorers"].values():
            cells = [row[k] for k in ("true_positives", "false_positives", "false_negatives",
                                      "true_negatives")]
            assert sum(cells) == metrics["n_test"]
            assert row["true_positives"] + row["false_negatives"] == page["converters"]
    backtest = page["backtest"]
    assert 1 <= backtest["weeks"] <= 13 and len(backtest["weekly"]) == backtest["weeks"]
    assert sum(w["leads"] for w in backtest["weekly"]) == backtest["leads"]


def _strongest_fields(page: str) -> list[str]:
    table = re.search(r"<h3>Strongest fields</h3><table>(.*?)</table>", page, re.S).group(1)
    return re.findall(r'<tr><td class="text">([^<]+)</td>', table)


@pytest.fixture(scope="module")
def report_html(trained: dict) -> Path:
    out = trained["root"] / "report" / "report.html"
    invoke("report", "--model", trained["model"], "--config", trained["config"], "--out", out,
           env=trained["env"])
    return out


def test_report_is_self_contained_with_every_section(report_html: Path, trained: dict
                                                     ) -> None:
    page = report_html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page)  # no outside asset
    assert "<link" not in page and "@import" not in page and "url(" not in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == FIGURES and all(i.startswith("data:image/png;base64,") for i in images)
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in page
    assert "Over-rated by the rules" in page and "Under-rated by the rules" in page
    train_time = (trained["root"] / "run" / "report.html").read_text()
    assert _strongest_fields(page) == _strongest_fields(train_time)


def test_report_shows_conversion_per_quadrant_and_the_reasons_of_example_leads(
        report_html: Path) -> None:
    page = report_html.read_text()
    quadrant = re.search(r"<h3>By quadrant</h3><table>(.*?)</table>", page, re.S).group(1)
    rows = re.findall(r'<tr><td class="text">([^<]+)</td><td class="num">([0-9,]+)</td>',
                      quadrant)
    assert [name for name, _ in rows] == ["sales-ready", "nurture", "check fit",
                                          "low priority"]
    test_leads = int(re.search(r"<b>test leads:</b> ([0-9,]+)", page).group(1).replace(",", ""))
    assert sum(int(n.replace(",", "")) for _, n in rows) == test_leads
    examples = re.search(r'<section id="examples">(.*?)</section>', page, re.S).group(1)
    leads = re.findall(r'<table class="leads">.*?</table>', examples, re.S)
    assert len(leads) == 2
    # Each example row holds the rules that fired and the model's reasons with points.
    for table in leads:
        for row in re.findall(r"<tr><td.*?</tr>", table, re.S):
            cells = re.findall(r'<td class="text">(.*?)</td>', row, re.S)
            assert len(cells) == 6
            assert re.search(r": [+-][0-9.]+", cells[4] + cells[5])


def test_report_renders_in_headless_chromium_without_console_messages(
        report_html: Path, chromium: str, tmp_path: Path) -> None:
    checked = tmp_path / "checked.html"  # the report plus a script that counts broken images
    checked.write_text(report_html.read_text().replace("</body>", f"{LOAD_CHECK}</body>"))
    result = headless(chromium, "--virtual-time-budget=5000", "--dump-dom", checked.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # the page has no script: any console line is an error
    assert f'data-images="{FIGURES}"' in result.stdout
    assert 'data-broken-images="0"' in result.stdout


VISIBILITY_CHECK = """<script>
window.addEventListener("load", () => {
  // a cell is hidden when it ends right of the window or of a box that clips it
  const clipped = (cell) => {
    const right = cell.getBoundingClientRect().right;
    if (right > document.documentElement.clientWidth + 1) return true;
    for (let box = cell.parentElement; box; box = box.parentElement) {
      const style = getComputedStyle(box);
      if (style.overflowX !== "visible" && right > box.getBoundingClientRect().right + 1)
        return true;
    }
    return false;
  };
  const cells = [...document.querySelectorAll("th, td")];
  document.body.setAttribute("data-cells", cells.length);
  document.body.setAttribute("data-hidden-cells", cells.filter(clipped).length);
});
</script>"""


def test_every_table_column_is_in_sight_at_1400_px(report_html: Path, chromium: str,
                                                   tmp_path: Path) -> None:
    checked = tmp_path / "visible.html"
    checked.write_text(report_html.read_text().replace("</body>",
                                                       f"{VISIBILITY_CHECK}</body>"))
    result = headless(chromium, "--window-size=1400,1000", "--virtual-time-budget=5000",
                      "--dump-dom", checked.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    cells = int(re.search(r'data-cells="(\d+)"', result.stdout).group(1))
    assert cells > 200  # the wide tables (edits, strongest fields, accuracy) are there
    assert 'data-hidden-cells="0"' in result.stdout


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
