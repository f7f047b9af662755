"""A training run end to end: train (either engine), compare with the champion and the
points on the same leads, learn points and write the report, log to MLflow, register and
promote. ``train``, ``retrain`` and ``quickstart`` run it; so can a notebook or a
scheduler (nothing here prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from predictive_scoring.config import Capacity
from predictive_scoring.train import ModelChooser, TrainingPlan
from predictive_scoring.workflow.outputs import (
    ReportSettings,
    learn_and_report,
    log_promotion,
    log_run,
    write_metrics,
    write_training_outputs,
)
from predictive_scoring.workflow.preview import Preview
from predictive_scoring.workflow.promotion import (
    Promotion,
    PromotionSettings,
    apply,
    judge,
    not_registered,
)
from predictive_scoring.workflow.training import (
    ExampleSource,
    InMemorySource,
    Progress,
    Trained,
    silent,
    train,
)


@dataclass(frozen=True)
class RunSettings:
    """Where a training run writes, what it logs and whether it registers.

    Attributes:
        out: Folder for metrics.json, the plots, the report and the learned points.
        run_name: The MLflow run's name.
        data_fingerprint: Digest of the data files (a tag of the run).
        config_files: Config files kept with the run (dataset, project, rules, model).
        register: Register the bundle (else the run is only logged).
        max_rules: Most rules in the learned points table (None: the default).
        capacity: Sales capacity for the accuracy page (None: the project's).
        tags: More tags of the run (e.g. the engine's partitions).
    """

    out: Path
    run_name: str
    data_fingerprint: str
    config_files: tuple[Path, ...] = ()
    register: bool = True
    max_rules: int | None = None
    capacity: Capacity | None = None
    tags: dict[str, object] = field(default_factory=dict)


@dataclass
class RunOutcome:
    """What a training run did.

    Attributes:
        trained: The run (its record, examples and source).
        name: The registered model's name.
        version: The registered version (None when not registered).
        promotion: The decision (``metrics.json``'s ``promotion`` block).
        preview: What the change means on the same leads (None when nothing could be
            compared).
        files: Files written in the run's folder.
    """

    trained: Trained
    name: str
    version: str | None
    promotion: Promotion
    preview: Preview | None
    files: list[Path]


def train_and_register(source: ExampleSource, plan: TrainingPlan, settings: RunSettings,
                       choose_model: ModelChooser | None = None,
                       report: Progress = silent) -> RunOutcome:
    """Train, compare on the same leads, write, log, register and promote.

    The registry is asked for the champion before training starts, so an unreachable
    store stops the run before the work.

    Raises:
        TrainingError: Too little data, or leakage warnings when ``plan.strict``.
        StoreUnreachable: The tracking store cannot be reached.
        ValueError: A promotion metric that cannot compare scorers on the same leads.
    """
    from predictive_scoring.accounts.training import add_accounts
    from predictive_scoring.tracking import bundle, registry, store

    base = plan.base
    promotion_settings = PromotionSettings.of(base.training)
    store.use_tracking(base)
    name = base.model_name(plan.config.name)
    registry.aliases(name)
    with store.start_run(plan.config.name, settings.run_name,
                         artifact_location=store.artifact_location(base)):
        trained = train(source, plan, choose_model, report)
        run = trained.run
        if isinstance(source, InMemorySource):
            report("Learning the account scores")
            add_accounts(run, source.dataset, plan)
        elif plan.config.accounts is not None:
            run.metrics["notes"].append(
                "accounts: the Dask engine learns no account model; train on one machine "
                "(--engine local) for account scores")
        report("Comparing with the champion and the points on the same test leads")
        test = source.test_leads(trained.built)
        in_order = _keys(test.frame) == _keys(run.examples.frame.iloc[run.trained.rows["test"]])
        judgement = judge(name, run.trained.scorer, test, promotion_settings,
                          base.training.handoff_stage.value,
                          run.trained.test_probability if in_order else None)
        promotion, preview = judgement.promotion, judgement.preview
        if not settings.register:
            promotion = not_registered(promotion)
        run.metrics["promotion"] = promotion.block()
        run.metrics["promotion_preview"] = None if preview is None else preview.block()
        files = []
        if isinstance(source, InMemorySource):
            report("Learning points from the model and writing the report")
            files = learn_and_report(run, source.dataset, base, ReportSettings(
                settings.out, settings.max_rules,
                settings.capacity or base.training.sales_capacity), promotion, preview)
        files = [*write_training_outputs(run, base, settings.out), *files]
        report("Logging the run and the model to MLflow")
        log_run(run, plan, settings.data_fingerprint,
                {"engine": source.engine, **settings.tags})
        store.log_files(settings.config_files, "configs")
        registered = name if settings.register else None
        info = bundle.log_bundle(run.trained.scorer, source.bundle_example(trained.built, run),
                                 registered)
        version = None if registered is None else str(info.registered_model_version)
        if version is not None:
            promotion = apply(name, version, promotion)
            run.metrics["promotion"] = promotion.block()
            write_metrics(run.metrics, settings.out)
        log_promotion(promotion, preview)
        store.log_files(files, "results")
    return RunOutcome(trained, name, version, promotion, preview, files)


def _keys(frame: pd.DataFrame) -> list[tuple]:
    """Each example's lead and moment, in order (to reuse scores computed in that order)."""
    columns = [c for c in ("lead_id", "as_of") if c in frame]
    return list(frame[columns].itertuples(index=False, name=None))
