"""The ``predictive-scoring`` command line: thin wrappers that parse options and call the
package. Errors print one clear paragraph and exit non-zero, never a traceback."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import numpy as np
import pandas as pd
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from predictive_scoring import distributed, evaluate, tracking
from predictive_scoring import rules as points
from predictive_scoring.config import (
    BaseConfig,
    ColumnNames,
    ConfigError,
    DatasetConfig,
    ModelConfig,
    ReadOptions,
    RulesConfig,
    load_config,
)
from predictive_scoring.data import (
    ROW,
    DataValidationError,
    EventsDataset,
    TableDataset,
    all_problems,
    checks_summary,
    data_end_of,
    dataset_files,
    describe_problems,
    fingerprint,
    load_dataset,
    parse_timestamps,
    read_scoring_events,
    write_quarantine,
)
from predictive_scoring.distributed import IncompleteOutput
from predictive_scoring.learned_points import LearnSettings, comparison, learn_points, write_rules
from predictive_scoring.models import score_0_100
from predictive_scoring.plots import (
    beeswarm_figure,
    calibration_figure,
    gain_figure,
    importance_figure,
    pr_figure,
    roc_figure,
    save_figures,
    score_distribution_figure,
    stage_conversion_figure,
)
from predictive_scoring.predict import count_rows, score_file
from predictive_scoring.report import report_data, write_report
from predictive_scoring.stages import FUNNEL, funnel_conversion, headline_rates
from predictive_scoring.synthetic import simulate_funnel, write_crm_export, write_funnel
from predictive_scoring.train import (
    Examples,
    ModelChooser,
    TrainingRun,
    bundle_example,
    examples_for_scorer,
    leakage_warnings,
    run_training,
    test_weights,
)
from predictive_scoring.tune import tune, tuned_config

app = typer.Typer(help="Lead scoring learned from historical lead behaviour, next to the "
                  "classic hand-set points.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
console = Console()
errors = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., object])


class OnBadRows(StrEnum):
    """What to do with rows that fail validation."""

    FAIL = "fail"
    QUARANTINE = "quarantine"


class FileFormat(StrEnum):
    """Output file format of the simulator."""

    CSV = "csv"
    PARQUET = "parquet"


class Layout(StrEnum):
    """How the simulator lays out its files."""

    CONTRACT = "contract"
    CRM = "crm"


BaseOption = Annotated[Path, typer.Option("--base-config", help="Project settings file.")]
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Dataset config YAML.")]
BadRowsOption = Annotated[OnBadRows, typer.Option(
    "--on-bad-rows", help="fail: stop on the first bad file; quarantine: write bad rows to "
    "a quarantine folder next to the output and go on with the rest.")]
DEFAULT_BASE = Path("configs/base.yaml")


class Engine(StrEnum):
    """Where training and scoring run."""

    LOCAL = "local"
    DASK = "dask"


EngineOption = Annotated[Engine, typer.Option(
    help="local: this machine (the default); dask: a Dask cluster (needs the [dask] extra; "
    "inputs are Parquet files, folders or globs every worker can read).")]
SchedulerOption = Annotated[str, typer.Option(
    help="--engine dask: a running scheduler's address (tcp://host:8786), or 'local' for "
    "a cluster of worker processes on this machine.")]
WorkersOption = Annotated[int, typer.Option(
    min=1, help="--engine dask --scheduler local: worker processes (one thread each).")]
PartitionsOption = Annotated[int, typer.Option(
    min=1, help="--engine dask: partitions of leads (more bounds each worker's memory).")]
SIMULATED_CONFIG = Path("configs/datasets/simulated.yaml")
CRM_EXAMPLE_CONFIG = Path("configs/datasets/example_crm_export.yaml")


def _fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def friendly(command: F) -> F:
    """Turn the package's errors into one clear paragraph and a non-zero exit code."""

    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> object:
        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            _fail(f"bad configuration: {exc}", 2)
        except DataValidationError as exc:
            _fail(str(exc), 1)
        except (ValueError, OSError, IncompleteOutput) as exc:
            _fail(str(exc), 1)

    return run  # type: ignore[return-value]


# --------------------------------------------------------------------------- helpers
def _table(title: str, frame: pd.DataFrame, formats: dict[str, str] | None = None) -> Table:
    table = Table(title=title, title_justify="left", min_width=len(title) + 2)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if column in (formats or {}) else "left",
                         overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(value, (formats or {}).get(col))
                        for col, value in zip(frame.columns, row, strict=True)])
    return table


def _cell(value: object, fmt: str | None) -> str:
    if fmt and isinstance(value, int | float) and not pd.isna(value):
        return format(value, fmt)
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _load(config_path: Path, base_path: Path, on_bad_rows: OnBadRows,
          quarantine_dir: Path) -> tuple[DatasetConfig, EventsDataset | TableDataset]:
    """Read, validate and report a dataset, applying the bad-rows policy."""
    config = load_config(config_path, DatasetConfig)
    base = load_config(base_path, BaseConfig)
    with console.status(f"Reading and validating dataset '{config.name}'..."):
        dataset = load_dataset(config, base.resolved_data_dir())
    console.print(_table(f"Dataset '{config.name}' ({config.shape})",
                         checks_summary(dataset.checks),
                         {c: "," for c in ("read", "kept", "quarantined", "problems")}))
    problems = all_problems(dataset.checks)
    if len(problems) and on_bad_rows is OnBadRows.FAIL:
        raise DataValidationError(problems, f"dataset '{config.name}' has bad rows (rerun "
                                  "with --on-bad-rows quarantine to set them aside)")
    if len(problems):
        written = write_quarantine(dataset.checks, quarantine_dir)
        console.print(escape(describe_problems(problems, "quarantined")), style="yellow",
                      highlight=False)
        console.print(f"Quarantined rows written to {', '.join(map(str, written))}")
    return config, dataset


def _events(dataset: EventsDataset | TableDataset, command: str) -> EventsDataset:
    if not isinstance(dataset, EventsDataset):
        raise ValueError(f"'{command}' needs an events-shaped dataset (leads, events and "
                         "stage changes); this dataset config has shape 'table'")
    return dataset


# --------------------------------------------------------------------------- commands
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
    if layout is Layout.CRM and file_format is not FileFormat.CSV:
        raise ValueError("--layout crm writes CSV files, as CRMs export them; drop --format")
    default = CRM_EXAMPLE_CONFIG if layout is Layout.CRM else SIMULATED_CONFIG
    config = load_config(dataset_config or default, DatasetConfig)
    with _progress() as progress:
        task = progress.add_task("Simulating leads", total=n_leads)
        funnel = simulate_funnel(n_leads, seed, config.snapshots.days_after_creation,
                                 config.snapshots.horizon_days,
                                 progress=lambda done: progress.update(task, completed=done))
    with console.status(f"Writing {file_format.value} files to {out}..."):
        written = (write_crm_export(funnel, out) if layout is Layout.CRM
                   else write_funnel(funnel, out, file_format.value))
    sizes = pd.DataFrame({"file": [str(p) for p in written.values()],
                          "rows": [len(getattr(funnel, name)) for name in written]})
    console.print(_table("Simulated funnel", sizes, {"rows": ","}))
    return write_dataset_config(config, out, {k: p.name for k, p in written.items()})


def write_dataset_config(config: DatasetConfig, root: Path, files: dict[str, str]) -> Path:
    """Write ``root/dataset.yaml``: ``config`` pointed at the files in ``root``."""
    moved = config.pointed_at(root, files)
    path = root / "dataset.yaml"
    body = yaml.safe_dump(moved.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    path.write_text(f"# Written by `predictive-scoring simulate`.\n{body}", encoding="utf-8")
    return path


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


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
    quarantine_dir = out or _default_out(base_config, config) / "quarantine"
    _load(config, base_config, on_bad_rows, quarantine_dir)
    console.print("[green]Validation finished.[/]")


def _default_out(base_config: Path, config: Path) -> Path:
    base = load_config(base_config, BaseConfig)
    return Path(base.output_dir) / load_config(config, DatasetConfig).name


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
    dataset_config, dataset = _load(config, base_config, on_bad_rows,
                                    output.parent / "quarantine")
    rules_config = load_config(rules or Path(dataset_config.rules), RulesConfig)
    scored = score_with_rules(rules_config, dataset,
                              parse_timestamp_option(as_of, dataset_config.read))
    _write_frame(scored, output)
    show_rule_stages(scored, rules_config)
    console.print(f"Scored {len(scored):,} leads -> [bold]{output}[/]")


def show_rule_stages(scored: pd.DataFrame, rules_config: RulesConfig) -> None:
    """Print how many leads the points put in each stage."""
    shares = scored["rule_stage"].value_counts().reindex([s.value for s in FUNNEL]).dropna()
    summary = pd.DataFrame({"stage": shares.index, "leads": shares.to_numpy(dtype=int),
                            "share": shares.to_numpy() / len(scored)})
    console.print(_table(f"Points baseline '{rules_config.name}'", summary,
                         {"leads": ",", "share": ".1%"}))


def score_with_rules(rules_config: RulesConfig, dataset: EventsDataset | TableDataset,
                     as_of: pd.Timestamp | None) -> pd.DataFrame:
    """Points, stage and fired rules per lead (events: as of one moment)."""
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


def parse_timestamp_option(text: str | None, read: ReadOptions) -> pd.Timestamp | None:
    """The ``--as-of`` option as a UTC timestamp, read like the dataset's timestamps."""
    if text is None:
        return None
    parsed = parse_timestamps(pd.Series([text]), read)
    if parsed.isna().iloc[0]:
        raise ValueError(f"--as-of {text!r} is not a timestamp (use ISO 8601, e.g. "
                         "2025-06-30T00:00:00Z)")
    return parsed.iloc[0]


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


@app.command()
@friendly
def funnel(
    config: ConfigOption,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Conversion rates between funnel stages, from the stage changes."""
    _, dataset = _load(config, base_config, on_bad_rows,
                       _default_out(base_config, config) / "quarantine")
    show_funnel(_events(dataset, "funnel"))


def show_funnel(dataset: EventsDataset) -> None:
    """Print the funnel table and the three headline rates."""
    conversion = funnel_conversion(dataset.stage_changes, len(dataset.leads))
    console.print(_table("Funnel", conversion.reset_index(),
                         {"reached": ",", "share_of_leads": ".1%", "rate_from_previous": ".1%"}))
    rates = headline_rates(conversion)
    console.print("Headline rates: " + ", ".join(
        f"{name.replace('_', ' ')} [bold]{value:.1%}[/]" for name, value in rates.items()))


class ModelKind(StrEnum):
    """The estimators configs/models/ describes."""

    LIGHTGBM = "lightgbm"
    LOGREG = "logreg"


MODELS_DIR = Path("configs/models")


@app.command()
@friendly
def train(
    config: ConfigOption,
    model: Annotated[ModelKind, typer.Option(help="Estimator (configs/models/NAME.yaml).")]
    = ModelKind.LIGHTGBM,
    output: Annotated[Path | None, typer.Option(
        help="Folder for metrics.json and plots (default: <output_dir>/<dataset>).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on leakage warnings.")] = False,
    register: Annotated[bool, typer.Option(
        help="Register the model (alias challenger; champion when it beats the current "
        "one). --no-register still logs the run.")] = True,
    tune_trials: Annotated[int, typer.Option(
        "--tune", min=0, help="Hyper-parameter search trials on the validation slice "
        "(Optuna TPE), each a nested MLflow run; 0: train with the config's values.")] = 0,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    engine: EngineOption = Engine.LOCAL,
    scheduler: SchedulerOption = "local",
    workers: WorkersOption = 2,
    partitions: PartitionsOption = 8,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Train a conversion model and compare it with the points on the same test leads."""
    out = output or _default_out(base_config, config)
    if engine is Engine.DASK:
        if tune_trials:
            raise ValueError("--tune runs with --engine local; tune there, then train on "
                             "the cluster with the tuned values in configs/models/")
        run_train_dask(config, model, out, strict, register, on_bad_rows, base_config,
                       DaskOptions(scheduler, workers, partitions))
        return
    run_train(config, model, out, strict, register, on_bad_rows, base_config, tune_trials)


def run_train(config_path: Path, model: ModelKind, out: Path, strict: bool, register: bool,
              on_bad_rows: OnBadRows, base_config: Path, tune_trials: int = 0) -> TrainingRun:
    """Load, (tune,) train, compare, write metrics.json and plots, log and register."""
    config, dataset = _load(config_path, base_config, on_bad_rows, out / "quarantine")
    base = load_config(base_config, BaseConfig)
    rules_path = Path(config.rules)
    model_path = MODELS_DIR / f"{model.value}.yaml"
    rules_config = load_config(rules_path, RulesConfig)
    model_config = load_config(model_path, ModelConfig)
    tracking.use_tracking(base)
    data_fingerprint = fingerprint(dataset_files(config, base.resolved_data_dir()))
    with tracking.start_run(config.name, f"{model.value}-{data_fingerprint[:6]}",
                            artifact_location=tracking.artifact_location(base)):
        chooser = _tuner(config, rules_config, base, tune_trials) if tune_trials else None
        with console.status(f"Training {model.value} on '{config.name}'..."):
            run = run_training(dataset, config, model_config, rules_config, base, strict,
                               chooser)
        with console.status("Learning points from the model and writing the report..."):
            extras = learn_and_report(run, dataset, base, out)
        outputs = [*write_training_outputs(run, base, out), *extras]
        events = dataset.events if isinstance(dataset, EventsDataset) else None
        with console.status("Logging the run and the model to MLflow..."):
            version = log_training(run, bundle_example(run, events, 3), config, base,
                                   data_fingerprint,
                                   [config_path, base_config, rules_path, model_path],
                                   outputs, register)
    _report_registry(base, version, run)
    return run


@dataclass(frozen=True)
class DaskOptions:
    """Where a Dask run goes and how finely it splits the leads."""

    scheduler: str
    workers: int
    partitions: int


def run_train_dask(config_path: Path, model: ModelKind, out: Path, strict: bool,
                   register: bool, on_bad_rows: OnBadRows, base_config: Path,
                   options: DaskOptions) -> TrainingRun:
    """Train on a Dask cluster, then write, log and register as :func:`run_train` does."""
    config = load_config(config_path, DatasetConfig)
    base = load_config(base_config, BaseConfig)
    rules_path, model_path = Path(config.rules), MODELS_DIR / f"{model.value}.yaml"
    inputs = distributed.TrainingInputs(
        config, load_config(model_path, ModelConfig), load_config(rules_path, RulesConfig),
        base, strict, on_bad_rows.value, out / "quarantine")
    tracking.use_tracking(base)
    data_fingerprint = fingerprint(distributed.dataset_files(config, base.resolved_data_dir()))
    with tracking.start_run(config.name, f"{model.value}-dask-{data_fingerprint[:6]}",
                            artifact_location=tracking.artifact_location(base)), \
            distributed.dask_client(options.scheduler, options.workers) as client, \
            console.status(f"Training {model.value} on '{config.name}' with Dask...") as status:
        console.print(f"Dask cluster: {client.dashboard_link or client.scheduler.address}")
        result = distributed.train_distributed(
            client, inputs, options.partitions,
            lambda stage: status.update(f"{stage} ({options.partitions} partitions)..."))
        console.print(_table(f"Dataset '{config.name}' (events, by lead)", result.summary,
                             {c: "," for c in ("read", "kept", "quarantined", "problems")}))
        if result.quarantine_files:
            console.print("Quarantined rows written to "
                          f"{', '.join(map(str, result.quarantine_files))}")
        outputs = write_training_outputs(result.run, base, out)
        tracking.set_tags({"engine": "dask", "partitions": options.partitions})
        status.update("Logging the run and the model to MLflow...")
        version = log_training(result.run, result.example, config, base, data_fingerprint,
                               [config_path, base_config, rules_path, model_path], outputs,
                               register)
    _report_registry(base, version, result.run)
    return result.run


def learn_and_report(run: TrainingRun, dataset: EventsDataset | TableDataset,
                     base: BaseConfig, out: Path) -> list[Path]:
    """learned_points.yaml and report.html of a training run; the learned table's test
    metrics go into ``run.metrics["learned_points"]``. Returns the files written."""
    events = dataset.events if isinstance(dataset, EventsDataset) else None
    scorer, rows = run.trained.scorer, run.trained.rows
    learned = learn_points(scorer, run.examples.frame, events, rows["train"])
    data = report_data(scorer, run.examples, rows, events, learned, run.weights,
                       base.training.handoff_stage, dataset_funnel(dataset), run.warnings,
                       run.metrics["notes"])
    run.metrics["learned_points"] = {k: float(v) for k, v in
                                     data.ranking.loc["learned points"].items()}
    header = "Learned points of this training run (predictive-scoring train)."
    return [write_rules(learned.rules, out / "learned_points.yaml", header),
            write_report(data, out / "report.html")]


def dataset_funnel(dataset: EventsDataset | TableDataset) -> pd.DataFrame | None:
    """Leads reaching each funnel stage (events shape); None for a table (no stages)."""
    if isinstance(dataset, EventsDataset):
        return funnel_conversion(dataset.stage_changes, len(dataset.leads))
    return None


def _tuner(config: DatasetConfig, rules_config: RulesConfig, base: BaseConfig,
           n_trials: int) -> ModelChooser:
    """A model chooser that runs the search, one nested MLflow run per trial."""

    def choose(examples: Examples, rows: dict, model: ModelConfig) -> ModelConfig:
        with _progress() as progress:
            task = progress.add_task(f"Tuning {model.kind}", total=n_trials)

            def log_trial(number: int, params: dict, value: float) -> None:
                with tracking.start_run(config.name, f"trial-{number}", nested=True):
                    tracking.log_params(params)
                    tracking.log_metrics({"valid_log_loss": value})
                progress.update(task, advance=1)

            result = tune(examples, rows, config, model, rules_config, base, n_trials,
                          log_trial)
        console.print(f"Best of {n_trials} trials (validation log loss "
                      f"{result.best_value:.4f}): {result.best_params}")
        return tuned_config(model, result.best_params)

    return choose


def write_training_outputs(run: TrainingRun, base: BaseConfig, out: Path) -> list[Path]:
    """metrics.json and the plots; print the comparison. Returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(run.metrics, indent=2, default=_json_value),
                            encoding="utf-8")
    importance_path = out / "global_importance.csv"
    run.weights.importance.to_csv(importance_path, index=False)
    plots = save_figures(training_figures(run, base), out / "plots")
    show_comparison(run.metrics)
    show_drivers(run)
    console.print(f"Metrics -> [bold]{metrics_path}[/]; global weights -> {importance_path}; "
                  f"plots -> {plots[0].parent}")
    return [metrics_path, importance_path, *plots]


def show_drivers(run: TrainingRun, n: int = 10) -> None:
    """Print the strongest fields and the fit vs engagement weights (mean |SHAP|)."""
    weights = run.weights
    console.print(_table(f"Top {n} drivers on the test leads (mean |SHAP|, log-odds)",
                         weights.importance.head(n), {"mean_abs": ".4f"}))
    console.print(_table("Fit vs engagement", weights.groups, {"mean_abs": ".4f"}))


def log_training(run: TrainingRun, example: pd.DataFrame, config: DatasetConfig,
                 base: BaseConfig, data_fingerprint: str, config_files: list[Path],
                 outputs: list[Path], register: bool) -> str | None:
    """Log params, metrics, files and the bundle in the active run; register the bundle.

    Args:
        run: The training run.
        example: A few raw leads in the bundle's input format.
        config: The dataset config.
        base: Project settings.
        data_fingerprint: Digest of the data files.
        config_files: Config files to keep with the run.
        outputs: metrics.json and the plots.
        register: Register the bundle.

    Returns:
        The registered version, or None when not registering.
    """
    tracking.log_params({"dataset": config.name, "model_kind": run.metrics["model_kind"],
                         "calibration": run.metrics["calibration"], **run.metrics["params"]})
    tracking.set_tags({"dataset_fingerprint": data_fingerprint,
                       "warnings": len(run.warnings)})
    tracking.log_metrics(run.metrics["model"])
    tracking.log_metrics({k: run.metrics[k] for k in ("rules", "oracle") if run.metrics[k]})
    tracking.log_dict({"warnings": run.warnings, "notes": run.metrics["notes"]},
                      "warnings.json")
    weights = run.weights
    tracking.log_metrics(dict(zip(weights.groups["group"], weights.groups["mean_abs"],
                                  strict=True)), "importance")
    tracking.log_dict({"features": weights.importance.to_dict(orient="records"),
                       "groups": weights.groups.to_dict(orient="records")},
                      "global_importance.json")
    tracking.log_files(config_files, "configs")
    tracking.log_files(outputs, "results")
    info = tracking.log_bundle(run.trained.scorer, example,
                               base.model_name(config.name) if register else None)
    return str(info.registered_model_version) if register else None


def _report_registry(base: BaseConfig, version: str | None, run: TrainingRun) -> None:
    if version is None:
        console.print("Logged to MLflow (not registered).")
        return
    training = base.training
    name = base.model_name(run.metrics["dataset"])
    promoted = tracking.promote_if_better(
        name, version, training.promotion_metric,
        training.promotion_higher_is_better, run.metrics["model"][training.promotion_metric])
    verdict = "is the new [bold]champion[/]" if promoted else "is the challenger"
    value = run.metrics["model"][training.promotion_metric]
    console.print(f"Registered '{name}' version {version}: it {verdict} "
                  f"({training.promotion_metric} {value:.4f}).")


def _json_value(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def training_figures(run: TrainingRun, base: BaseConfig) -> dict[str, object]:
    """The plots a person reads after training: model vs rules (vs oracle) on test."""
    test = run.trained.rows["test"]
    examples = run.examples
    y = examples.label[test]
    p_model = run.trained.test_probability
    scorers = {"model": p_model, "rules (points)": examples.rule_points[test]}
    probabilities = {"model": p_model}
    if examples.truth is not None:
        scorers["oracle"] = probabilities["oracle"] = examples.truth[test]
    stages = run.metrics["stages"]
    return {
        "roc": roc_figure(y, scorers),
        "precision_recall": pr_figure(y, scorers),
        "calibration": calibration_figure(y, probabilities, base.training.ece_bins),
        "gain": gain_figure(y, scorers, (0.05, 0.1, 0.2)),
        "score_distributions": score_distribution_figure(score_0_100(p_model),
                                                         examples.rule_points[test], y),
        "stage_conversion": stage_conversion_figure(
            pd.DataFrame.from_dict(stages["model"], orient="index"),
            pd.DataFrame.from_dict(stages["rules"], orient="index")),
        "shap_beeswarm": beeswarm_figure(run.weights.contributions.values,
                                         run.weights.features,
                                         run.weights.contributions.fields),
        "shap_importance": importance_figure(run.weights.importance, run.weights.groups),
    }


def show_comparison(metrics: dict) -> None:
    """Print model vs rules (vs oracle) on the same test rows, and the warnings."""
    names = [n for n in ("model", "rules", "oracle") if metrics.get(n)]
    keys = ["roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_at_10",
            "captured_at_rules_volume"]
    frame = pd.DataFrame({"metric": keys} | {n: [metrics[n][k] for k in keys] for n in names})
    console.print(_table(
        f"'{metrics['dataset']}': {metrics['n_test']:,} test examples, "
        f"{metrics['positive_rate_test']:.2%} converted", frame, dict.fromkeys(names, ".4f")))
    volume = metrics["handoff_volume_test"]
    console.print(
        f"At the rules' hand-off volume ({volume:,} test leads in MQL or later), the model's "
        f"selection holds [bold]{metrics['model']['captured_at_rules_volume']:.1%}[/] of the "
        f"eventual customers, the rules' {metrics['rules']['captured_at_rules_volume']:.1%}.")
    for warning in metrics["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for note in metrics["notes"]:
        console.print(f"note: {escape(note)}")


DatasetName = Annotated[str, typer.Option("--dataset", help="Dataset name (its config's "
                        "`name`); each dataset has its own registered model.")]


@app.command()
@friendly
def promote(
    dataset: DatasetName,
    version: Annotated[str, typer.Option(help="Registered version to make champion.")],
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Make a registered version the champion (the one serving and scoring load)."""
    base = load_config(base_config, BaseConfig)
    tracking.use_tracking(base)
    tracking.promote(base.model_name(dataset), version)
    console.print(f"'{base.model_name(dataset)}' version {version} is now the champion.")


@app.command()
@friendly
def rollback(dataset: DatasetName, base_config: BaseOption = DEFAULT_BASE) -> None:
    """Give the champion alias back to the version that held it before."""
    base = load_config(base_config, BaseConfig)
    tracking.use_tracking(base)
    version = tracking.rollback(base.model_name(dataset))
    console.print(f"'{base.model_name(dataset)}' champion rolled back to version {version}.")


@app.command()
@friendly
def export(
    dataset: DatasetName,
    out: Annotated[Path, typer.Option(help="Folder for the bundle (e.g. models/champion).")],
    alias: Annotated[str, typer.Option(help="Registry alias to export.")] = "champion",
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Copy a registered bundle to a folder that loads without a tracking server."""
    base = load_config(base_config, BaseConfig)
    tracking.use_tracking(base)
    path = tracking.export_bundle(base.model_name(dataset), alias, out)
    console.print(f"Exported '{base.model_name(dataset)}@{alias}' -> [bold]{path}[/]")


@app.command()
@friendly
def score(
    model: Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                       "runs:/..., or an exported folder.")],
    input: Annotated[Path, typer.Option("--input", help="Leads to score (.csv/.parquet).")],
    output: Annotated[Path, typer.Option(help="Scores (.csv or .parquet).")],
    events: Annotated[Path | None, typer.Option(help="The leads' events (events shape).")]
    = None,
    as_of: Annotated[str | None, typer.Option(
        help="Score as of this time (ISO 8601) where a row has no as_of; default: now.")]
    = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per chunk (bounds memory).")]
    = 200_000,
    engine: EngineOption = Engine.LOCAL,
    scheduler: SchedulerOption = "local",
    workers: WorkersOption = 2,
    partitions: PartitionsOption = 8,
    retries: Annotated[int, typer.Option(
        min=0, help="--engine dask: extra attempts for a partition that fails.")] = 2,
    reasons: Annotated[int, typer.Option(
        "--reasons", min=0, help="Top reasons per lead each way, as sentences in columns "
        "reason_up_1..K and reason_down_1..K (effects in score points); 0: none. Fit "
        "grade, engagement level and quadrant are always added.")] = 0,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Score a file of leads: probability, score, suggested stage, fit vs engagement,
    reasons, and the rules' points.

    With --engine dask, --input and --events are Parquet files, folders or globs and
    --output is a folder of part files (one per partition)."""
    base = load_config(base_config, BaseConfig)
    tracking.use_tracking(base)
    with console.status(f"Loading {model}..."):
        scorer = tracking.load_scorer(model)
    read = ReadOptions()
    moment = parse_timestamp_option(as_of, read) or pd.Timestamp.now(tz="UTC")
    if engine is Engine.DASK:
        score_dask(scorer, input, events, moment, output,
                   DaskOptions(scheduler, workers, partitions), retries, reasons)
        return
    event_frame = _scoring_events(events, read, output) if events else None
    total = count_rows(input, read)
    with _progress() as progress:
        task = progress.add_task("Scoring leads", total=total)
        summary = score_file(scorer, input, event_frame, moment, output, chunk_rows, read,
                             lambda done: progress.update(task, completed=done), reasons)
    console.print(f"Read {summary.rows_in:,} rows: {summary.rows_scored:,} scored, "
                  f"{summary.rows_failed:,} could not be scored -> [bold]{output}[/]")
    if summary.quarantine:
        console.print(f"[yellow]Rows that could not be scored (with reasons):[/] "
                      f"{summary.quarantine}")


def score_dask(scorer: object, leads: Path, events: Path | None, moment: pd.Timestamp,
               output: Path, options: DaskOptions, retries: int, reasons: int) -> None:
    """Score Parquet leads partition by partition on a Dask cluster; print the summary."""
    with distributed.dask_client(options.scheduler, options.workers) as client, \
            _progress() as progress:
        task = progress.add_task("Scoring partitions", total=options.partitions)
        summary = distributed.score_distributed(
            client, scorer, leads, events, moment, output, options.partitions, retries,
            done=lambda n: progress.update(task, completed=n), reasons=reasons)
    for partition, attempts in summary.retried.items():
        console.print(f"[yellow]partition {partition} failed {len(attempts)} time(s) and "
                      f"succeeded on retry;[/] last error: {escape(attempts[-1])}")
    console.print(f"Read {summary.rows_in:,} rows: {summary.rows_scored:,} scored, "
                  f"{summary.rows_failed:,} could not be scored -> [bold]{output}[/] "
                  f"({summary.partitions} part files; rows in = rows out)")
    for path in (summary.quarantine, summary.events_quarantine):
        if path:
            console.print(f"[yellow]Rows that could not be used (with reasons):[/] {path}")


def _scoring_events(path: Path, read: ReadOptions, output: Path) -> pd.DataFrame:
    with console.status(f"Reading events from {path}..."):
        events, bad = read_scoring_events(path, read, ColumnNames())
    if len(bad):
        quarantine = output.with_name(f"{output.stem}.events.quarantine.csv")
        quarantine.parent.mkdir(parents=True, exist_ok=True)
        bad.rename(columns={ROW: "row"}).to_csv(quarantine, index=False)
        console.print(f"[yellow]{len(bad):,} event rows could not be used[/] -> {quarantine}")
    return events


@app.command("learn-points")
@friendly
def learn_points_command(
    model: Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                       "runs:/..., or an exported folder.")],
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="Points table to write (YAML, the rules format), "
                                      "e.g. configs/rules/learned.yaml.")],
    points_per_doubling: Annotated[float, typer.Option(
        min=1, help="Points that double a lead's odds of converting (the table's scale).")]
    = LearnSettings.points_per_doubling,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Turn a model into a points table the rules engine (and a CRM) can use, and compare it
    with the model and the hand-set points on the same test leads."""
    base = load_config(base_config, BaseConfig)
    tracking.use_tracking(base)
    with console.status(f"Loading {model}..."):
        scorer = tracking.load_scorer(model)
    dataset_config, dataset = _load(config, base_config, on_bad_rows, out.parent / "quarantine")
    with console.status("Rebuilding the training and test examples..."):
        examples, rows, _ = examples_for_scorer(scorer, dataset, dataset_config, base.training)
    events = dataset.events if isinstance(dataset, EventsDataset) else None
    with console.status("Learning points from the model..."):
        learned = learn_points(scorer, examples.frame, events, rows["train"],
                               LearnSettings(points_per_doubling=points_per_doubling))
    write_rules(learned.rules, out, f"Learned points: `predictive-scoring learn-points "
                f"--model {tracking.redact(model)}`.")
    test = rows["test"]
    table = comparison(scorer, learned, examples.frame.iloc[test], events,
                       examples.label[test], examples.rule_points[test],
                       _handoff_volume(examples, rows, scorer.rules, base))
    console.print(_table(f"'{dataset_config.name}': {len(test):,} test examples, ranked by "
                         "each scorer", table.reset_index(), dict.fromkeys(table.columns, ".4f")))
    console.print(f"{len(learned.rules.event_rules)} event rules and "
                  f"{len(learned.rules.attribute_rules)} attribute rules (of "
                  f"{learned.n_candidates} candidates) -> [bold]{out}[/]")


@app.command()
@friendly
def report(
    model: Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                       "runs:/..., or an exported folder.")],
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="The HTML report to write.")] = Path("report.html"),
    points_out: Annotated[Path | None, typer.Option(
        help="Also write the learned points table (YAML) here.")] = None,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """The marketing-ops comparison report (one self-contained HTML file): model vs
    hand-set points vs learned points on the model's test leads."""
    base = load_config(base_config, BaseConfig)
    tracking.use_tracking(base)
    with console.status(f"Loading {model}..."):
        scorer = tracking.load_scorer(model)
    dataset_config, dataset = _load(config, base_config, on_bad_rows, out.parent / "quarantine")
    events = dataset.events if isinstance(dataset, EventsDataset) else None
    with console.status("Rebuilding the examples and learning points from the model..."):
        examples, rows, notes = examples_for_scorer(scorer, dataset, dataset_config,
                                                    base.training)
        warnings = leakage_warnings(examples.frame, examples.label, rows, examples.columns,
                                    base.training.leakage_auc)
        learned = learn_points(scorer, examples.frame, events, rows["train"])
    with console.status("Drawing the figures and writing the report..."):
        weights = test_weights(scorer, examples, rows["test"], base.training.seed)
        data = report_data(scorer, examples, rows, events, learned, weights,
                           base.training.handoff_stage, dataset_funnel(dataset), warnings,
                           notes)
        write_report(data, out)
    if points_out is not None:
        write_rules(learned.rules, points_out, f"Learned points: `predictive-scoring report "
                    f"--model {tracking.redact(model)}`.")
    console.print(_table("Ranked on the test leads", data.ranking.reset_index(),
                         dict.fromkeys(data.ranking.columns, ".4f")))
    console.print(f"Report -> [bold]{out}[/]")


def _handoff_volume(examples: Examples, rows: dict, rules_config: RulesConfig,
                    base: BaseConfig) -> int:
    """Test leads the hand-set rules put at the hand-off stage or later."""
    names = [s.value for s in FUNNEL if s in rules_config.stage_thresholds]
    return evaluate.volume_of_stages(examples.rule_stage[rows["test"]],
                                     base.training.handoff_stage.value, names)


SERVICE_ENV = "PREDICTIVE_SCORING_"


@app.command()
@friendly
def serve(
    model: Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                       "or an exported folder (e.g. models/champion).")],
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you say so).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    prediction_log: Annotated[str | None, typer.Option(
        help="Log every score to this database URL (e.g. sqlite:///out/predictions.db or "
        "postgresql+psycopg://user@host/db).")] = None,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Serve scores over HTTP. API keys come from the environment:
    PREDICTIVE_SCORING_API_KEYS (and PREDICTIVE_SCORING_ADMIN_KEYS for reload),
    comma-separated; every other PREDICTIVE_SCORING_* setting is read there too."""
    import uvicorn

    if not os.environ.get(f"{SERVICE_ENV}API_KEYS"):
        raise ValueError(f"set {SERVICE_ENV}API_KEYS to one or more comma-separated keys "
                         "(at least 16 characters each): the service never runs without "
                         "authentication")
    # The service reads its settings from the environment, in every worker process.
    os.environ[f"{SERVICE_ENV}MODEL_URI"] = model
    os.environ[f"{SERVICE_ENV}BASE_CONFIG"] = str(base_config)
    if prediction_log:
        os.environ[f"{SERVICE_ENV}PREDICTION_LOG"] = "true"
        os.environ[f"{SERVICE_ENV}PREDICTION_LOG_URL"] = prediction_log
    console.print(f"Serving {tracking.redact(model)} on http://{host}:{port} "
                  f"({workers} worker{'s' if workers > 1 else ''}); docs at /docs")
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port,
                workers=workers, access_log=False, log_level="info")


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
    base = load_config(base_config, BaseConfig)
    out = out or Path(base.output_dir) / "quickstart"
    config_path = run_simulation(leads, seed, out / "data", FileFormat.CSV, SIMULATED_CONFIG)
    config, dataset = _load(config_path, base_config, OnBadRows.FAIL, out / "quarantine")
    show_funnel(_events(dataset, "quickstart"))
    rules_config = load_config(Path(config.rules), RulesConfig)
    scored = score_with_rules(rules_config, dataset, None)
    _write_frame(scored, out / "rule_scores.csv")
    show_rule_stages(scored, rules_config)
    run_train(config_path, ModelKind.LIGHTGBM, out, False, True, OnBadRows.FAIL, base_config)
    console.print(f"[green]Done.[/] Everything is under {out}; the run is in the MLflow store "
                  f"({tracking.tracking_uri(base)}): `mlflow ui --backend-store-uri "
                  f"{tracking.tracking_uri(base)}` shows it.")


if __name__ == "__main__":
    app()
