"""The ``quickstart`` command: the main job end to end on the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from predictive_scoring.data.dataset import EventsDataset


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
    from predictive_scoring.tracking import registry, store

    base = load_config(base_config, BaseConfig)
    out = out or Path(base.output_dir) / "quickstart"
    config_path = run_simulation(leads, seed, out / "data", FileFormat.CSV, SIMULATED_CONFIG)
    config, dataset = load_checked(config_path, base_config, OnBadRows.FAIL, out / "quarantine")
    show_funnel(events_dataset(dataset, "quickstart"))
    rules_config = load_config(Path(config.rules), RulesConfig)
    scored = score_with_rules(rules_config, dataset, None)
    write_frame(scored, out / "rule_scores.csv")
    show_rule_stages(scored, rules_config)
    outcome = run_train(TrainRequest(config_path, DEFAULT_MODEL, out, base_config=base_config))
    has_accounts = getattr(outcome.trained.run.trained.scorer, "accounts", None) is not None
    name = base.model_name(config.name)
    aliases = registry.aliases(name)
    alias = next((a for a in (registry.CHAMPION, registry.CHALLENGER) if a in aliases), None)
    model_uri = f"models:/{name}@{alias}" if alias else f"models:/{name}"
    console.print(f"[green]Done.[/] Everything is under {out}. The comparison report is "
                  f"[bold]{out / 'report.html'}[/]; the model is [bold]{model_uri}[/]"
                  f"{f' (version {aliases[alias]})' if alias else ''} in the MLflow store "
                  f"({store.redact(store.tracking_uri(base))}; `mlflow ui --backend-store-uri "
                  f"{store.redact(store.tracking_uri(base))}` shows the run).", soft_wrap=True)
    console.print(next_commands(model_uri, out, config_path, data_end_text(dataset),
                                has_accounts),
                  soft_wrap=True, highlight=False)


def data_end_text(dataset: EventsDataset) -> str:
    """The last moment the simulated data covers, as ISO 8601: a moment at which every lead
    exists, to score them all."""
    from predictive_scoring.data.snapshots import data_end_of

    return data_end_of(dataset).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_commands(model_uri: str, out: Path, config_path: Path, as_of: str,
                  has_accounts: bool = False) -> str:
    """What to run next on the quickstart's model: score (with the account scores when the
    model learnt an account model), serve, report."""
    data = config_path.parent
    accounts = f" --accounts {out / 'accounts.csv'}" if has_accounts else ""
    return "\n".join([
        "Next:",
        f"  predictive-scoring score --model {model_uri} --input {data / 'leads.csv'} "
        f"--events {data / 'events.csv'} --as-of {as_of} --reasons 3 "
        f"--output {out / 'scores.csv'}{accounts}",
        f"  PREDICTIVE_SCORING_API_KEYS=<a key of 16+ characters> predictive-scoring serve "
        f"--model {model_uri}",
        f"  predictive-scoring report --model {model_uri} --config {config_path} "
        f"--out {out / 'report.html'}",
    ])
