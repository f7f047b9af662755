"""Examples on Dask: each partition (whole leads, read by :mod:`.sources`) validated,
snapshotted, split and featurised by the single-machine code of data.py, features.py and
train.py, and kept on its worker; the leads open at the test period's end found and
sampled there. Only small facts cross partitions: the end of the data, the slice
boundaries of the time-ordered split, the key counts of the behaviour vocabulary, the
last lead's creation and the number of open leads; then the examples' outcome columns
(with their snapshot weights) and a sample of at most about ``POPULATION_ROWS`` open
leads come back. The fit on these examples is :mod:`.train`'s.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from predictive_scoring.config import DatasetConfig, ReadOptions, RulesConfig
from predictive_scoring.data.dataset import (
    DataValidationError,
    EventsDataset,
    TableCheck,
    categorised,
    parse_truth,
    write_quarantine,
)
from predictive_scoring.data.snapshots import Snapshots, build_snapshots
from predictive_scoring.distributed.cluster import Report, silent
from predictive_scoring.distributed.sources import (
    TABLES,
    CheckFacts,
    as_read,
    check_facts,
    check_partition,
    check_summary,
    dataset_sources,
    few_valued_columns,
    lead_id_column,
    located_checks,
    read_by_lead,
    uncoded,
)
from predictive_scoring.distributed.store import (
    Kept,
    drop,
    drop_all,
    gather_each,
    gather_on,
    keep,
    load,
    submit_on,
    take,
)
from predictive_scoring.features import FeatureSpec, key_counts, spec_from_counts
from predictive_scoring.models.columns import MODEL_DTYPE
from predictive_scoring.train import (
    POPULATION_ROWS,
    SPLITS,
    Population,
    TrainingPlan,
    open_leads,
    population_rows,
    split_rows,
    truth_of,
    with_behaviour,
)

if TYPE_CHECKING:
    from distributed import Client, Future

SLICE = "slice"
OUTCOME_COLUMNS = ["lead_id", "created_at", "as_of", "label", "weight", SLICE, "rule_points",
                   "rule_stage", "true_probability"]


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
    depend on its own lead's events only).

    The behaviour features are held as the model reads them (float32,
    :data:`MODEL_DTYPE`) and the text columns coded (:func:`coded_examples`): a
    partition's examples are most of its worker's memory until the model is fitted."""
    frame, events, names = snapshots.frame, checks["events"].kept, recipe.spec.feature_names
    features = np.empty((len(frame), len(names)), dtype=MODEL_DTYPE, order="F")
    points = np.empty(len(frame), dtype=np.float64)
    stage = np.empty(len(frame), dtype=object)
    for start in range(0, len(frame), EXAMPLE_BLOCK_ROWS):
        rows = slice(start, start + EXAMPLE_BLOCK_ROWS)
        block, result = with_behaviour(frame.iloc[rows], events, recipe.spec, recipe.rules)
        features[rows] = block[names].to_numpy()
        points[rows], stage[rows] = result.points, result.stage
    frame = pd.concat([frame, pd.DataFrame(features, index=frame.index, columns=names,
                                           copy=False)], axis=1)
    true = None
    if truth is not None:
        true = truth_of(frame, parse_truth("truth", as_read(truth), recipe.read))
    return coded_examples(frame.assign(**{
        SLICE: slice_of(frame["lead_id"], _naive(frame["created_at"]), recipe.bounds),
        "rule_points": points, "rule_stage": stage,
        "true_probability": np.nan if true is None else true}))


def coded_examples(examples: pd.DataFrame) -> pd.DataFrame:
    """Examples with their text columns but the lead id as pandas categoricals (a few
    values repeated over every row: the attributes, ``slice``, the rules' stage), as a
    worker holds them; :func:`~predictive_scoring.distributed.sources.uncoded` gives the
    text back, and the model's input reads either (``models.columns.model_frame``)."""
    text = [c for c in examples.columns if c != "lead_id" and (
        pd.api.types.is_string_dtype(examples[c].dtype)
        or examples[c].dtype == object)]
    return categorised(examples, text)


def outcomes(examples: pd.DataFrame) -> pd.DataFrame:
    """The columns the evaluation reads, one row per example (text as text)."""
    return uncoded(examples[OUTCOME_COLUMNS])


def slice_rows(examples: pd.DataFrame, part: str) -> pd.DataFrame:
    """The examples of one slice in this partition, as the worker holds them (coded)."""
    return examples.loc[examples[SLICE] == part]


def first_rows(examples: pd.DataFrame, part: str, n: int | None) -> pd.DataFrame:
    """The first ``n`` examples (None: all) of one slice in this partition, text as text
    (as one machine holds its examples)."""
    rows = slice_rows(examples, part)
    return uncoded(rows if n is None else rows.head(n))


def test_slice_events(checks: dict[str, TableCheck], snapshots: Snapshots,
                      bounds: SliceBounds) -> pd.DataFrame:
    """The kept events of this partition's test-slice leads (the leads of its test
    examples: a partition's examples are its snapshots, row for row), their text as text
    (as one machine holds its events)."""
    frame = snapshots.frame
    test = slice_of(frame["lead_id"], _naive(frame["created_at"]), bounds) == "test"
    return uncoded(events_of(checks["events"].kept, frame["lead_id"][test].unique()))


def events_of(events: pd.DataFrame, lead_ids: Any) -> pd.DataFrame:
    """The events of some leads (``lead_ids``: a list or an array of ids)."""
    return events.loc[events["lead_id"].isin(lead_ids)]


# ------------------------------------------------------------------ a partition's steps
@dataclass(frozen=True)
class PartitionTables:
    """One partition's validated tables and its rows of the simulator's truth (None when
    the dataset has none), as its worker keeps them between steps."""

    checks: dict[str, TableCheck]
    truth: pd.DataFrame | None


@dataclass(frozen=True)
class Checked:
    """A partition validated: what the driver needs of it, and its tables as kept."""

    facts: CheckFacts
    tables: Kept


def check_and_keep(leads: pd.DataFrame, events: pd.DataFrame, stage_changes: pd.DataFrame,
                   truth: pd.DataFrame | None, config: DatasetConfig, labels: dict[str, str],
                   partition: int) -> Checked:
    """Validate one partition (:func:`check_partition`) and keep its tables on this
    worker's disk: its rows as read leave the worker's memory with this task."""
    checks = check_partition(leads, events, stage_changes, config, labels)
    return Checked(check_facts(checks), keep(PartitionTables(checks, truth),
                                             f"partition {partition}'s tables"))


@dataclass(frozen=True)
class SnapshotFacts:
    """A partition's snapshots: their leads' first creation, the snapshots left out
    (past the target, censored) and the snapshots as kept."""

    first_seen: pd.Series
    left_out: tuple[int, int]
    snapshots: Kept


def snapshot_and_keep(tables: Kept, config: DatasetConfig, data_end: pd.Timestamp,
                      first_created: pd.Timestamp, partition: int) -> SnapshotFacts:
    """One partition's snapshots (:func:`partition_snapshots`), kept beside its tables."""
    snapshots = partition_snapshots(load(tables).checks, config, data_end, first_created)
    return SnapshotFacts(first_seen(snapshots),
                         (snapshots.n_past_target, snapshots.n_censored),
                         keep(snapshots, f"partition {partition}'s snapshots"))


def kept_key_counts(tables: Kept, snapshots: Kept, bounds: SliceBounds,
                    config: DatasetConfig) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """:func:`partition_key_counts` of a kept partition."""
    return partition_key_counts(load(tables).checks, load(snapshots), bounds, config)


def kept_open_leads(tables: Kept, target: Any, moment: pd.Timestamp) -> int:
    """How many of a kept partition's leads are open at ``moment``."""
    return len(partition_open_leads(load(tables).checks, target, moment))


def kept_population(tables: Kept, target: Any, moment: pd.Timestamp, recipe: ExampleRecipe,
                    fraction: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`partition_population` of a kept partition's open leads."""
    checks = load(tables).checks
    return partition_population(checks, partition_open_leads(checks, target, moment),
                                moment, recipe, fraction, seed)


@dataclass(frozen=True)
class Featurised:
    """A partition's examples built: their outcome columns (for the driver), their rows
    per slice, and the examples and its test leads' events as kept."""

    outcomes: pd.DataFrame
    sizes: dict[str, int]
    examples: Kept
    test_events: Kept


def featurise_and_keep(tables: Kept, snapshots: Kept, recipe: ExampleRecipe,
                       partition: int) -> Featurised:
    """One partition's examples (:func:`partition_examples`) and the events of its test
    leads (:func:`test_slice_events`) kept; its tables and snapshots, which no later step
    reads, leave the worker's disk."""
    kept, snaps = load(tables), load(snapshots)
    examples = partition_examples(kept.checks, snaps, kept.truth, recipe)
    events = test_slice_events(kept.checks, snaps, recipe.bounds)
    del kept, snaps
    drop(tables)
    drop(snapshots)
    counts = examples[SLICE].value_counts()
    return Featurised(outcomes(examples), {part: int(counts.get(part, 0)) for part in SPLITS},
                      keep(examples, f"partition {partition}'s examples"),
                      keep(events, f"partition {partition}'s test leads' events"))


# ------------------------------------------------------------------ open leads
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


def open_population_distributed(client: Client, checked: list[Checked],
                                recipe: ExampleRecipe, plan: TrainingPlan
                                ) -> Population | None:
    """train.py's :class:`Population` built on the workers: every lead open at the last
    lead's creation, found per partition (each holds whole leads; ``checked``: each
    partition's validation, :func:`checked_partitions`), sampled to about
    ``POPULATION_ROWS`` evenly across partitions and featurised there; only the sample
    comes back. None when no lead is open (the thresholds are then set on the training
    slice, as on one machine)."""
    stamps = [c.facts.last_created for c in checked if c.facts.last_created is not None]
    if not stamps:
        return None
    moment, target = max(stamps), plan.config.snapshots.target_stage
    tables = [c.tables for c in checked]
    n_open = sum(gather_on(client, kept_open_leads, tables, target=target, moment=moment))
    if not n_open:
        return None
    parts = gather_on(client, kept_population, tables, target=target, moment=moment,
                      recipe=recipe, fraction=min(1.0, POPULATION_ROWS / n_open),
                      seed=plan.base.training.seed)
    frame = pd.concat([f for f, _ in parts], ignore_index=True)
    return Population(moment, frame, np.concatenate([s for _, s in parts]), n_open)


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
    """Examples built on the cluster: they stay there, partition by partition, each kept
    on the disk of the worker that built it (:mod:`.store`).

    Attributes:
        left_out: Snapshots left out of the examples, all partitions together: past the
            target stage, and censored.
        examples: Each partition's examples frame as kept (features, rules' points,
            ``slice``, ``true_probability``; text columns coded, :func:`coded_examples`).
        spec: The behaviour vocabulary learnt from the training leads' events.
        summary: Rows read, kept and quarantined per table.
        quarantine_files: Files written for bad rows (quarantine policy).
        recipe: What every partition built its examples with.
        population: The leads open at the last lead's creation (a sample of them,
            featurised; :func:`open_population_distributed`), None when none is open.
        test_events: Each partition's kept events of its test-slice leads, the only rows
            of its tables the run reads afterwards (the champion scores the test leads;
            the bundle's input example is three of them).
        outcomes: The examples' outcome columns (:data:`OUTCOME_COLUMNS`), all partitions
            in partition order.
        sizes: Each partition's rows per slice (``train``, ``valid``, ``test``).
    """

    left_out: tuple[int, int]
    examples: list[Kept]
    spec: FeatureSpec
    summary: pd.DataFrame
    quarantine_files: list[Path]
    recipe: ExampleRecipe
    population: Population | None
    test_events: list[Kept]
    outcomes: pd.DataFrame
    sizes: list[dict[str, int]]

    def release(self, client: Client) -> None:
        """Remove the kept examples and test events from the workers' disks."""
        drop_all(client, [*self.examples, *self.test_events])


def build_examples_distributed(client: Client, inputs: TrainingInputs, n_partitions: int,
                               report: Report = silent) -> PartitionedExamples:
    """Validate, snapshot, split and featurise an events dataset partition by partition.

    Each step runs partition by partition on the worker that keeps the partition
    (:mod:`.store`): a worker's memory holds the partition it works on and the small
    facts of the others, whatever the number of partitions.

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
    tables = {name: read_by_lead(source, lead_id_column(config, name), n_partitions,
                                 few_valued_columns(source, lead_id_column(config, name))
                                 if name in TABLES else ())
              for name, source in sources.items()}
    labels = {name: source.label for name, source in sources.items()}
    checked = gather_each(checked_partitions(client, tables, config, labels))
    kept = [c.tables for c in checked]  # removed from the disks if the build stops
    try:
        facts = [c.facts for c in checked]
        located = located_checks(facts, {n: sources[n] for n in TABLES})
        quarantine_files = _apply_policy(located, inputs)
        report("Building snapshots")
        snapshots = gather_each([submit_on(
            client, snapshot_and_keep, c.tables, config=config, partition=i,
            data_end=max(f.data_end for f in facts if f.data_end is not None),
            first_created=min(f.first_created for f in facts if f.first_created is not None))
            for i, c in enumerate(checked)])
        kept += [s.snapshots for s in snapshots]
        bounds = slice_bounds(pd.concat([s.first_seen for s in snapshots]), base.training)
        report("Learning the behaviour vocabulary from the training leads")
        spec = vocabulary_of(gather_each([
            submit_on(client, kept_key_counts, c.tables, s.snapshots, bounds=bounds,
                      config=config) for c, s in zip(checked, snapshots, strict=True)]),
                             config)
        recipe = ExampleRecipe(bounds, spec, inputs.rules, config.read)
        report("Finding the leads open at the test period's end")
        population = open_population_distributed(client, checked, recipe, inputs)
        report("Building features and the rules' points per partition")
        featurised = gather_each([
            submit_on(client, featurise_and_keep, c.tables, s.snapshots, recipe=recipe,
                      partition=i)
            for i, (c, s) in enumerate(zip(checked, snapshots, strict=True))])
    except BaseException:
        drop_all(client, kept)
        raise
    left = (sum(s.left_out[0] for s in snapshots), sum(s.left_out[1] for s in snapshots))
    frame = pd.concat([f.outcomes for f in featurised], ignore_index=True)
    return PartitionedExamples(left, [f.examples for f in featurised], spec,
                               check_summary(facts, located), quarantine_files, recipe,
                               population, [f.test_events for f in featurised], frame,
                               [f.sizes for f in featurised])


def _apply_policy(checks: dict[str, TableCheck], inputs: TrainingInputs) -> list[Path]:
    problems = pd.concat([c.problems for c in checks.values()], ignore_index=True)
    if not len(problems):
        return []
    if inputs.on_bad_rows == "fail":
        raise DataValidationError(problems, f"dataset '{inputs.config.name}' has bad rows "
                                  "(rerun with --on-bad-rows quarantine to set them aside)")
    return write_quarantine(checks, inputs.quarantine_dir or Path("quarantine"))


def checked_partitions(client: Client, tables: dict[str, Any], config: DatasetConfig,
                       labels: dict[str, str]) -> list[Future]:
    """Futures of each partition's validation (:func:`check_kept`), in partition order,
    from the tables read by lead (Dask DataFrames, :func:`read_by_lead`; the truth's too
    when the tables hold it).

    Each table's partition is kept on its worker's disk as soon as the shuffle gives it
    (each such task has that one input, so it runs right after it): the shuffle hands
    out its partitions as they are ready, and a partition waiting for its other tables
    would otherwise stay in memory; every worker held most of its partitions' events at
    once. Each partition's rows as read are then validated on that worker and leave it.
    """
    from dask import delayed

    names = [name for name in (*TABLES, "truth") if name in tables]
    parts = {name: tables[name].to_delayed() for name in names}
    n = len(parts[TABLES[0]])
    read = client.gather(client.compute([
        delayed(keep)(parts[name][i], f"partition {i}'s {name} rows as read")
        for i in range(n) for name in names]))
    checks = []
    for i in range(n):
        rows = dict(zip(names, read[i * len(names):(i + 1) * len(names)], strict=True))
        home, first = rows["events"].worker, n - i
        # a table's rows kept on another worker come from there (the shuffle places
        # each table's partitions on its own), the partitions in order
        inputs = {name: kept if kept.worker == home else client.submit(
            take, kept, workers=[kept.worker], allow_other_workers=True, pure=False,
            priority=first) for name, kept in rows.items()}
        checks.append(client.submit(
            check_kept, inputs["leads"], inputs["events"], inputs["stage_changes"],
            inputs.get("truth"), config=config, labels=labels, partition=i,
            workers=[home], allow_other_workers=True, pure=False, priority=first))
    return checks


def check_kept(leads: Kept | pd.DataFrame, events: Kept | pd.DataFrame,
               stage_changes: Kept | pd.DataFrame, truth: Kept | pd.DataFrame | None,
               config: DatasetConfig, labels: dict[str, str], partition: int) -> Checked:
    """:func:`check_and_keep` of a partition's rows as read, each kept on this worker's
    disk (read and removed here) or given."""
    rows = [take(r) if isinstance(r, Kept) else r
            for r in (leads, events, stage_changes, truth)]
    return check_and_keep(*rows, config, labels, partition)


def vocabulary_of(counts: list[tuple[Counter, Counter]], config: DatasetConfig) -> FeatureSpec:
    types: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for type_counts, pair_counts in counts:
        types.update(type_counts)
        pairs.update(pair_counts)
    return spec_from_counts(types, pairs, config.features)
