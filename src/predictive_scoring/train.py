"""Training: examples -> split -> fit -> calibrate -> evaluate against the rules.

Each step is a small function of what the step before returned; :func:`train_model`
runs them in order. The run as a whole (leakage check, tuning, weights) is
``workflow.training.train``, written once for both engines; logging to MLflow and writing
files are left to the workflow, so everything here can be tested without a tracking store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from predictive_scoring import evaluate
from predictive_scoring.config import (
    RANGES_KEY,
    BaseConfig,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    SnapshotConfig,
    TrainingConfig,
)
from predictive_scoring.data.dataset import ROW, EventsDataset, TableDataset
from predictive_scoring.data.snapshots import DECIDED, Snapshots, build_snapshots, data_end_of
from predictive_scoring.explain import (
    METADATA_KEY,
    GlobalWeights,
    explanation_metadata,
    global_weights,
    sample_rows,
)
from predictive_scoring.features import FeatureSpec, behaviour_features, fit_feature_spec
from predictive_scoring.models import kinds
from predictive_scoring.models.columns import FeatureColumns, feature_columns, model_frame
from predictive_scoring.models.kinds.base import FIRST_STAGE_ROUNDS, Decisions
from predictive_scoring.models.scorer import (
    TRAINED_AGES_KEY,
    Calibrator,
    LeadScorer,
    build_pipeline,
    choose_calibrator,
    fit_scored,
)
from predictive_scoring.monitoring import reference as monitoring_reference
from predictive_scoring.rules import PointsResult, score_points
from predictive_scoring.stages import FUNNEL, Stage, stage_for_values

SPLITS = ("train", "valid", "test")
POPULATION = "population"
"""``raw``'s key for the population's raw probabilities (:func:`finish_training`)."""
EXPLANATION_ROWS = 5_000
"""Rows (a seeded sample of a slice) for the grade cut points (training slice) and for
the global weights and their plots (test slice): quartiles and mean absolute SHAP values
are stable at this size, and it bounds the cost of explaining a big training set."""


class TrainingError(ValueError):
    """Training cannot go on (too little data, leakage under --strict, ...)."""


@dataclass(frozen=True)
class TrainingPlan:
    """What a training run learns and what it is measured against.

    Attributes:
        config: The dataset's config.
        model: The model's kind, hyper-parameters and search space.
        rules: The points baseline compared with the model on the same test leads.
        base: Project settings (the split, the seed, the checks, the promotion metric).
        strict: Leakage warnings stop the run.
    """

    config: DatasetConfig
    model: ModelConfig
    rules: RulesConfig
    base: BaseConfig
    strict: bool = False


@dataclass(frozen=True)
class Examples:
    """Labelled examples with everything needed to fit and to compare with the rules.

    Attributes:
        frame: One row per example: ``lead_id``, attribute columns, behaviour features,
            and (events shape) ``as_of`` and ``created_at``.
        label: 0/1 outcome per example.
        order: Time per example for a time-ordered split (lead creation, or the table's
            time column), or None when the data has no time.
        truth: True probability per example (simulated data), or None.
        rule_points: The points baseline's total per example.
        rule_stage: The points baseline's stage per example.
        columns: Model input columns.
        spec: Behaviour vocabulary (events shape), else None.
        weight: Per example, 1 / its lead's number of ages the data can label (events
            shape, :func:`~predictive_scoring.data.snapshots.lead_weights`), or None (one
            example per lead).
        population: The leads the model will score (events shape): every lead open at
            the test period's end, as it looked then; the stage thresholds are set on it.
            None: they are set on the training slice.
    """

    frame: pd.DataFrame
    label: np.ndarray
    order: pd.Series | None
    truth: np.ndarray | None
    rule_points: np.ndarray
    rule_stage: np.ndarray
    columns: FeatureColumns
    spec: FeatureSpec | None
    weight: np.ndarray | None = None
    population: Population | None = None

    def weights(self, rows: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """The training and validation rows' weights for the fit, each slice's scaled to
        average 1 (so a model's regularisation weighs as much against the data as
        unweighted), or None when every example weighs the same (the fit is then the
        unweighted one, exactly)."""
        if self.weight is None:
            return None
        train, valid = self.weight[rows["train"]], self.weight[rows["valid"]]
        if np.all(train == train[0]) and np.all(valid == valid[0]):
            return None
        return train / train.mean(), valid / valid.mean()

    def decisions(self, rows: dict[str, np.ndarray]) -> Decisions | None:
        """Whether the training and the validation rows' leads decided within the horizon
        (the frame's ``decided`` column, ``SnapshotConfig.decision_after``), or None."""
        if DECIDED not in self.frame.columns:
            return None
        decided = self.frame[DECIDED].to_numpy(np.int8)
        return decided[rows["train"]], decided[rows["valid"]]


POPULATION_ROWS = 50_000
"""At most this many open leads (a seeded sample) set the stage thresholds: stage shares
are stable to a fraction of a percent at this size."""


@dataclass(frozen=True)
class Population:
    """The leads open at one moment, as they looked then: who the model will score.

    Attributes:
        as_of: The moment (the test period's end: the last lead's creation).
        frame: One row per open lead (a seeded sample of at most ``POPULATION_ROWS``):
            ``lead_id``, ``created_at``, ``as_of``, attributes, behaviour features.
        rule_stage: The points' stage of each.
        n_open: Leads open at ``as_of`` before sampling.
    """

    as_of: pd.Timestamp
    frame: pd.DataFrame
    rule_stage: np.ndarray
    n_open: int


def open_population(dataset: EventsDataset, target: Stage, spec: FeatureSpec,
                    rules: RulesConfig, seed: int) -> Population:
    """Every lead open at the last lead's creation (:func:`open_leads`), with its
    behaviour features and points as of that moment."""
    moment = dataset.leads["created_at"].max()
    open_ = open_leads(dataset, target, moment)
    picked = sample_rows(len(open_), POPULATION_ROWS, seed)
    frame, stage = population_rows(open_.iloc[picked], moment, dataset.events, spec, rules)
    return Population(moment, frame, stage, len(open_))


def open_leads(dataset: EventsDataset, target: Stage, moment: pd.Timestamp) -> pd.DataFrame:
    """The leads open at ``moment``: created before it, and neither at the target stage
    (or beyond) nor lost by then (a lead's stage changes are all it needs: a part of the
    leads holding whole leads gives its share of them)."""
    leads, changes = dataset.leads, dataset.stage_changes
    closed_stages = {s.value for s in FUNNEL if s.rank >= target.rank} | {Stage.LOST.value}
    closed = changes.loc[changes["stage"].isin(closed_stages)
                         & (changes["timestamp"] < moment), "lead_id"]
    return leads.loc[(leads["created_at"] < moment) & ~leads["lead_id"].isin(closed)]


def population_rows(open_: pd.DataFrame, moment: pd.Timestamp, events: pd.DataFrame,
                    spec: FeatureSpec, rules: RulesConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """Open leads as they looked at ``moment``, with their behaviour features, and the
    points' stage of each."""
    frame = (open_.drop(columns=[ROW], errors="ignore").assign(as_of=moment)
             .reset_index(drop=True))
    frame, points = with_behaviour(frame, events, spec, rules)
    return frame, points.stage


def examples_from_table(dataset: TableDataset, config: DatasetConfig, rules: RulesConfig,
                        training: TrainingConfig) -> tuple[Examples, dict[str, np.ndarray]]:
    """Examples of a table-shaped dataset (one per row) and the row positions of each slice."""
    table = dataset.table.reset_index(drop=True)
    points = score_points(rules, table, None)
    order = table.get("time")
    label = table["target"].to_numpy(np.int8)
    examples = Examples(table, label, order, None, points.points, points.stage,
                        feature_columns(config.attributes, None, config.feature_groups),
                        None)
    return examples, split_rows(table["lead_id"], order, label, training)


def examples_from_events(dataset: EventsDataset, config: DatasetConfig, rules: RulesConfig,
                         training: TrainingConfig) -> tuple[Examples, dict[str, np.ndarray],
                                                            Snapshots]:
    """Snapshot examples of an events-shaped dataset, split, with behaviour features.

    The split comes first so that the behaviour vocabulary is learnt from the training
    leads' events only.

    Returns:
        The examples, the row positions of each slice, and the snapshot bookkeeping.
    """
    snapshots = build_snapshots(dataset, config.snapshots, data_end_of(dataset))
    frame = snapshots.frame
    label = frame["label"].to_numpy(np.int8)
    rows = split_rows(frame["lead_id"], frame["created_at"], label, training)
    events = dataset.events
    train_events = events.loc[events["lead_id"].isin(frame["lead_id"].iloc[rows["train"]])]
    spec = fit_feature_spec(train_events["event_type"].to_numpy(object),
                            train_events["detail"].to_numpy(object), config.features)
    frame, points = with_behaviour(frame, events, spec, rules)
    population = open_population(dataset, config.snapshots.target_stage, spec, rules,
                                 training.seed)
    examples = Examples(frame, label, frame["created_at"], truth_of(frame, dataset.truth),
                        points.points, points.stage, feature_columns(config.attributes, spec,
                                                                     config.feature_groups),
                        spec, frame["weight"].to_numpy(np.float64),
                        population if len(population.frame) else None)
    return examples, rows, snapshots


def with_behaviour(frame: pd.DataFrame, events: pd.DataFrame, spec: FeatureSpec,
                   rules: RulesConfig) -> tuple[pd.DataFrame, PointsResult]:
    """Snapshots with their behaviour features appended, and the rules' points on them."""
    frame = pd.concat([frame, behaviour_features(spec, frame, events)], axis=1)
    return frame, score_points(rules, frame, events)


def truth_of(frame: pd.DataFrame, truth: pd.DataFrame | None) -> np.ndarray | None:
    """The simulator's true probability per example, or None where any is unknown."""
    if truth is None:
        return None
    keyed = truth.set_index(["lead_id", "as_of"])["true_probability"]
    values = keyed.reindex(pd.MultiIndex.from_frame(frame[["lead_id", "as_of"]])).to_numpy()
    return None if np.isnan(values).any() else values.astype(float)


# ------------------------------------------------------------------------ split
def split_rows(lead_id: pd.Series, order: pd.Series | None, label: np.ndarray,
               training: TrainingConfig) -> dict[str, np.ndarray]:
    """Row positions of the train, valid and test slices.

    With time (``order``): leads ordered by their earliest time; the earliest go to
    train, the next to valid, the latest to test, so test data is later than training
    data. Without time: stratified random slices with the configured seed. A lead's rows
    never straddle slices.
    """
    if order is None:
        return _stratified_split(label, training)
    first_seen = order.groupby(lead_id.to_numpy()).min()
    ranked = first_seen.sort_values(kind="stable").index
    n = len(ranked)
    n_test, n_valid = round(n * training.test_fraction), round(n * training.valid_fraction)
    slice_of = pd.Series(np.repeat(np.array(SPLITS), [n - n_valid - n_test, n_valid, n_test]),
                         index=ranked)
    assigned = slice_of.reindex(lead_id.to_numpy()).to_numpy()
    return {name: np.flatnonzero(assigned == name) for name in SPLITS}


def _stratified_split(label: np.ndarray, training: TrainingConfig) -> dict[str, np.ndarray]:
    rows = np.arange(len(label))
    held_out = training.valid_fraction + training.test_fraction
    train, rest = train_test_split(rows, test_size=held_out, stratify=label,
                                   random_state=training.seed)
    valid, test = train_test_split(rest, test_size=training.test_fraction / held_out,
                                   stratify=label[rest], random_state=training.seed)
    return {"train": np.sort(train), "valid": np.sort(valid), "test": np.sort(test)}


def check_enough_data(label: np.ndarray, training: TrainingConfig) -> None:
    """Stop when the training slice has too few positives or negatives to learn from."""
    positives, negatives = int(label.sum()), int(len(label) - label.sum())
    minimum = training.min_class_examples
    if positives < minimum or negatives < minimum:
        raise TrainingError(
            f"too little data to learn from: the training slice has {positives} converted "
            f"and {negatives} not converted examples, and at least {minimum} of each are "
            "needed (commercial scoring tools ask for 40 to 120 conversions). Until there "
            "is more history, score leads with the rules baseline: `predictive-scoring "
            "rules --config ...`.")


# ------------------------------------------------------------------------ fit
@dataclass
class TrainedModel:
    """A trained scorer with its evaluation."""

    scorer: LeadScorer
    metrics: dict[str, Any]
    rows: dict[str, np.ndarray]
    test_probability: np.ndarray
    calibration_losses: dict[str, float] = field(default_factory=dict)


def rule_stage_shares(stages: np.ndarray, rules: RulesConfig) -> tuple[list[Stage],
                                                                       dict[Stage, float]]:
    """The funnel stages the rules define, in order, and the share of leads in each."""
    order = [s for s in FUNNEL if s in rules.stage_thresholds]
    counts = pd.Series(stages).value_counts()
    shares = {s: float(counts.get(s.value, 0)) / len(stages) for s in order}
    return order, shares


def train_model(examples: Examples, rows: dict[str, np.ndarray],
                plan: TrainingPlan) -> TrainedModel:
    """Fit, calibrate, set stage thresholds and evaluate on the test slice.

    Each slice's model input is built once, from its own rows, and each slice is scored
    once: the fit returns the raw probability of the training and validation rows and of
    the test rows and the population the stage thresholds are matched on (LightGBM: its
    own scores of the first two at the best round, and of the others scored on their
    binned values as the fit ends; they take no part in it). The input is let go once
    fitted.
    """
    y = examples.label
    check_enough_data(y[rows["train"]], plan.base.training)
    part = {name: (model_frame(examples.frame, examples.columns, r), y[r])
            for name, r in rows.items()}
    explain_sample = part["train"][0].iloc[sample_rows(len(rows["train"]), EXPLANATION_ROWS,
                                                       plan.base.training.seed)]
    population = examples.population
    others = [part.pop("test")[0]]
    if population is not None:
        others.append(model_frame(population.frame, examples.columns))
    model = plan.model
    pipeline, *scores = fit_scored(build_pipeline(model, examples.columns), model,
                                   part.pop("train"), part.pop("valid"),
                                   examples.weights(rows), others, examples.decisions(rows))
    del others
    raw = dict(zip(["train", "valid", "test", POPULATION], scores, strict=False))
    return finish_training(examples, rows, pipeline, raw, plan, explain_sample)


def finish_training(examples: Examples, rows: dict[str, np.ndarray], pipeline: Pipeline,
                    raw: dict[str, np.ndarray], plan: TrainingPlan,
                    explain_sample: pd.DataFrame) -> TrainedModel:
    """Calibrate a fitted pipeline, set stage thresholds and evaluate on the test slice.

    Args:
        examples: The examples (only labels, rule results and truth are read).
        rows: Row positions of each slice.
        pipeline: The fitted preprocessor and classifier.
        raw: The pipeline's raw probability on each slice's rows (same order), and on
            the population's rows under :data:`POPULATION` when the fit gave them.
        plan: The run's configs.
        explain_sample: Model input of up to ``EXPLANATION_ROWS`` training rows: the
            reference and the fit/engagement cut points explanations need.

    Returns:
        The scorer and its evaluation, whichever engine fitted the pipeline.
    """
    training, rules, dataset = plan.base.training, plan.rules, plan.config
    calibrator, losses = choose_calibrator(raw["valid"], examples.label[rows["valid"]],
                                           training.seed)
    thresholds, matched_on = stage_thresholds(examples, rows, pipeline, calibrator, raw,
                                              rules)
    scorer = LeadScorer(dataset.name, dataset.shape, examples.columns, examples.spec,
                        pipeline, calibrator, thresholds, rules,
                        {"model_kind": plan.model.kind, "calibration": calibrator.method,
                         "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                         RANGES_KEY: {name: allowed.model_dump() for name, allowed
                                      in plan.config.attributes.ranges.items()}})
    scorer.metadata[METADATA_KEY] = explanation_metadata(scorer, explain_sample)
    ages = lead_age_days(examples.frame)
    if ages is not None:
        scorer.metadata[TRAINED_AGES_KEY] = trained_ages(ages[rows["train"]])
    scorer.metadata[monitoring_reference.METADATA_KEY] = training_reference(
        scorer, examples, explain_sample, calibrator(raw["train"]), plan.config)
    p_test = calibrator(raw["test"])
    metrics = comparison_metrics(examples, rows, p_test, thresholds, plan)
    y_train = examples.label[rows["train"]]
    metrics["capacity"] = kinds.get(plan.model.kind).capacity(plan.model, len(y_train),
                                                              int(y_train.sum()))
    metrics["stage_thresholds_set_on"] = matched_on
    decisions = decisions_block(plan.config.snapshots, pipeline)
    if decisions is not None:
        metrics["decisions"] = decisions
    scorer.metadata["test_metrics"] = metrics["model"]
    return TrainedModel(scorer, metrics, rows, p_test, losses)


def stage_thresholds(examples: Examples, rows: dict[str, np.ndarray], pipeline: Pipeline,
                     calibrator: Calibrator, raw: dict[str, np.ndarray], rules: RulesConfig
                     ) -> tuple[dict[Stage, float], dict[str, Any]]:
    """The model's stage thresholds, volume-matched to the points' stage shares on the
    population the model will score: the leads open at the test period's end (events
    shape), else the training slice.

    Returns:
        The thresholds, and what they were matched on (``population``, ``as_of``, ``n``).
    """
    population = examples.population
    if population is None:
        p = calibrator(raw["train"])
        stages = examples.rule_stage[rows["train"]]
        matched_on = {"population": "training examples", "as_of": None, "n": len(p)}
    else:
        if POPULATION in raw:
            p = calibrator(raw[POPULATION])
        else:
            model_input = model_frame(population.frame, examples.columns)
            p = calibrator(pipeline.predict_proba(model_input)[:, 1])
        stages = population.rule_stage
        matched_on = {"population": "open leads", "as_of": population.as_of.isoformat(),
                      "n": len(p), "n_open": population.n_open}
    order, shares = rule_stage_shares(stages, rules)
    return evaluate.stage_thresholds_matching_shares(p, shares, order), matched_on


def training_reference(scorer: LeadScorer, examples: Examples, sample: pd.DataFrame,
                       p_train: np.ndarray, config: DatasetConfig) -> dict[str, Any]:
    """The drift reference the bundle keeps (:mod:`predictive_scoring.monitoring.reference`):
    the training sample's inputs, the training probabilities, and the facts the monitor
    reads (trained at, latest training moment, target stage and horizon)."""
    moments = examples.frame.get("as_of", examples.order)
    dated = (moments is not None and len(moments)
             and pd.api.types.is_datetime64_any_dtype(moments))
    data_end = pd.Timestamp(moments.max()) if dated else None
    snapshots = config.snapshots if config.shape == "events" else None
    return monitoring_reference.training_reference(
        sample, scorer.columns.categorical, p_train,
        {"trained_at": scorer.metadata["trained_at"],
         "data_end": None if data_end is None or pd.isna(data_end) else data_end.isoformat(),
         "target_stage": snapshots.target_stage.value if snapshots else None,
         "horizon_days": snapshots.horizon_days if snapshots else None})


def comparison_metrics(examples: Examples, rows: dict[str, np.ndarray], p_test: np.ndarray,
                       thresholds: dict[Stage, float], plan: TrainingPlan) -> dict[str, Any]:
    """metrics.json: model, rules and (simulated data) oracle on the same test rows."""
    training, rules = plan.base.training, plan.rules
    train, test = rows["train"], rows["test"]
    y_test = examples.label[test]
    order, _ = rule_stage_shares(examples.rule_stage[train], rules)
    names = [s.value for s in order]
    volume = evaluate.volume_of_stages(examples.rule_stage[test], training.handoff_stage.value,
                                       names)
    points_to_p = evaluate.isotonic_points_to_probability(examples.rule_points[train],
                                                          examples.label[train])
    rules_block = evaluate.probability_metrics(y_test, points_to_p(examples.rule_points[test]),
                                               volume, training.ece_bins)
    rules_block["captured_at_rules_volume"] = evaluate.captured_at_volume(
        y_test, examples.rule_points[test], volume)
    oracle = (evaluate.probability_metrics(y_test, examples.truth[test], volume,
                                           training.ece_bins)
              if examples.truth is not None else None)
    ages = lead_age_days(examples.frame)
    return {
        "n_train": len(train), "n_valid": len(rows["valid"]),
        "n_test": len(test), "positive_rate_test": float(y_test.mean()),
        "handoff_volume_test": volume,
        "model": evaluate.probability_metrics(y_test, p_test, volume, training.ece_bins),
        "rules": rules_block,
        "oracle": oracle,
        "stages": {"model": _stage_block(y_test, stage_for_values(p_test, thresholds), names),
                   "rules": _stage_block(y_test, examples.rule_stage[test], names)},
        "by_age": ([] if ages is None else evaluate.by_age(
            y_test, p_test, examples.rule_points[test], ages[test], training.ece_bins)),
    }


def trained_ages(ages: np.ndarray) -> list[float]:
    """The youngest and oldest lead age (days) the model was trained on."""
    return [float(ages.min()), float(ages.max())]


def lead_age_days(frame: pd.DataFrame) -> np.ndarray | None:
    """Each example's lead age at its ``as_of``, in days (None for a table: no ages)."""
    if "as_of" not in frame or "created_at" not in frame:
        return None
    return ((frame["as_of"] - frame["created_at"]) / pd.Timedelta(days=1)).to_numpy(float)


def _stage_block(y: np.ndarray, stages: np.ndarray, order: list[str]) -> dict[str, Any]:
    table = evaluate.stage_conversion(y, stages, order)
    return {stage: {k: float(v) for k, v in row.items()} for stage, row in
            table.to_dict(orient="index").items()}



# ------------------------------------------------------------------ one run
@dataclass
class TrainingRun:
    """Everything one training run produced, for the CLI to write and log."""

    examples: Examples
    trained: TrainedModel
    metrics: dict[str, Any]
    warnings: list[str]
    weights: GlobalWeights
    accounts: Any = None
    """The account step's result (``predictive_scoring.accounts.training.AccountRun``)."""


def build_examples(dataset: EventsDataset | TableDataset, config: DatasetConfig,
                   rules: RulesConfig, training: TrainingConfig
                   ) -> tuple[Examples, dict[str, np.ndarray], list[str]]:
    """Examples and slices of either shape, with notes on what was left out."""
    if isinstance(dataset, TableDataset):
        examples, rows = examples_from_table(dataset, config, rules, training)
        notes = [f"left out as filled in after the outcome: {c}"
                 for c in dataset.dropped_for_leakage]
        return examples, rows, notes
    examples, rows, snapshots = examples_from_events(dataset, config, rules, training)
    return examples, rows, snapshot_notes(snapshots.n_past_target, snapshots.n_censored,
                                          config.snapshots, lead_age_days(examples.frame))


def decisions_block(snapshots: SnapshotConfig | None, pipeline: Pipeline
                    ) -> dict[str, Any] | None:
    """metrics.json's ``decisions`` (with ``decision_after``): the stage after which a loss
    is a decision, and how many of the model's first trees learnt the decisions (0: the
    training leads held too few decisions beyond their wins, or the kind learns the
    target alone)."""
    if snapshots is None or snapshots.decision_after is None:
        return None
    return {"after": snapshots.decision_after.value,
            "first_stage_rounds": int(getattr(pipeline[-1], FIRST_STAGE_ROUNDS, 0))}


def snapshot_notes(n_past_target: int, n_censored: int, snapshots: SnapshotConfig,
                   ages: np.ndarray) -> list[str]:
    """The notes on snapshot examples: what was left out (:func:`snapshot_note`), and the
    configured ages no snapshot could be labelled at (:func:`ages_note`)."""
    unlabelled = ages_note(snapshots.days_after_creation, ages, snapshots.horizon_days)
    return [snapshot_note(n_past_target, n_censored), *([unlabelled] if unlabelled else [])]


def ages_note(configured: list[int] | None, ages: np.ndarray, horizon_days: int) -> str | None:
    """The note naming configured snapshot ages that no lead could be labelled at, or None.

    Args:
        configured: The config's ``days_after_creation`` (None for calendar snapshots).
        ages: The examples' lead ages in days.
        horizon_days: The label horizon.
    """
    if not configured or not len(ages):
        return None
    present = set(np.rint(ages).astype(int).tolist())
    missing = sorted(set(configured) - present)
    if not missing:
        return None
    return (f"no snapshot could be labelled at lead age(s) {', '.join(map(str, missing))} "
            f"days: their {horizon_days}-day horizon runs past the end of the data for every "
            f"lead. The model is trained on lead ages up to {max(present)} days, and scoring "
            "marks older leads (age_beyond_training).")


def snapshot_note(n_past_target: int, n_censored: int) -> str:
    """The note on the snapshots that were left out, and why."""
    return (f"{n_past_target:,} snapshots left out: lead already past the target stage; "
            f"{n_censored:,} left out: horizon runs past the end of the data")


def examples_for_scorer(scorer: LeadScorer, dataset: EventsDataset | TableDataset,
                        config: DatasetConfig, training: TrainingConfig
                        ) -> tuple[Examples, dict[str, np.ndarray], list[str]]:
    """The examples and slices a scorer was trained and tested on, rebuilt from its data,
    with notes on what was left out (see :func:`build_examples`).

    The split is a pure function of the data and the training settings, so the test
    slice is the one the scorer never saw (as long as the data has not changed since).

    Raises:
        ValueError: The config describes another dataset than the scorer's.
    """
    if config.name != scorer.dataset:
        raise ValueError(f"the model was trained on dataset '{scorer.dataset}' but the config "
                         f"describes '{config.name}'; pass the config it was trained on")
    return build_examples(dataset, config, scorer.rules, training)


ModelChooser = Callable[[Examples, dict[str, np.ndarray], ModelConfig], ModelConfig]
"""Picks the hyper-parameters to train with (e.g. a search on the validation slice)."""


def training_run(examples: Examples, trained: TrainedModel, plan: TrainingPlan,
                 warnings: list[str], notes: list[str], weights: GlobalWeights) -> TrainingRun:
    """The run's record, with metrics.json's content (whichever engine trained)."""
    model = plan.model
    below = points_note(trained.metrics)
    metrics = {"dataset": plan.config.name, "model_kind": model.kind, "params": model.params,
               **trained.metrics, "calibration": trained.scorer.calibrator.method,
               "warnings": warnings, "notes": [*notes, *([below] if below else [])]}
    return TrainingRun(examples, trained, metrics, warnings, weights)


def points_note(metrics: dict[str, Any]) -> str | None:
    """One paragraph when the model does not rank the test leads better than the points
    (ROC-AUC on the same test rows), else None."""
    model, rules = metrics["model"]["roc_auc"], metrics["rules"]["roc_auc"]
    if np.isnan(model) or np.isnan(rules) or model > rules:
        return None
    n_train = metrics["n_train"]
    return (f"the model does not beat the points on the {metrics['n_test']:,} test examples "
            f"(ROC-AUC {model:.3f} against the points' {rules:.3f}), trained on {n_train:,} "
            "examples: keep scoring leads with the points until more history (more "
            "converted leads) is available, and retrain then; a model that cannot beat "
            "the points should not replace them.")


def test_weights(scorer: LeadScorer, examples: Examples, test: np.ndarray,
                 seed: int) -> GlobalWeights:
    """Global weights of a scorer on (a seeded sample of) its test slice.

    The sample depends only on the slice's size and the seed, so the report rebuilt from
    a registered model shows the weights its training run logged.

    Args:
        scorer: The trained scorer.
        examples: Its examples.
        test: Row positions of the test slice.
        seed: The training seed.
    """
    picked = test[sample_rows(len(test), EXPLANATION_ROWS, seed)]
    return global_weights(scorer, model_frame(examples.frame.iloc[picked], examples.columns))


def bundle_example(run: TrainingRun, events: pd.DataFrame | None, n_leads: int) -> pd.DataFrame:
    """A few raw test leads in the bundle's input format (events as lists of dicts)."""
    test = run.trained.rows["test"][:n_leads]
    return bundle_input(run.examples.frame.iloc[test], events, run.trained.scorer)


def bundle_input(examples: pd.DataFrame, events: pd.DataFrame | None,
                 scorer: LeadScorer) -> pd.DataFrame:
    """Example rows in the bundle's input format (events as lists of dicts).

    Args:
        examples: Rows of an examples frame (lead_id, attributes; events shape also
            created_at and as_of).
        events: Contract events holding at least these leads' events (events shape).
        scorer: The trained scorer (it names the raw fields it reads).
    """
    raw = scorer.raw_attributes()
    if scorer.feature_spec is None:
        return examples[["lead_id", *raw]].reset_index(drop=True)
    example = examples[["lead_id", "created_at", "as_of", *raw]].reset_index(drop=True)
    example["events"] = [_event_dicts(events, lead, as_of) for lead, as_of in
                         zip(example["lead_id"], example["as_of"], strict=True)]
    return example.assign(created_at=example["created_at"].map(pd.Timestamp.isoformat),
                          as_of=example["as_of"].map(pd.Timestamp.isoformat))


def _event_dicts(events: pd.DataFrame, lead: str, as_of: pd.Timestamp) -> list[dict]:
    own = events.loc[(events["lead_id"] == lead) & (events["timestamp"] < as_of)]
    return [{"timestamp": t.isoformat(), "event_type": e, "detail": None if pd.isna(d) else d}
            for t, e, d in zip(own["timestamp"], own["event_type"], own["detail"], strict=True)]
