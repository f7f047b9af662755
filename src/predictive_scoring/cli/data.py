"""Data commands: simulate a funnel, validate a dataset, score it with the points, and
show its funnel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from predictive_scoring.cli.common import (
    CRM_EXAMPLE_CONFIG,
    DEFAULT_BASE,
    SIMULATED_CONFIG,
    BadRowsOption,
    BaseOption,
    ConfigOption,
    FileFormat,
    Layout,
    OnBadRows,
    app,
    console,
    default_out,
    events_dataset,
    friendly,
    load_checked,
    parse_timestamp_option,
    progress_bar,
    table,
    write_frame,
)

if TYPE_CHECKING:
    import pandas as pd

    from predictive_scoring.config import DatasetConfig, RulesConfig
    from predictive_scoring.data.dataset import EventsDataset, TableDataset


@app.command()
@friendly
def simulate(
    leads: Annotated[int, typer.Option(min=1, help="Number of leads to simulate.")],
    out: Annotated[Path, typer.Option(help="Folder for the simulated files.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")]
    = 7,
    file_format: Annotated[FileFormat, typer.Option("--format", help="File format.")]
    = FileFormat.CSV,
    layout: Annotated[Layout, typer.Option(
        help="contract: the project's own file layout, with the true probabilities; crm: "
        "laid out like a HubSpot export (CSV, its column, activity and stage names, local "
        "times), as configs/datasets/example_crm_export.yaml reads it.")] = Layout.CONTRACT,
    dataset_config: Annotated[Path | None, typer.Option(
        help="Dataset config whose snapshot settings set the truth file's snapshots "
        "(default: simulated.yaml, or example_crm_export.yaml for --layout crm).")] = None,
) -> None:
    """Simulate a B2B funnel with known true conversion probabilities."""
    path = run_simulation(leads, seed, out, file_format, dataset_config, layout)
    console.print(f"Dataset config for these files: [bold]{path}[/]")


def run_simulation(n_leads: int, seed: int, out: Path, file_format: FileFormat,
                   dataset_config: Path | None = None,
                   layout: Layout = Layout.CONTRACT) -> Path:
    """Simulate, write the files and a dataset config pointing at them; return its path."""
    import pandas as pd

    from predictive_scoring.config import DatasetConfig, load_config
    from predictive_scoring.data.synthetic import simulate_funnel, write_crm_export, write_funnel

    if layout is Layout.CRM and file_format is not FileFormat.CSV:
        raise ValueError("--layout crm writes CSV files, as CRMs export them; drop --format")
    default = CRM_EXAMPLE_CONFIG if layout is Layout.CRM else SIMULATED_CONFIG
    config = load_config(dataset_config or default, DatasetConfig)
    with progress_bar() as progress:
        task = progress.add_task("Simulating leads", total=n_leads)
        funnel = simulate_funnel(n_leads, seed, config.snapshots.days_after_creation,
                                 config.snapshots.horizon_days,
                                 progress=lambda done: progress.update(task, completed=done))
    with console.status(f"Writing {file_format.value} files to {out}..."):
        written = (write_crm_export(funnel, out) if layout is Layout.CRM
                   else write_funnel(funnel, out, file_format.value))
    sizes = pd.DataFrame({"file": [str(p) for p in written.values()],
                          "rows": [len(getattr(funnel, name)) for name in written]})
    console.print(table("Simulated funnel", sizes, {"rows": ","}))
    return write_dataset_config(config, out, {k: p.name for k, p in written.items()})


def write_dataset_config(config: DatasetConfig, root: Path, files: dict[str, str]) -> Path:
    """Write ``root/dataset.yaml``: ``config`` pointed at the files in ``root``."""
    import yaml

    moved = config.pointed_at(root, files)
    path = root / "dataset.yaml"
    body = yaml.safe_dump(moved.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    path.write_text(f"# Written by `predictive-scoring simulate`.\n{body}", encoding="utf-8")
    return path


@app.command()
@friendly
def validate(
    config: ConfigOption,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    out: Annotated[Path | None, typer.Option(
        help="Folder for quarantine files (default: <output_dir>/<dataset>/quarantine).")]
    = None,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Read and validate a dataset; report rows read, kept and quarantined."""
    quarantine_dir = out or default_out(base_config, config) / "quarantine"
    load_checked(config, base_config, on_bad_rows, quarantine_dir)
    console.print("[green]Validation finished.[/]")


@app.command("rules")
@friendly
def rules_command(
    config: ConfigOption,
    output: Annotated[Path, typer.Option(help="Scored leads (.csv or .parquet).")],
    rules: Annotated[Path | None, typer.Option(
        help="Rules YAML (default: the one the dataset config names).")] = None,
    as_of: Annotated[str | None, typer.Option(
        help="Score as of this time (ISO 8601); default: the end of the data.")] = None,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Score every lead with the points baseline: points, stage and the rules that fired."""
    from predictive_scoring.config import RulesConfig, load_config

    dataset_config, dataset = load_checked(config, base_config, on_bad_rows,
                                    output.parent / "quarantine")
    rules_config = load_config(rules or Path(dataset_config.rules), RulesConfig)
    scored = score_with_rules(rules_config, dataset,
                              parse_timestamp_option(as_of, dataset_config.read))
    write_frame(scored, output)
    show_rule_stages(scored, rules_config)
    console.print(f"Scored {len(scored):,} leads -> [bold]{output}[/]")


def show_rule_stages(scored: pd.DataFrame, rules_config: RulesConfig) -> None:
    """Print how many leads the points put in each stage."""
    import pandas as pd

    from predictive_scoring.stages import FUNNEL

    shares = scored["rule_stage"].value_counts().reindex([s.value for s in FUNNEL]).dropna()
    summary = pd.DataFrame({"stage": shares.index, "leads": shares.to_numpy(dtype=int),
                            "share": shares.to_numpy() / len(scored)})
    console.print(table(f"Points baseline '{rules_config.name}'", summary,
                         {"leads": ",", "share": ".1%"}))


def score_with_rules(rules_config: RulesConfig, dataset: EventsDataset | TableDataset,
                     as_of: pd.Timestamp | None) -> pd.DataFrame:
    """Points, stage and fired rules per lead (events: as of one moment)."""
    from predictive_scoring import rules as points
    from predictive_scoring.data.dataset import TableDataset
    from predictive_scoring.data.snapshots import data_end_of

    if isinstance(dataset, TableDataset):
        points.check_rule_fields(rules_config, dataset.table.columns, rules_config.name)
        result = points.score_points(rules_config, dataset.table, None)
        scored = dataset.table[["lead_id"]].copy()
    else:
        moment = data_end_of(dataset) if as_of is None else as_of
        leads = dataset.leads.loc[dataset.leads["created_at"] <= moment].assign(as_of=moment)
        if len(leads) < len(dataset.leads):
            console.print(f"{len(dataset.leads) - len(leads):,} leads created after {moment} "
                          "are not scored (they did not exist yet).")
        points.check_rule_fields(rules_config, leads.columns, rules_config.name)
        result = points.score_points(rules_config, leads, dataset.events)
        scored = leads[["lead_id", "as_of"]].copy()
    return scored.assign(rule_points=result.points, rule_stage=result.stage,
                         fired_rules=result.fired_text()).reset_index(drop=True)


@app.command()
@friendly
def funnel(
    config: ConfigOption,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Conversion rates between funnel stages, from the stage changes."""
    _, dataset = load_checked(config, base_config, on_bad_rows,
                       default_out(base_config, config) / "quarantine")
    show_funnel(events_dataset(dataset, "funnel"))


def show_funnel(dataset: EventsDataset) -> None:
    """Print the funnel table and the three headline rates."""
    from predictive_scoring.stages import funnel_conversion, headline_rates

    conversion = funnel_conversion(dataset.stage_changes, len(dataset.leads))
    console.print(table("Funnel", conversion.reset_index(),
                         {"reached": ",", "share_of_leads": ".1%", "rate_from_previous": ".1%"}))
    rates = headline_rates(conversion)
    console.print("Headline rates: " + ", ".join(
        f"{name.replace('_', ' ')} [bold]{value:.1%}[/]" for name, value in rates.items()))
