"""The ``train`` command: learn, compare with the points, write, log and register."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from predictive_scoring.cli.common import (
    DEFAULT_BASE,
    DEFAULT_MODEL,
    MODELS_DIR,
    BadRowsOption,
    BaseOption,
    CapacityOption,
    ConfigOption,
    Engine,
    EngineOption,
    ExitCode,
    MaxRulesOption,
    ModelName,
    OnBadRows,
    PartitionsOption,
    SchedulerOption,
    WorkersOption,
    app,
    console,
    default_out,
    friendly,
    load_checked,
    progress_bar,
    sales_capacity,
    table,
)

if TYPE_CHECKING:
    from predictive_scoring.config import DatasetConfig, ModelConfig
    from predictive_scoring.distributed import DaskPlan
    from predictive_scoring.train import Examples, ModelChooser, TrainingPlan, TrainingRun
    from predictive_scoring.workflow.runs import RunOutcome, RunSettings


@dataclass(frozen=True)
class TrainRequest:
    """What ``train`` is asked: the dataset and model kind, where the results go, and the
    run's switches (the command's options, passed on as one object).

    Attributes:
        config: The dataset config file.
        model: The model kind (its settings: ``configs/models/NAME.yaml``).
        out: Folder for metrics.json, the plots, the report and quarantined rows.
        strict: Leakage warnings stop the run.
        register: Register the bundle (else the run is only logged).
        on_bad_rows: What to do with rows that fail validation.
        base_config: The project settings file.
        tune_trials: Hyper-parameter search trials before training (on this machine).
        max_rules: Most rules in the learned points table (None: the default).
        capacity: Sales capacity for the accuracy page (leads per week, or a share such
            as ``10%``; None: the project's ``training.sales_capacity``).
    """

    config: Path
    model: ModelName
    out: Path
    strict: bool = False
    register: bool = True
    on_bad_rows: OnBadRows = OnBadRows.FAIL
    base_config: Path = DEFAULT_BASE
    tune_trials: int = 0
    max_rules: int | None = None
    capacity: str | None = None

    @property
    def model_config(self) -> Path:
        """The model kind's settings file."""
        return MODELS_DIR / f"{self.model.value}.yaml"

    def plan(self, config: DatasetConfig) -> TrainingPlan:
        """The training plan: the dataset's config (read already), the model's, its
        points baseline and the project settings."""
        from predictive_scoring.config import BaseConfig, ModelConfig, RulesConfig, load_config
        from predictive_scoring.train import TrainingPlan

        return TrainingPlan(config, load_config(self.model_config, ModelConfig),
                            load_config(Path(config.rules), RulesConfig),
                            load_config(self.base_config, BaseConfig), self.strict)

    def config_files(self, plan: TrainingPlan) -> list[Path]:
        """The config files a run keeps with it: dataset, project, rules, model."""
        return [self.config, self.base_config, Path(plan.config.rules), self.model_config]

    def settings(self, plan: TrainingPlan, run_name: str, digest: str,
                 tags: dict[str, object] | None = None) -> RunSettings:
        """What the run writes, logs and registers."""
        from predictive_scoring.workflow.runs import RunSettings

        return RunSettings(self.out, run_name, digest, tuple(self.config_files(plan)),
                           self.register, self.max_rules,
                           sales_capacity(self.capacity, self.base_config), tags or {})


@app.command()
@friendly
def train(
    config: ConfigOption,
    model: Annotated[ModelName, typer.Option(
        help="Model kind (its settings: configs/models/NAME.yaml).")] = DEFAULT_MODEL,
    output: Annotated[Path | None, typer.Option(
        help="Folder for metrics.json and plots (default: <output_dir>/<dataset>).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on leakage warnings.")] = False,
    register: Annotated[bool, typer.Option(
        help="Register the model (alias challenger; champion when it beats the current "
        "one). --no-register still logs the run.")] = True,
    tune_trials: Annotated[int, typer.Option(
        "--tune", min=0, help="Hyper-parameter search trials on the validation slice "
        "(Optuna TPE), each a nested MLflow run; 0: train with the config's values.")] = 0,
    max_rules: MaxRulesOption = None,
    capacity: CapacityOption = None,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    engine: EngineOption = Engine.LOCAL,
    scheduler: SchedulerOption = "local",
    workers: WorkersOption = 2,
    partitions: PartitionsOption = 8,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Train a conversion model and compare it with the points on the same test leads."""
    request = TrainRequest(config, model, output or default_out(base_config, config), strict,
                           register, on_bad_rows, base_config, tune_trials, max_rules,
                           capacity)
    if engine is Engine.DASK:
        if tune_trials:
            raise ValueError("--tune runs with --engine local; tune there, then train on "
                             "the cluster with the tuned values in configs/models/")
        from predictive_scoring.distributed import DaskPlan

        run_train_dask(request, DaskPlan(scheduler, workers, partitions))
        return
    run_train(request)


def run_train(request: TrainRequest) -> RunOutcome:
    """Load, (tune,) train, compare with the champion and the points on the same leads,
    learn points, write metrics.json, plots and the report, log, register and promote;
    print what happened."""
    from predictive_scoring.data.dataset import dataset_files, fingerprint
    from predictive_scoring.workflow.runs import train_and_register
    from predictive_scoring.workflow.training import InMemorySource

    config, dataset = load_checked(request.config, request.base_config, request.on_bad_rows,
                                   request.out / "quarantine")
    plan = request.plan(config)
    digest = fingerprint(dataset_files(config, plan.base.resolved_data_dir()))
    settings = request.settings(plan, f"{request.model.value}-{digest[:6]}", digest)
    chooser = _tuner(plan, request.tune_trials) if request.tune_trials else None
    with console.status(f"Training {request.model.value} on '{config.name}'...") as status:
        outcome = train_and_register(InMemorySource(dataset), plan, settings, chooser,
                                     lambda step: status.update(f"{step}..."))
    show_outcome(outcome)
    exit_on_failure(outcome)
    return outcome


def run_train_dask(request: TrainRequest, dask: DaskPlan) -> RunOutcome:
    """Train on a Dask cluster, then write, log, register and promote as
    :func:`run_train` does."""
    from predictive_scoring import distributed
    from predictive_scoring.config import DatasetConfig, load_config
    from predictive_scoring.data.dataset import fingerprint
    from predictive_scoring.workflow.runs import train_and_register

    config = load_config(request.config, DatasetConfig)
    plan = request.plan(config)
    inputs = distributed.TrainingInputs.of(plan, request.on_bad_rows.value,
                                           request.out / "quarantine")
    digest = fingerprint(distributed.dataset_files(config, plan.base.resolved_data_dir()))
    settings = request.settings(plan, f"{request.model.value}-dask-{digest[:6]}", digest,
                                {"partitions": dask.partitions})
    with distributed.dask_client(dask.scheduler, dask.workers) as client, \
            console.status(f"Training {request.model.value} on '{config.name}' with "
                           "Dask...") as status:
        console.print(f"Dask cluster: {client.dashboard_link or client.scheduler.address}")
        with distributed.PartitionedSource(client, inputs, dask.partitions) as source:
            outcome = train_and_register(source, plan, settings, None,
                                         lambda step: status.update(f"{step}..."))
    console.print(table(f"Dataset '{config.name}' (events, by lead)", source.summary,
                         {c: "," for c in ("read", "kept", "quarantined", "problems")}))
    if source.quarantine_files:
        console.print("Quarantined rows written to "
                      f"{', '.join(map(str, source.quarantine_files))}")
    show_outcome(outcome)
    exit_on_failure(outcome)
    return outcome


def exit_on_failure(outcome: RunOutcome) -> None:
    """Exit with the failure's code when the promotion could not be decided."""
    if outcome.promotion.failure is not None:
        raise typer.Exit(int(FAILURE_CODES[outcome.promotion.failure]))


def show_outcome(outcome: RunOutcome) -> None:
    """Print a run's comparison, drivers, learned points, files and promotion."""
    run = outcome.trained.run
    show_comparison(run.metrics)
    show_drivers(run)
    learned = run.metrics.get("learned_points")
    if learned:
        console.print(f"Learned points: {learned['rules']} rules, test ROC-AUC "
                      f"{learned['roc_auc']:.4f}; the report's 'Learned points' section lists "
                      "them as edits to the current table.")
    folder = outcome.files[0].parent
    console.print(f"Metrics -> [bold]{folder / 'metrics.json'}[/]; global weights, plots and "
                  f"the report -> {folder}")
    show_promotion(outcome)


FAILURE_CODES = {"no_converters": ExitCode.BAD_DATA, "champion_unusable": ExitCode.NO_MODEL}
"""The exit code of a run whose promotion could not be decided (by ``Failure`` value)."""


VERDICTS = {"promoted": "is the new [bold]champion[/]", "first": "is the new "
            "[bold]champion[/] (the first)", "kept": "is the challenger; the champion stays",
            "not_promoted": "is not promoted"}


def show_promotion(outcome: RunOutcome) -> None:
    """Print the decision, its reason and the preview."""
    import pandas as pd

    promotion, preview = outcome.promotion, outcome.preview
    if outcome.version is None:
        console.print("Logged to MLflow (not registered).")
    else:
        console.print(f"Registered '{outcome.name}' version {outcome.version}: it "
                      f"{VERDICTS[promotion.decision]}.")
    style = "yellow" if promotion.failure is not None else None
    console.print(f"Promotion: {escape(promotion.reason)}.", style=style, highlight=False)
    if preview is None:
        return
    frame = pd.DataFrame({
        "on the same test leads": ["suggested stage up", "suggested stage down",
                                   f"handed to sales ({preview.handoff_stage}+)",
                                   "converters among them"],
        f"now ({preview.before})": ["", "", f"{preview.volume_before:,}",
                                    f"{preview.captured_before:,}"],
        "with the new model": [f"{v:,}" for v in (preview.moved_up, preview.moved_down,
                                                  preview.volume_after,
                                                  preview.captured_after)]})
    console.print(table(f"Promotion preview: {preview.n:,} test examples, "
                        f"{preview.converters:,} converted", frame))
    if len(preview.weights):
        console.print(table("Fields whose global weight moved most (mean |SHAP|)",
                            preview.weights, {"before": ".4f", "after": ".4f",
                                              "change": "+.4f"}))


def _tuner(plan: TrainingPlan, n_trials: int) -> ModelChooser:
    """A model chooser that runs the search, one nested MLflow run per trial."""
    from dataclasses import replace

    from predictive_scoring.models.tune import tune, tuned_config
    from predictive_scoring.tracking import store

    def choose(examples: Examples, rows: dict, model: ModelConfig) -> ModelConfig:
        with progress_bar() as progress:
            task = progress.add_task(f"Tuning {model.kind}", total=n_trials)

            def log_trial(number: int, params: dict, value: float) -> None:
                with store.start_run(plan.config.name, f"trial-{number}", nested=True):
                    store.log_params(params)
                    store.log_metrics({"valid_log_loss": value})
                progress.update(task, advance=1)

            result = tune(examples, rows, replace(plan, model=model), n_trials, log_trial)
        console.print(f"Best of {n_trials} trials (validation log loss "
                      f"{result.best_value:.4f}): {result.best_params}")
        return tuned_config(model, result.best_params)

    return choose


def show_drivers(run: TrainingRun, n: int = 10) -> None:
    """Print the strongest fields and the fit vs engagement weights (mean |SHAP|)."""
    weights = run.weights
    console.print(table(f"Top {n} drivers on the test leads (mean |SHAP|, log-odds)",
                         weights.importance.head(n), {"mean_abs": ".4f"}))
    console.print(table("Fit vs engagement", weights.groups, {"mean_abs": ".4f"}))


def show_comparison(metrics: dict) -> None:
    """Print model vs rules (vs oracle) on the same test rows, and the warnings."""
    import pandas as pd

    names = [n for n in ("model", "rules", "oracle") if metrics.get(n)]
    keys = ["roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_at_10",
            "captured_at_rules_volume"]
    frame = pd.DataFrame({"metric": keys} | {n: [metrics[n][k] for k in keys] for n in names})
    console.print(table(
        f"'{metrics['dataset']}': {metrics['n_test']:,} test examples, "
        f"{metrics['positive_rate_test']:.2%} converted", frame, dict.fromkeys(names, ".4f")))
    volume = metrics["handoff_volume_test"]
    console.print(
        f"At the rules' hand-off volume ({volume:,} test leads in MQL or later), the model's "
        f"selection holds [bold]{metrics['model']['captured_at_rules_volume']:.1%}[/] of the "
        f"eventual customers, the rules' {metrics['rules']['captured_at_rules_volume']:.1%}.")
    accounts = metrics.get("accounts")
    if accounts:
        oracle = (f", oracle {accounts['oracle_roc_auc']:.4f}" if "oracle_roc_auc" in accounts
                  else "")
        console.print(
            f"Accounts ({accounts['n_test']:,} test account snapshots): ROC-AUC account model "
            f"[bold]{accounts['model_roc_auc']:.4f}[/], points sum "
            f"{accounts['points_sum_roc_auc']:.4f}, points max "
            f"{accounts['points_max_roc_auc']:.4f}{oracle}; ECE {accounts['ece']:.4f}.")
    for warning in metrics["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for note in metrics["notes"]:
        console.print(f"note: {escape(note)}")
