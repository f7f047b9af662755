"""The ``train`` command: learn, compare with the points, write, log and register."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    import pandas as pd

    from predictive_scoring.config import BaseConfig, Capacity, DatasetConfig, ModelConfig
    from predictive_scoring.data.dataset import EventsDataset, TableDataset
    from predictive_scoring.distributed import DaskPlan
    from predictive_scoring.train import Examples, ModelChooser, TrainingPlan, TrainingRun


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


def run_train(request: TrainRequest) -> TrainingRun:
    """Load, (tune,) train, compare, learn points, write metrics.json, plots and the
    report, log and register."""
    from predictive_scoring.accounts.training import add_accounts
    from predictive_scoring.data.dataset import EventsDataset, dataset_files, fingerprint
    from predictive_scoring.tracking import store
    from predictive_scoring.train import bundle_example, run_training

    out, model = request.out, request.model.value
    config, dataset = load_checked(request.config, request.base_config, request.on_bad_rows,
                                   out / "quarantine")
    plan = request.plan(config)
    base = plan.base
    capacity_used = sales_capacity(request.capacity, request.base_config)
    store.use_tracking(base)
    data_fingerprint = fingerprint(dataset_files(config, base.resolved_data_dir()))
    with store.start_run(config.name, f"{model}-{data_fingerprint[:6]}",
                         artifact_location=store.artifact_location(base)):
        chooser = _tuner(plan, request.tune_trials) if request.tune_trials else None
        with console.status(f"Training {model} on '{config.name}'..."):
            run = run_training(dataset, plan, chooser)
        with console.status("Learning the account scores..."):
            add_accounts(run, dataset, plan)
        with console.status("Learning points from the model and writing the report..."):
            extras = learn_and_report(run, dataset, base, out, request.max_rules,
                                      capacity_used)
        outputs = [*write_training_outputs(run, base, out), *extras]
        events = dataset.events if isinstance(dataset, EventsDataset) else None
        with console.status("Logging the run and the model to MLflow..."):
            version = log_training(run, bundle_example(run, events, 3), request, plan,
                                   data_fingerprint, outputs)
    _report_registry(base, version, run)
    return run


def run_train_dask(request: TrainRequest, dask: DaskPlan) -> TrainingRun:
    """Train on a Dask cluster, then write, log and register as :func:`run_train` does."""
    from predictive_scoring import distributed
    from predictive_scoring.config import DatasetConfig, load_config
    from predictive_scoring.data.dataset import fingerprint
    from predictive_scoring.tracking import store

    out, model = request.out, request.model.value
    config = load_config(request.config, DatasetConfig)
    plan = request.plan(config)
    base = plan.base
    inputs = distributed.TrainingInputs.of(plan, request.on_bad_rows.value, out / "quarantine")
    store.use_tracking(base)
    data_fingerprint = fingerprint(distributed.dataset_files(config, base.resolved_data_dir()))
    with store.start_run(config.name, f"{model}-dask-{data_fingerprint[:6]}",
                         artifact_location=store.artifact_location(base)), \
            distributed.dask_client(dask.scheduler, dask.workers) as client, \
            console.status(f"Training {model} on '{config.name}' with Dask...") as status:
        console.print(f"Dask cluster: {client.dashboard_link or client.scheduler.address}")
        result = distributed.train_distributed(
            client, inputs, dask.partitions,
            lambda stage: status.update(f"{stage} ({dask.partitions} partitions)..."))
        console.print(table(f"Dataset '{config.name}' (events, by lead)", result.summary,
                             {c: "," for c in ("read", "kept", "quarantined", "problems")}))
        if result.quarantine_files:
            console.print("Quarantined rows written to "
                          f"{', '.join(map(str, result.quarantine_files))}")
        if config.accounts is not None:
            result.run.metrics["notes"].append(
                "accounts: the Dask engine learns no account model; train on one machine "
                "(--engine local) for account scores")
        outputs = write_training_outputs(result.run, base, out)
        store.set_tags({"engine": "dask", "partitions": dask.partitions})
        status.update("Logging the run and the model to MLflow...")
        version = log_training(result.run, result.example, request, plan, data_fingerprint,
                               outputs)
    _report_registry(base, version, result.run)
    return result.run


def learn_and_report(run: TrainingRun, dataset: EventsDataset | TableDataset,
                     base: BaseConfig, out: Path, max_rules: int | None,
                     capacity: Capacity) -> list[Path]:
    """learned_points.yaml and report.html of a training run; the learned table's test
    metrics go into ``run.metrics["learned_points"]`` and the accuracy page into
    ``run.metrics["accuracy_page"]``. Returns the files written."""
    from predictive_scoring.cli.report import learn_settings
    from predictive_scoring.data.dataset import EventsDataset
    from predictive_scoring.learned_points import learn_points, write_rules
    from predictive_scoring.reporting.report import report_data
    from predictive_scoring.reporting.sections import write_report

    events = dataset.events if isinstance(dataset, EventsDataset) else None
    scorer, rows = run.trained.scorer, run.trained.rows
    learned = learn_points(scorer, run.examples.frame, events, rows["train"],
                           run.examples.label, learn_settings(max_rules))
    data = report_data(scorer, run.examples, rows, events, learned, run.weights,
                       base.training.handoff_stage, capacity, dataset_funnel(dataset),
                       run.warnings, run.metrics["notes"])
    data = replace(data, accounts=run.accounts)
    rules = learned.rules
    run.metrics["learned_points"] = {
        **{k: float(v) for k, v in data.ranking.loc["learned points"].items()},
        "rules": len(rules.event_rules) + len(rules.attribute_rules),
        "starting_points": rules.starting_points, "fidelity": learned.fidelity,
        "edits": data.edits["change"].value_counts().to_dict()}
    run.metrics["accuracy_page"] = data.accuracy
    console.print(f"Learned points: {run.metrics['learned_points']['rules']} rules, test "
                  f"ROC-AUC {run.metrics['learned_points']['roc_auc']:.4f}; the report's "
                  "'Learned points' section lists them as edits to the current table.")
    header = "Learned points of this training run (predictive-scoring train)."
    return [write_rules(rules, out / "learned_points.yaml", header),
            write_report(data, out / "report.html")]


def dataset_funnel(dataset: EventsDataset | TableDataset) -> pd.DataFrame | None:
    """Leads reaching each funnel stage (events shape); None for a table (no stages)."""
    from predictive_scoring.data.dataset import EventsDataset
    from predictive_scoring.stages import funnel_conversion

    if isinstance(dataset, EventsDataset):
        return funnel_conversion(dataset.stage_changes, len(dataset.leads))
    return None


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


def write_training_outputs(run: TrainingRun, base: BaseConfig, out: Path) -> list[Path]:
    """metrics.json and the plots; print the comparison. Returns the files written."""
    import json

    from predictive_scoring.reporting.plots import save_figures

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
    console.print(table(f"Top {n} drivers on the test leads (mean |SHAP|, log-odds)",
                         weights.importance.head(n), {"mean_abs": ".4f"}))
    console.print(table("Fit vs engagement", weights.groups, {"mean_abs": ".4f"}))


def log_training(run: TrainingRun, example: pd.DataFrame, request: TrainRequest,
                 plan: TrainingPlan, data_fingerprint: str, outputs: list[Path]) -> str | None:
    """Log params, metrics, files and the bundle in the active run; register the bundle.

    Args:
        run: The training run.
        example: A few raw leads in the bundle's input format.
        request: The command's request (its config files; whether to register).
        plan: The run's configs.
        data_fingerprint: Digest of the data files.
        outputs: metrics.json, the plots and the other files the run wrote.

    Returns:
        The registered version, or None when not registering.
    """
    from predictive_scoring.tracking import bundle, store

    name = plan.config.name
    store.log_params({"dataset": name, "model_kind": run.metrics["model_kind"],
                      "calibration": run.metrics["calibration"], **run.metrics["params"]})
    store.set_tags({"dataset_fingerprint": data_fingerprint, "warnings": len(run.warnings)})
    store.log_metrics(run.metrics["model"])
    store.log_metrics({k: run.metrics[k] for k in ("rules", "oracle") if run.metrics[k]})
    store.log_metrics(run.metrics.get("accounts") or {}, "accounts")
    store.log_dict({"warnings": run.warnings, "notes": run.metrics["notes"]}, "warnings.json")
    weights = run.weights
    store.log_metrics(dict(zip(weights.groups["group"], weights.groups["mean_abs"],
                               strict=True)), "importance")
    store.log_dict({"features": weights.importance.to_dict(orient="records"),
                    "groups": weights.groups.to_dict(orient="records")},
                   "global_importance.json")
    store.log_files(request.config_files(plan), "configs")
    store.log_files(outputs, "results")
    registered = plan.base.model_name(name) if request.register else None
    info = bundle.log_bundle(run.trained.scorer, example, registered)
    return None if registered is None else str(info.registered_model_version)


def _report_registry(base: BaseConfig, version: str | None, run: TrainingRun) -> None:
    """Promote a registered version if it beats the champion, and say what happened."""
    from predictive_scoring.tracking import registry

    if version is None:
        console.print("Logged to MLflow (not registered).")
        return
    training = base.training
    name = base.model_name(run.metrics["dataset"])
    promoted = registry.promote_if_better(
        name, version, training.promotion_metric,
        training.promotion_higher_is_better, run.metrics["model"][training.promotion_metric])
    verdict = "is the new [bold]champion[/]" if promoted else "is the challenger"
    value = run.metrics["model"][training.promotion_metric]
    console.print(f"Registered '{name}' version {version}: it {verdict} "
                  f"({training.promotion_metric} {value:.4f}).")


def _json_value(value: object) -> object:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def training_figures(run: TrainingRun, base: BaseConfig) -> dict[str, object]:
    """The plots a person reads after training: model vs rules (vs oracle) on test."""
    import pandas as pd

    from predictive_scoring.models.scorer import score_0_100
    from predictive_scoring.reporting.driver_plots import beeswarm_figure, importance_figure
    from predictive_scoring.reporting.plots import (
        calibration_figure,
        gain_figure,
        pr_figure,
        roc_figure,
        score_distribution_figure,
        stage_conversion_figure,
    )

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
