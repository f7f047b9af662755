"""The ``quickstart`` command: the main job end to end on the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from predictive_scoring.cli.common import (
    DEFAULT_BASE,
    DEFAULT_MODEL,
    SIMULATED_CONFIG,
    BaseOption,
    FileFormat,
    OnBadRows,
    app,
    console,
    events_dataset,
    friendly,
    load_checked,
    write_frame,
)


@app.command()
@friendly
def quickstart(
    out: Annotated[Path | None, typer.Option(
        help="Folder for everything the run writes (default: <output_dir>/quickstart).")]
    = None,
    leads: Annotated[int, typer.Option(min=100, help="Leads to simulate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """The main job end to end: simulate, validate, score with the points, train, compare
    and register the model, on the embedded defaults (local SQLite MLflow store)."""
    from predictive_scoring.cli.data import (
        run_simulation,
        score_with_rules,
        show_funnel,
        show_rule_stages,
    )
    from predictive_scoring.cli.train import TrainRequest, run_train
    from predictive_scoring.config import BaseConfig, RulesConfig, load_config
    from predictive_scoring.tracking import store

    base = load_config(base_config, BaseConfig)
    out = out or Path(base.output_dir) / "quickstart"
    config_path = run_simulation(leads, seed, out / "data", FileFormat.CSV, SIMULATED_CONFIG)
    config, dataset = load_checked(config_path, base_config, OnBadRows.FAIL, out / "quarantine")
    show_funnel(events_dataset(dataset, "quickstart"))
    rules_config = load_config(Path(config.rules), RulesConfig)
    scored = score_with_rules(rules_config, dataset, None)
    write_frame(scored, out / "rule_scores.csv")
    show_rule_stages(scored, rules_config)
    run_train(TrainRequest(config_path, DEFAULT_MODEL, out, base_config=base_config))
    console.print(f"[green]Done.[/] Everything is under {out}; the run is in the MLflow store "
                  f"({store.tracking_uri(base)}): `mlflow ui --backend-store-uri "
                  f"{store.tracking_uri(base)}` shows it.")
