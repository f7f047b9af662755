"""The ``retrain`` command, for schedules: train on the latest data, promote only when the
new version beats the champion and the points on the same leads, tell the service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from predictive_scoring.cli.common import (
    DEFAULT_BASE,
    DEFAULT_MODEL,
    BadRowsOption,
    BaseOption,
    CapacityOption,
    ConfigOption,
    ExitCode,
    MaxRulesOption,
    ModelName,
    OnBadRows,
    app,
    console,
    default_out,
    errors,
    fail,
    friendly,
    load_checked,
)
from predictive_scoring.cli.train import TrainRequest, show_outcome

EXIT_CODES = {"promoted": ExitCode.OK, "kept": ExitCode.OK,
              "not_promoted": ExitCode.NOT_PROMOTED, "no_converters": ExitCode.BAD_DATA,
              "champion_unusable": ExitCode.NO_MODEL, "reload_failed": ExitCode.RELOAD_FAILED}
"""The exit code of each way a retrain ends (``workflow.retrain.Verdict`` values)."""

ADMIN_KEY_ENV = "PREDICTIVE_SCORING_ADMIN_KEYS"
"""Where ``--reload-url`` finds the admin key (the service's own variable; the first key
of the list is sent)."""


@app.command()
@friendly
def retrain(
    config: ConfigOption,
    model: Annotated[ModelName, typer.Option(
        help="Model kind (its settings: configs/models/NAME.yaml).")] = DEFAULT_MODEL,
    reload_url: Annotated[str | None, typer.Option(
        help="A running service (http://host:8000) to reload when the champion moves; its "
        f"admin key is read from {ADMIN_KEY_ENV}.")] = None,
    output: Annotated[Path | None, typer.Option(
        help="Folder for metrics.json, plots and the report (default: "
        "<output_dir>/<dataset>).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on leakage warnings.")] = False,
    max_rules: MaxRulesOption = None,
    capacity: CapacityOption = None,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Retrain on the latest data and promote only when the new version beats the champion
    and the points on the same leads (exit 0: promoted or kept; see the README for the
    other exit codes)."""
    from predictive_scoring.data.dataset import dataset_files, fingerprint
    from predictive_scoring.workflow.retrain import retrain as run_retrain

    reload = None
    if reload_url is not None:
        keys = [k.strip() for k in os.environ.get(ADMIN_KEY_ENV, "").split(",") if k.strip()]
        if not keys:
            fail(f"--reload-url needs the service's admin key in {ADMIN_KEY_ENV}; set it (as "
                 "for the service) or leave --reload-url out", ExitCode.BAD_CONFIG)
        reload = (reload_url, keys[0])
    request = TrainRequest(config, model, output or default_out(base_config, config), strict,
                           True, on_bad_rows, base_config, 0, max_rules, capacity)
    dataset_config, dataset = load_checked(config, base_config, on_bad_rows,
                                           request.out / "quarantine")
    plan = request.plan(dataset_config)
    digest = fingerprint(dataset_files(dataset_config, plan.base.resolved_data_dir()))
    settings = request.settings(plan, f"retrain-{model.value}-{digest[:6]}", digest,
                                {"scheduled": True})
    with console.status(f"Retraining {model.value} on '{dataset_config.name}'...") as status:
        outcome = run_retrain(dataset, plan, settings, reload,
                              lambda step: status.update(f"{step}..."))
    code = EXIT_CODES[outcome.verdict.value]
    show_outcome(outcome.run)
    if outcome.reloaded is not None:
        shown = escape(outcome.reloaded)
        if code == ExitCode.RELOAD_FAILED:
            errors.print(f"[bold red]error:[/] promoted, but {shown}; the service keeps "
                         "serving the old champion until it reloads", highlight=False)
        else:
            console.print(f"Reloaded: {shown}.", highlight=False)
    if code != ExitCode.OK:
        raise typer.Exit(int(code))
