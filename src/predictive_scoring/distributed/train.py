"""Training on Dask: examples built partition by partition, the model fitted by its kind on
the workers, then calibrated, evaluated and bundled as on one machine. The run's flow is
``workflow.training.train``'s, the same as on one machine: :class:`PartitionedSource` is
where its examples live.

Nothing is re-implemented: each partition (whole leads, read by :mod:`.sources`) runs the
single-machine code of data.py (validation, snapshots) and features.py / train.py
(behaviour features, the rules' points, the leads open at the test period's end). Only
small facts cross partitions: the end of the data, the slice boundaries of the
time-ordered split, the key counts of the behaviour vocabulary, the category vocabulary
of the encoder, the last lead's creation and the number of open leads; then the
examples' outcome columns (with their snapshot weights) and a sample of at most about
``POPULATION_ROWS`` open leads come back. The model's kind trains its classifier
data-parallel on the workers (LightGBM: ``lightgbm.dask``) with the snapshot weights,
and train.py sets the stage thresholds on the open leads, calibrates, evaluates
(``by_age`` included) and builds the same :class:`LeadScorer` bundle as the
single-machine path.
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from predictive_scoring.config import (
    DatasetConfig,
    ModelConfig,
    ReadOptions,
    RulesConfig,
)
from predictive_scoring.data.dataset import (
    DataValidationError,
    EventsDataset,
    TableCheck,
    parse_truth,
    write_quarantine,
)
from predictive_scoring.data.snapshots import Snapshots, build_snapshots
from predictive_scoring.distributed.cluster import Report, partitions, silent
from predictive_scoring.distributed.sources import (
    BUCKET,
    TABLES,
    check_facts,
    check_partition,
    check_summary,
    dataset_sources,
    lead_id_column,
    located_checks,
    read_by_lead,
    uncoded,
)
from predictive_scoring.features import FeatureSpec, key_counts, spec_from_counts
from predictive_scoring.leakage import leakage_warnings
from predictive_scoring.models import kinds
from predictive_scoring.models.columns import FeatureColumns, feature_columns, model_frame
from predictive_scoring.models.scorer import LeadScorer, build_pipeline
from predictive_scoring.train import (
    EXPLANATION_ROWS,
    POPULATION_ROWS,
    SPLITS,
    Examples,
    Population,
    TrainedModel,
    TrainingError,
    TrainingPlan,
    TrainingRun,
    bundle_input,
    finish_training,
    lead_age_days,
    open_leads,
    population_rows,
    snapshot_notes,
    split_rows,
    truth_of,
    with_behaviour,
)
from predictive_scoring.workflow.promotion import TestLeads
from predictive_scoring.workflow.training import Built

if TYPE_CHECKING:
    from distributed import Client, Future

SLICE = "slice"
OUTCOME_COLUMNS = ["lead_id", "created_at", "as_of", "label", "weight", SLICE, "rule_points",
                   "rule_stage", "true_probability"]
LEAKAGE_BATCH = 16
"""Feature columns gathered at a time for the leakage check (bounds client memory)."""
EXAMPLE_LEADS = 3


# ------------------------------------------------------------------ examples
def partition_snapshots(checks: dict[str, TableCheck], config: DatasetConfig,
                        data_end: pd.Timestamp, first_created: pd.Timestamp) -> Snapshots:
    """data.py's snapshots and labels of one partition's kept rows."""
    dataset = EventsDataset(checks["leads"].kept, checks["events"].kept,
                            checks["stage_changes"].kept, checks)
    return build_snapshots(dataset, config.snapshots, data_end, first_created)


def first_seen(snapshots: Snapshots) -> pd.Series:
    """Earliest creation time of each lead with a snapshot (the split's order)."""
    frame = snapshots.frame
    return frame.groupby(frame["lead_id"].to_numpy())["created_at"].min()


SliceBounds = dict[str, tuple[pd.Timestamp, str] | None]


def slice_bounds(first: pd.Series, training: Any) -> SliceBounds:
    """The first ``(created_at, lead_id)`` of the valid and test slices.

    train.py's :func:`split_rows` ranks the leads; since each slice is a run of that
    ranking, its first lead is all a partition needs to place any of its leads.
    """
    leads = pd.Series(first.index.to_numpy(dtype=object))
    created = first.reset_index(drop=True)
    rows = split_rows(leads, created, np.zeros(len(first), np.int8), training)
    bounds: SliceBounds = {}
    for name in ("valid", "test"):
        part = pd.DataFrame({"created_at": created.iloc[rows[name]],
                             "lead_id": leads.iloc[rows[name]]})
        first_row = part.sort_values(["created_at", "lead_id"]).head(1)
        bounds[name] = (None if first_row.empty else
                        (first_row["created_at"].iloc[0], first_row["lead_id"].iloc[0]))
    return bounds


def slice_of(lead_id: pd.Series, created_at: pd.Series, bounds: SliceBounds) -> np.ndarray:
    """``train``, ``valid`` or ``test`` per row, as :func:`split_rows` would place its lead."""
    ids = lead_id.astype(object).to_numpy()
    times = created_at.to_numpy()
    out = np.full(len(ids), "train", dtype=object)
    for name in ("valid", "test"):
        bound = bounds[name]
        if bound is None:
            continue
        time, lead = np.datetime64(bound[0].tz_convert(None)), bound[1]
        after = (times > time) | ((times == time) & (ids >= lead))
        out[after] = name
    return out


def _naive(created_at: pd.Series) -> pd.Series:
    return created_at.dt.tz_convert(None)


def partition_key_counts(checks: dict[str, TableCheck], snapshots: Snapshots,
                         bounds: SliceBounds, config: DatasetConfig
                         ) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """Behaviour key counts over the events of this partition's training leads."""
    frame = snapshots.frame
    train = slice_of(frame["lead_id"], _naive(frame["created_at"]), bounds) == "train"
    events = checks["events"].kept
    own = events.loc[events["lead_id"].isin(frame["lead_id"][train])]
    return key_counts(own["event_type"].to_numpy(object), own["detail"].to_numpy(object),
                      config.features)


@dataclass(frozen=True)
class ExampleRecipe:
    """What every partition builds its examples with: the facts learnt across partitions
    and the configs that read them.

    Attributes:
        bounds: The first lead of the valid and test slices (:func:`slice_bounds`).
        spec: The behaviour vocabulary learnt from the training leads' events.
        rules: The points baseline.
        read: How the truth's text timestamps are read.
    """

    bounds: SliceBounds
    spec: FeatureSpec
    rules: RulesConfig
    read: ReadOptions


EXAMPLE_BLOCK_ROWS = 50_000
"""Snapshots featurised at a time within a partition. A block's point-in-time pairs (each
snapshot with every earlier event of its lead, a few dozen per snapshot) are the largest
arrays of the examples' build: blocks bound a worker's transient memory whatever the
partition's size, and only the features are kept."""


def partition_examples(checks: dict[str, TableCheck], snapshots: Snapshots,
                       truth: pd.DataFrame | None, recipe: ExampleRecipe) -> pd.DataFrame:
    """One partition's examples: snapshots, behaviour features, the rules' points, slice
    and (simulated data) the true probability, from train.py's own functions (run on
    :data:`EXAMPLE_BLOCK_ROWS` snapshots at a time: each row's features and points
    depend on its own lead's events only)."""
    frame, events, names = snapshots.frame, checks["events"].kept, recipe.spec.feature_names
    features = np.empty((len(frame), len(names)), dtype=np.float64, order="F")
    points = np.empty(len(frame), dtype=np.float64)
    stage = np.empty(len(frame), dtype=object)
    for start in range(0, len(frame), EXAMPLE_BLOCK_ROWS):
        rows = slice(start, start + EXAMPLE_BLOCK_ROWS)
        block, result = with_behaviour(frame.iloc[rows], events, recipe.spec, recipe.rules)
        features[rows] = block[names].to_numpy(np.float64)
        points[rows], stage[rows] = result.points, result.stage
    frame = pd.concat([frame, pd.DataFrame(features, index=frame.index, columns=names,
                                           copy=False)], axis=1)
    true = None
    if truth is not None:
        true = truth_of(frame, parse_truth("truth", truth.drop(columns=BUCKET), recipe.read))
    return frame.assign(**{
        SLICE: slice_of(frame["lead_id"], _naive(frame["created_at"]), recipe.bounds),
        "rule_points": points, "rule_stage": stage,
        "true_probability": np.nan if true is None else true})


def outcomes(examples: pd.DataFrame) -> pd.DataFrame:
    """The columns the evaluation reads, one row per example."""
    return examples[OUTCOME_COLUMNS]


def columns_of(examples: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Some columns of a partition's examples."""
    return examples[names]


def category_values(examples: pd.DataFrame, columns: FeatureColumns
                    ) -> dict[str, tuple[set[str], bool]]:
    """Per categorical column of the training rows: values seen, and whether one is missing."""
    train = model_frame(examples.loc[examples[SLICE] == "train"], columns)
    return {c: (set(train[c].dropna()), bool(train[c].isna().any()))
            for c in columns.categorical}


def vocabulary_frame(values: dict[str, tuple[set[str], bool]],
                     columns: FeatureColumns) -> pd.DataFrame:
    """A frame holding each categorical value seen (and a missing one where seen): fitting
    the encoder on it learns the categories fitting it on all training rows would."""
    cells = {c: [*sorted(seen), *([np.nan] if missing else [])]
             for c, (seen, missing) in values.items()}
    n = max([1, *map(len, cells.values())])
    data = {c: pd.Series([v[i % len(v)] if v else np.nan for i in range(n)], dtype=object)
            for c, v in cells.items()}
    data |= {c: np.zeros(n) for c in columns.numeric}
    return pd.DataFrame(data, columns=columns.all)


def design(examples: pd.DataFrame, prep: Any, columns: FeatureColumns,
           part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One slice's encoded model input, labels and snapshot weights in this partition
    (the weights travel with their rows however the partitions are stacked)."""
    rows = examples.loc[examples[SLICE] == part]
    features = prep.transform(model_frame(rows, columns))
    return (np.asarray(features, dtype=np.float64), rows["label"].to_numpy(np.int8),
            rows["weight"].to_numpy(np.float64))


def raw_probability(examples: pd.DataFrame, pipeline: Any, columns: FeatureColumns
                    ) -> np.ndarray:
    """The fitted pipeline's raw probability of every example of the partition."""
    if examples.empty:
        return np.empty(0)
    return pipeline.predict_proba(model_frame(examples, columns))[:, 1]


def slice_sample(examples: pd.DataFrame, part: str, columns: FeatureColumns,
                 fraction: float, seed: int) -> pd.DataFrame:
    """Model input of a seeded sample (``fraction``) of one slice's rows in this partition."""
    rows = examples.loc[examples[SLICE] == part]
    if fraction < 1:
        rows = rows.sample(frac=fraction, random_state=seed)
    return model_frame(rows, columns)


def _model_input_sample(client: Client, examples: list[Future], part: str,
                        columns: FeatureColumns, n_rows: int, seed: int) -> pd.DataFrame:
    """About ``EXPLANATION_ROWS`` rows of a slice, sampled evenly across partitions."""
    fraction = min(1.0, EXPLANATION_ROWS / max(n_rows, 1))
    return pd.concat(client.gather(client.map(slice_sample, examples, part=part,
                                              columns=columns, fraction=fraction,
                                              seed=seed)), ignore_index=True)


def first_rows(examples: pd.DataFrame, part: str, n: int | None) -> pd.DataFrame:
    """The first ``n`` examples (None: all) of one slice in this partition."""
    rows = examples.loc[examples[SLICE] == part]
    return rows if n is None else rows.head(n)


def test_slice_events(checks: dict[str, TableCheck], examples: pd.DataFrame) -> pd.DataFrame:
    """The kept events of this partition's test-slice leads, their text as text (as one
    machine holds its events)."""
    return uncoded(events_of(checks["events"].kept,
                             examples.loc[examples[SLICE] == "test", "lead_id"].unique()))


def events_of(events: pd.DataFrame, lead_ids: Any) -> pd.DataFrame:
    """The events of some leads (``lead_ids``: a list or an array of ids)."""
    return events.loc[events["lead_id"].isin(lead_ids)]


# ------------------------------------------------------------------ open leads
def last_created(checks: dict[str, TableCheck]) -> pd.Timestamp | None:
    """The latest lead creation in this partition (None: no lead kept)."""
    latest = checks["leads"].kept["created_at"].max()
    return None if pd.isna(latest) else latest


def partition_open_leads(checks: dict[str, TableCheck], target: Any,
                         moment: pd.Timestamp) -> pd.DataFrame:
    """train.py's open leads at ``moment`` among this partition's (whole) leads."""
    dataset = EventsDataset(checks["leads"].kept, checks["events"].kept,
                            checks["stage_changes"].kept, checks)
    return open_leads(dataset, target, moment)


def partition_population(checks: dict[str, TableCheck], open_: pd.DataFrame,
                         moment: pd.Timestamp, recipe: ExampleRecipe, fraction: float,
                         seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A seeded sample (``fraction``) of this partition's open leads as they looked at
    ``moment``, with train.py's behaviour features and the points' stage of each."""
    if fraction < 1:
        open_ = open_.sample(frac=fraction, random_state=seed).sort_index()
    return population_rows(open_, moment, checks["events"].kept, recipe.spec, recipe.rules)


def open_population_distributed(client: Client, built: PartitionedExamples,
                                plan: TrainingPlan) -> Population | None:
    """train.py's :class:`Population` built on the workers: every lead open at the last
    lead's creation, found per partition (each holds whole leads), sampled to about
    ``POPULATION_ROWS`` evenly across partitions and featurised there; only the sample
    comes back. None when no lead is open (the thresholds are then set on the training
    slice, as on one machine)."""
    stamps = [t for t in client.gather(client.map(last_created, built.checks))
              if t is not None]
    if not stamps:
        return None
    moment = max(stamps)
    open_ = client.map(partition_open_leads, built.checks,
                       target=plan.config.snapshots.target_stage, moment=moment)
    n_open = sum(client.gather(client.map(len, open_)))
    if not n_open:
        return None
    parts = client.gather(client.map(
        partition_population, built.checks, open_, moment=moment, recipe=built.recipe,
        fraction=min(1.0, POPULATION_ROWS / n_open), seed=plan.base.training.seed))
    frame = pd.concat([f for f, _ in parts], ignore_index=True)
    return Population(moment, frame, np.concatenate([s for _, s in parts]), n_open)


# ------------------------------------------------------------------ training
@dataclass(frozen=True)
class TrainingInputs(TrainingPlan):
    """A training plan read from Parquet on the cluster, with what to do with bad rows
    (on one machine the policy is applied when the dataset is loaded).

    Attributes:
        on_bad_rows: ``fail`` stops at the first bad file; ``quarantine`` writes the bad
            rows aside and goes on with the rest.
        quarantine_dir: Where quarantined rows go (default ``quarantine``).
    """

    on_bad_rows: Literal["fail", "quarantine"] = "fail"
    quarantine_dir: Path | None = None

    @classmethod
    def of(cls, plan: TrainingPlan, on_bad_rows: Literal["fail", "quarantine"],
           quarantine_dir: Path | None) -> TrainingInputs:
        """The plan with a bad-rows policy."""
        return cls(**{f.name: getattr(plan, f.name) for f in fields(TrainingPlan)},
                   on_bad_rows=on_bad_rows, quarantine_dir=quarantine_dir)


@dataclass
class PartitionedExamples:
    """Examples built on the cluster: they stay there, partition by partition.

    Attributes:
        checks: Futures of each partition's validation (kept rows included).
        snapshots: Futures of each partition's snapshots.
        examples: Futures of each partition's examples frame (features, rules' points,
            ``slice``, ``true_probability``).
        spec: The behaviour vocabulary learnt from the training leads' events.
        summary: Rows read, kept and quarantined per table.
        quarantine_files: Files written for bad rows (quarantine policy).
        recipe: What every partition built its examples with.
        test_events: Per partition, the kept events of its test-slice leads, once the
            tables are dropped (:meth:`keep_examples`); None before.
    """

    checks: list[Future]
    snapshots: list[Future]
    examples: list[Future]
    spec: FeatureSpec
    summary: pd.DataFrame
    quarantine_files: list[Path]
    recipe: ExampleRecipe
    test_events: list[Future] | None = None

    def keep_examples(self, client: Client) -> PartitionedExamples:
        """The examples alone, each partition's tables and snapshots dropped from the
        workers (once the open leads are found, nothing reads them again) but the events
        of its test-slice leads, the only ones the run reads afterwards (the champion
        scores the test leads; the bundle's input example is three of them): the events,
        most of a partition's memory, are gone before the model is fitted.

        Raises:
            RuntimeError: The tables were already dropped.
        """
        if self.test_events is not None:
            raise RuntimeError("the tables were already dropped")
        return replace(self, checks=[], snapshots=[],
                       test_events=client.map(test_slice_events, self.checks, self.examples))


def build_examples_distributed(client: Client, inputs: TrainingInputs, n_partitions: int,
                               report: Report = silent) -> PartitionedExamples:
    """Validate, snapshot, split and featurise an events dataset partition by partition.

    Raises:
        DataValidationError: Bad rows under the ``fail`` policy.
        ValueError: A table-shaped dataset.
    """
    config, base = inputs.config, inputs.base
    if config.shape != "events":
        raise ValueError("--engine dask trains on events-shaped datasets (leads, events and "
                         "stage changes as Parquet); this dataset config has shape 'table'")
    report("Reading and validating the tables by lead")
    sources = dataset_sources(config, base)
    tables = {name: partitions(client, read_by_lead(source, lead_id_column(config, name),
                                                    n_partitions))
              for name, source in sources.items()}
    labels = {name: source.label for name, source in sources.items()}
    checks = client.map(check_partition, tables["leads"], tables["events"],
                        tables["stage_changes"], config=config, labels=labels)
    truth = tables.pop("truth", None) or [None] * n_partitions
    del tables  # the rows as read leave the workers once validated (the checks keep theirs)
    facts = client.gather(client.map(check_facts, checks))
    located = located_checks(facts, {n: sources[n] for n in TABLES})
    quarantine_files = _apply_policy(located, inputs)
    report("Building snapshots")
    data_end = max(f.data_end for f in facts if f.data_end is not None)
    first_created = min(f.first_created for f in facts if f.first_created is not None)
    snapshots = client.map(partition_snapshots, checks, config=config, data_end=data_end,
                           first_created=first_created)
    bounds = slice_bounds(pd.concat(client.gather(client.map(first_seen, snapshots))),
                          base.training)
    report("Learning the behaviour vocabulary from the training leads")
    spec = _spec(client.gather(client.map(partition_key_counts, checks, snapshots,
                                          bounds=bounds, config=config)), config)
    report("Building features and the rules' points per partition")
    recipe = ExampleRecipe(bounds, spec, inputs.rules, config.read)
    examples = client.map(partition_examples, checks, snapshots, truth, recipe=recipe)
    return PartitionedExamples(checks, snapshots, examples, spec,
                               check_summary(facts, located), quarantine_files, recipe)


@dataclass
class PartitionedSource:
    """The examples of a training run on a Dask cluster: built partition by partition from
    Parquet, kept on the workers (``workflow.training.train`` runs the flow on them).

    Attributes:
        client: A connected Dask client; every worker must read the dataset's paths.
        inputs: The configs (an events-shaped dataset of Parquet files, folders or
            globs; a model of a kind that trains on Dask) and the bad-rows policy.
        n_partitions: Partitions of leads (each a set of whole leads).
        partitioned: The examples on the workers, once built.
    """

    client: Client
    inputs: TrainingInputs
    n_partitions: int
    partitioned: PartitionedExamples | None = None
    engine: str = "dask"

    @property
    def summary(self) -> pd.DataFrame | None:
        """Rows read, kept and quarantined per table (once built)."""
        return None if self.partitioned is None else self.partitioned.summary

    @property
    def quarantine_files(self) -> list[Path]:
        """Files written for bad rows (quarantine policy)."""
        return [] if self.partitioned is None else self.partitioned.quarantine_files

    def _built(self) -> PartitionedExamples:
        if self.partitioned is None:
            raise RuntimeError("build the examples first")
        return self.partitioned

    def build(self, plan: TrainingPlan, report: Report) -> Built:
        """Validate, snapshot, split and featurise on the workers; the outcome columns
        (with the snapshot weights) and a sample of the leads open at the test period's
        end come back.

        Raises:
            DataValidationError: Bad rows under the ``fail`` policy.
            ValueError: A table shape, or a model kind that does not train on Dask.
        """
        check_trains_on_dask(plan.model)
        client, config = self.client, plan.config
        self.partitioned = built = build_examples_distributed(client, self.inputs,
                                                              self.n_partitions, report)
        frame = pd.concat(client.gather(client.map(outcomes, built.examples)),
                          ignore_index=True)
        columns = feature_columns(config.attributes, built.spec, config.feature_groups)
        rows = {name: np.flatnonzero(frame[SLICE].to_numpy() == name) for name in SPLITS}
        truth = frame["true_probability"].to_numpy(float)
        report("Finding the leads open at the test period's end")
        examples = Examples(frame, frame["label"].to_numpy(np.int8), frame["created_at"],
                            None if np.isnan(truth).any() else truth,
                            frame["rule_points"].to_numpy(float),
                            frame["rule_stage"].to_numpy(object), columns, built.spec,
                            frame["weight"].to_numpy(np.float64),
                            open_population_distributed(client, built, plan))
        notes = snapshot_notes(*_left_out(client, built.snapshots), config.snapshots,
                               lead_age_days(frame))
        self.partitioned = built.keep_examples(client)
        return Built(examples, rows, notes)

    def leakage(self, built: Built, threshold: float) -> list[str]:
        return _leakage(self.client, self._built().examples, built.examples.frame,
                        built.rows, built.examples.columns, threshold)

    def fit(self, built: Built, plan: TrainingPlan, report: Report) -> TrainedModel:
        """Fit on the workers, calibrate and evaluate. Once the training and validation
        slices are encoded for the model (:func:`design_on_cluster`), the partitions keep
        their test rows only: the model's raw probability of the other rows is read from
        that encoded input, the same numbers the pipeline gives (it is its own
        preprocessing's output)."""
        client, columns, rows = self.client, built.examples.columns, built.rows
        report(f"Training {plan.model.kind} on the workers ({self.n_partitions} partitions)")
        sample = _model_input_sample(client, self._built().examples, "train", columns,
                                     len(rows["train"]), plan.base.training.seed)
        designed = design_on_cluster(client, self._built().examples, columns, plan.model)
        self.partitioned = replace(self._built(), examples=client.map(
            first_rows, self._built().examples, part="test", n=None))
        pipeline = fit_on_cluster(client, designed, plan.model,
                                  weight_means(built.examples, rows))
        report("Calibrating and evaluating")
        raw = design_probability(client, designed, pipeline)
        raw["test"] = np.concatenate(client.gather(client.map(
            raw_probability, self._built().examples, pipeline=pipeline, columns=columns)))
        return finish_training(built.examples, rows, pipeline, raw, plan, sample)

    def test_sample(self, built: Built, seed: int) -> pd.DataFrame:
        return _model_input_sample(self.client, self._built().examples, "test",
                                   built.examples.columns, len(built.rows["test"]), seed)

    def test_leads(self, built: Built) -> TestLeads:
        client, partitioned = self.client, self._built()
        frames = client.gather(client.map(first_rows, partitioned.examples, part="test",
                                          n=None))
        frame = pd.concat(frames, ignore_index=True)
        events = pd.concat(client.gather(self._test_events()), ignore_index=True)
        return TestLeads(frame, events, frame["label"].to_numpy(np.int8),
                         frame["rule_points"].to_numpy(float),
                         frame["rule_stage"].to_numpy(object))

    def bundle_example(self, built: Built, run: TrainingRun) -> pd.DataFrame:
        return _bundle_example(self.client, self._built().examples, self._test_events(),
                               run.trained.scorer)

    def _test_events(self) -> list[Future]:
        events = self._built().test_events
        if events is None:
            raise RuntimeError("build the examples with build() first")
        return events


def check_trains_on_dask(model: ModelConfig) -> None:
    """Refuse a model whose kind does not train on Dask, naming the kinds that do.

    Raises:
        ValueError: The model's kind does not train on Dask.
    """
    if not kinds.get(model.kind).trains_on_dask:
        fit = kinds.on_dask()
        raise ValueError(f"--engine dask trains {', '.join(fit)} models, not {model.kind}; "
                         f"use --model {fit[0]} or --engine local")


def _apply_policy(checks: dict[str, TableCheck], inputs: TrainingInputs) -> list[Path]:
    problems = pd.concat([c.problems for c in checks.values()], ignore_index=True)
    if not len(problems):
        return []
    if inputs.on_bad_rows == "fail":
        raise DataValidationError(problems, f"dataset '{inputs.config.name}' has bad rows "
                                  "(rerun with --on-bad-rows quarantine to set them aside)")
    return write_quarantine(checks, inputs.quarantine_dir or Path("quarantine"))


def _spec(counts: list[tuple[Counter, Counter]], config: DatasetConfig) -> FeatureSpec:
    types: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for type_counts, pair_counts in counts:
        types.update(type_counts)
        pairs.update(pair_counts)
    return spec_from_counts(types, pairs, config.features)


def _left_out(client: Client, snapshots: list[Future]) -> tuple[int, int]:
    counts = client.gather(client.map(lambda s: (s.n_past_target, s.n_censored), snapshots))
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _leakage(client: Client, examples: list[Future], frame: pd.DataFrame,
             rows: dict[str, np.ndarray], columns: FeatureColumns,
             threshold: float) -> list[str]:
    """train.py's leakage check, over batches of columns gathered from the workers;
    ``frame`` holds the examples' outcomes (their labels)."""
    label = frame["label"].to_numpy(np.int8)
    warnings = []
    names = columns.all
    for start in range(0, len(names), LEAKAGE_BATCH):
        batch = names[start:start + LEAKAGE_BATCH]
        values = pd.concat(client.gather(client.map(columns_of, examples, names=batch)),
                           ignore_index=True)
        subset = FeatureColumns(tuple(c for c in columns.categorical if c in batch),
                                tuple(c for c in columns.numeric if c in batch),
                                {c: columns.groups[c] for c in batch})
        warnings += leakage_warnings(values, label, rows, subset, threshold)
    return warnings


def weight_means(examples: Examples, rows: dict[str, np.ndarray]
                 ) -> tuple[float, float] | None:
    """The training and validation slices' mean snapshot weights, which
    ``Examples.weights`` divides each slice's by, or None when it leaves the fit
    unweighted (every example weighs the same)."""
    if examples.weights(rows) is None:
        return None
    return (float(examples.weight[rows["train"]].mean()),
            float(examples.weight[rows["valid"]].mean()))


@dataclass(frozen=True)
class ClusterDesign:
    """The training and validation slices encoded for the model, on the workers.

    Attributes:
        pipeline: The single-machine pipeline, its preprocessing fitted on the categories
            of all training rows (its classifier not yet).
        train: Futures of the training slice's model input, labels and snapshot weights,
            one block per worker (:func:`_slice_arrays`), and the blocks' sizes.
        layout: Per block, the partitions stacked in it, in order, and their rows.
        valid: Futures of the whole validation slice's model input, labels and weights,
            in partition order.
        n_valid: Rows of the validation slice.
    """

    pipeline: Any
    train: tuple[list[Future], list[Future], np.ndarray, list[Future]]
    layout: list[list[tuple[int, int]]]
    valid: list[Future]
    n_valid: int


def design_on_cluster(client: Client, examples: list[Future], columns: FeatureColumns,
                      model: ModelConfig) -> ClusterDesign:
    """The slices the kind is fitted on, encoded by the single-machine pipeline's
    preprocessing fitted on the categories of all training rows."""
    pipeline = build_pipeline(model, columns)
    seen = client.gather(client.map(category_values, examples, columns=columns))
    merged = {c: (set().union(*(s[c][0] for s in seen)), any(s[c][1] for s in seen))
              for c in columns.categorical}
    prep = pipeline.named_steps["prep"].fit(vocabulary_frame(merged, columns))
    prep_future = client.scatter(prep, broadcast=True)
    *train, layout = _slice_arrays(client, examples, prep_future, columns, "train")
    valid, n_valid = _whole_slice(client, examples, prep_future, columns, "valid")
    return ClusterDesign(pipeline, tuple(train), layout, valid, n_valid)


def fit_on_cluster(client: Client, designed: ClusterDesign, model: ModelConfig,
                   weight_scale: tuple[float, float] | None = None) -> Any:
    """The single-machine pipeline, its classifier fitted data-parallel on the workers by
    its kind (:meth:`~predictive_scoring.models.kinds.base.ModelKind.fit_on_dask`).

    The kind gets the training slice partitioned as the workers hold it and the whole
    validation slice for early stopping. With ``weight_scale`` (:func:`weight_means`) it
    also gets each row's snapshot weight divided by its slice's mean, as
    ``Examples.weights`` gives them on one machine; None fits unweighted.
    """
    import dask.array as da

    train, valid, n_valid = designed.train, designed.valid, designed.n_valid
    n_features = len(designed.pipeline.named_steps["prep"].get_feature_names_out())
    valid_x = da.from_delayed(_delayed(valid[0]), (n_valid, n_features), np.float64)
    valid_y = da.from_delayed(_delayed(valid[1]), (n_valid,), np.int8)
    weights = None
    if weight_scale is not None:
        valid_w = da.from_delayed(_delayed(valid[2]), (n_valid,), np.float64)
        weights = (_dask_rows(train[3], train[2], None, np.float64) / weight_scale[0],
                   valid_w / weight_scale[1])
    return kinds.get(model.kind).fit_on_dask(
        client, designed.pipeline, model,
        (_dask_rows(train[0], train[2], n_features), _dask_rows(train[1], train[2], None)),
        (valid_x, valid_y), weights)


def design_probability(client: Client, designed: ClusterDesign, pipeline: Any
                       ) -> dict[str, np.ndarray]:
    """The fitted classifier's raw probability of the training and validation rows, from
    their encoded input, each slice in its rows' order (partition by partition)."""
    classifier = pipeline[-1]
    blocks = client.gather(client.map(classifier_probability, designed.train[0],
                                      classifier=classifier))
    by_partition: dict[int, np.ndarray] = {}
    for block, parts in zip(blocks, designed.layout, strict=True):
        ends = np.cumsum([n for _, n in parts])
        for (partition, _), part in zip(parts, np.split(block, ends[:-1]), strict=True):
            by_partition[partition] = part
    train = [by_partition[p] for p in sorted(by_partition)]
    return {"train": np.concatenate(train) if train else np.empty(0),
            "valid": client.submit(classifier_probability, designed.valid[0],
                                   classifier=classifier).result()}


def classifier_probability(x: np.ndarray, classifier: Any) -> np.ndarray:
    """A fitted classifier's raw probability of encoded model input."""
    return classifier.predict_proba(x)[:, 1] if len(x) else np.empty(0)


def _delayed(future: Future) -> Any:
    from dask import delayed

    return delayed(future)


def _slice_arrays(client: Client, examples: list[Future], prep: Future,
                  columns: FeatureColumns, part: str
                  ) -> tuple[list, list, np.ndarray, list, list[list[tuple[int, int]]]]:
    """Futures of one slice's model input and labels, one block per worker holding rows of
    it (its partitions' rows stacked in partition order), the blocks' sizes, futures
    of the blocks' snapshot weights, and per block its partitions and their rows.

    One block per worker because lightgbm.dask gives every block of the training slice
    its own copy of the whole validation slice: with a block per partition, a worker
    held (and evaluated every round) as many copies as it held partitions.
    """
    designs = client.map(design, examples, prep=prep, columns=columns, part=part)
    sizes = np.asarray(client.gather(client.map(lambda d: len(d[1]), designs)))
    kept = [(i, d, int(n)) for i, (d, n) in enumerate(zip(designs, sizes, strict=True)) if n]
    holders = client.who_has([d for _, d, _ in kept])
    on_worker: dict[str, list[tuple[int, Future, int]]] = {}
    for partition, future, n in kept:
        on_worker.setdefault(sorted(holders[future.key])[0], []).append((partition, future, n))
    stacked = [client.submit(stack_designs, *(f for _, f, _ in parts), workers=[worker],
                             pure=False) for worker, parts in on_worker.items()]
    counts = np.asarray([sum(n for *_, n in parts) for parts in on_worker.values()],
                        dtype=np.int64)
    return ([client.submit(lambda d: d[0], d) for d in stacked],
            [client.submit(lambda d: d[1], d) for d in stacked], counts,
            [client.submit(lambda d: d[2], d) for d in stacked],
            [[(partition, n) for partition, _, n in parts] for parts in on_worker.values()])


def _whole_slice(client: Client, examples: list[Future], prep: Future,
                 columns: FeatureColumns, part: str) -> tuple[list[Future], int]:
    """Futures of one slice's model input, labels and snapshot weights, every partition's
    rows stacked in partition order into one block, and its number of rows.

    Stacked straight from the partitions' designs: none of them is held once the block
    is made (the validation slice every worker evaluates is this one block).
    """
    designs = client.map(design, examples, prep=prep, columns=columns, part=part)
    whole = client.submit(stack_designs, *designs, pure=False)
    n_rows = int(client.submit(lambda d: len(d[1]), whole).result())
    return [client.submit(operator.itemgetter(i), whole) for i in range(3)], n_rows


def stack_designs(*designs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Partitions' model input, labels and weights as one block (in the order given)."""
    if len(designs) == 1:
        return designs[0]
    return tuple(np.concatenate(parts) for parts in zip(*designs, strict=True))


def _dask_rows(futures: list[Future], sizes: np.ndarray, width: int | None,
               dtype: Any = None) -> Any:
    import dask.array as da

    dtype = dtype or (np.float64 if width is not None else np.int8)
    blocks = [da.from_delayed(_delayed(f), (int(n), width) if width is not None else (int(n),),
                              dtype) for f, n in zip(futures, sizes, strict=True)]
    return da.concatenate(blocks)


def _bundle_example(client: Client, examples: list[Future], test_events: list[Future],
                    scorer: LeadScorer) -> pd.DataFrame:
    """The first test examples found, with their events, as the bundle's input."""
    for partition, events_future in zip(examples, test_events, strict=True):
        rows = client.submit(first_rows, partition, "test", EXAMPLE_LEADS).result()
        if len(rows):
            events = client.submit(events_of, events_future, rows["lead_id"].tolist()).result()
            return bundle_input(rows, events, scorer)
    raise TrainingError("the test slice is empty: nothing to evaluate the model on")


