"""Scale-out on Dask: partitioned features, ``lightgbm.dask`` training, partitioned scoring.

The optional ``[dask]`` extra; dask is imported here only, and only when a function
needs it. Nothing is re-implemented: each Parquet table (a file, a folder or a glob) is
read as a Dask DataFrame and shuffled so that all rows of one lead land in the same
partition of every table (``lead_bucket``); each partition then runs the single-machine
code of data.py (validation, snapshots), features.py / train.py (behaviour features and
the rules' points) and predict.py (chunk scoring). Only small facts cross partitions: the
end of the data, the slice boundaries of the time-ordered split, the key counts of the
behaviour vocabulary and the category vocabulary of the encoder. LightGBM then trains
data-parallel on the workers (``DaskLGBMClassifier``), and train.py calibrates,
evaluates and builds the same :class:`LeadScorer` bundle as the single-machine path.

Row numbers in messages count data rows of each file (1 is the first row), as
data.py's do, and name the file they are in.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from predictive_scoring.config import (
    BaseConfig,
    ColumnNames,
    DatasetConfig,
    ModelConfig,
    ReadOptions,
    RulesConfig,
)
from predictive_scoring.data.dataset import (
    ROW,
    DataValidationError,
    EventsDataset,
    KnownLeads,
    TableCheck,
    check_events,
    check_leads,
    check_scoring_events,
    check_stage_changes,
    parse_truth,
    write_quarantine,
)
from predictive_scoring.data.snapshots import Snapshots, build_snapshots
from predictive_scoring.errors import IncompleteOutput
from predictive_scoring.explain import global_weights
from predictive_scoring.features import FeatureSpec, key_counts, spec_from_counts
from predictive_scoring.models import kinds
from predictive_scoring.models.columns import FeatureColumns, feature_columns, model_frame
from predictive_scoring.models.scorer import LeadScorer, build_pipeline
from predictive_scoring.predict import (
    NUMBER_COLUMNS,
    output_columns,
    prepare_chunk,
    score_chunk,
)
from predictive_scoring.train import (
    EXPLANATION_ROWS,
    SPLITS,
    Examples,
    TrainingError,
    TrainingRun,
    bundle_input,
    check_enough_data,
    finish_training,
    leakage_warnings,
    snapshot_note,
    split_rows,
    training_run,
    truth_of,
    with_behaviour,
)

if TYPE_CHECKING:
    from distributed import Client, Future

BUCKET = "_bucket"
N_BUCKETS = 1 << 20
"""Lead buckets; many more than partitions, so hashing them spreads leads evenly."""
SLICE = "slice"
LOCAL = "local"
PART_GLOB = "part-*.parquet"
OUTCOME_COLUMNS = ["lead_id", "created_at", "as_of", "label", SLICE, "rule_points",
                   "rule_stage", "true_probability"]
LEAKAGE_BATCH = 16
"""Feature columns gathered at a time for the leakage check (bounds client memory)."""
EXAMPLE_LEADS = 3
_OUTPUT_TYPES = {"lead_id": pa.string(), "as_of": pa.timestamp("ns", tz="UTC"),
                 "probability": pa.float64(), "score": pa.int64(),
                 "suggested_stage": pa.string(), "rule_points": pa.float64(),
                 "rule_stage": pa.string(), "error": pa.string()}


def output_schema(reasons: int | None) -> pa.Schema:
    """Every scores part file's schema: predict.py's columns for ``reasons``, typed even
    where a partition has them all missing (explanation numbers float, the rest text)."""
    def kind(name: str) -> pa.DataType:
        return _OUTPUT_TYPES.get(name, pa.float64() if name in NUMBER_COLUMNS else pa.string())
    return pa.schema([(name, kind(name)) for name in output_columns(reasons)])


Report = Callable[[str], None]


def _silent(_: str) -> None:
    return None


# ------------------------------------------------------------------ the cluster
@contextmanager
def dask_client(scheduler: str, n_workers: int = 2,
                threads_per_worker: int = 1) -> Iterator[Client]:
    """A client of a running scheduler, or of a local cluster started and closed here.

    Args:
        scheduler: ``local`` for a LocalCluster of worker processes on 127.0.0.1, or a
            running scheduler's address (``tcp://host:8786``).
        n_workers: Worker processes of the local cluster.
        threads_per_worker: Threads per local worker.

    Yields:
        The connected client (closed on exit, with the local cluster).

    Raises:
        ValueError: The ``[dask]`` extra is not installed.
    """
    _require_dask()
    from distributed import Client, LocalCluster

    if scheduler != LOCAL:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                      processes=True, host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def _require_dask() -> None:
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ValueError(f"--engine dask needs the [dask] extra ({exc.name} is missing): "
                         "pip install -e '.[dask]'") from None


# ------------------------------------------------------------------ reading
@dataclass(frozen=True)
class Piece:
    """One Parquet row group and the number of rows of its table before it."""

    file: str
    row_group: int
    rows_before: int


@dataclass(frozen=True)
class ParquetSource:
    """The Parquet files of one table (a file, a folder or a glob), numbered as one.

    Attributes:
        label: The path as given (for messages).
        files: The files, in name order.
        file_starts: Rows of the table before each file.
        pieces: Every row group, the unit of reading.
        n_rows: Rows in all files (from their metadata).
    """

    label: str
    files: tuple[str, ...]
    file_starts: tuple[int, ...]
    pieces: tuple[Piece, ...]
    n_rows: int

    def locate(self, rows: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The file and the row within it (1-based) of table-wide row numbers."""
        rows = np.asarray(rows, dtype=np.int64)
        index = np.searchsorted(np.asarray(self.file_starts), rows - 1, side="right") - 1
        return (np.asarray(self.files, dtype=object)[index],
                rows - np.asarray(self.file_starts)[index])


def parquet_source(path: str | Path) -> ParquetSource:
    """Find a table's Parquet files and their row groups (metadata only).

    Args:
        path: A Parquet file, a folder (its ``*.parquet`` files, recursively) or a glob.

    Raises:
        ValueError: No Parquet file matches.
    """
    text = str(path)
    if Path(text).is_dir():
        files = sorted(str(f) for f in Path(text).rglob("*.parquet"))
    elif glob.has_magic(text):
        files = sorted(glob.glob(text, recursive=True))
    else:
        files = [text] if Path(text).is_file() else []
    if not files:
        raise ValueError(f"no Parquet files at {text} (give a .parquet file, a folder of "
                         "them or a glob such as 'events/*.parquet')")
    pieces, starts, total = [], [], 0
    for file in files:
        starts.append(total)
        metadata = pq.ParquetFile(file).metadata
        for group in range(metadata.num_row_groups):
            pieces.append(Piece(file, group, total))
            total += metadata.row_group(group).num_rows
    return ParquetSource(text, tuple(files), tuple(starts), tuple(pieces), total)


def lead_bucket(lead_ids: pd.Series) -> np.ndarray:
    """A stable bucket per lead id (as validation reads it: text, stripped)."""
    text = lead_ids.astype("string").str.strip().fillna("").to_numpy(dtype=object)
    return (pd.util.hash_array(text, categorize=False) % N_BUCKETS).astype(np.int64)


def read_piece(piece: Piece, lead_column: str) -> pd.DataFrame:
    """One row group, its table-wide row numbers in ``_row`` and lead bucket in ``_bucket``."""
    frame = pq.ParquetFile(piece.file).read_row_group(piece.row_group).to_pandas()
    frame.columns = [str(c).strip() for c in frame.columns]
    ids = frame[lead_column] if lead_column in frame else pd.Series("", index=frame.index)
    return frame.assign(**{ROW: piece.rows_before + np.arange(1, len(frame) + 1),
                           BUCKET: lead_bucket(ids)})


def read_by_lead(source: ParquetSource, lead_column: str, n_partitions: int) -> Any:
    """The table as a Dask DataFrame whose partition ``i`` holds buckets of leads.

    Every table read with the same ``n_partitions`` puts a lead's rows in the same
    partition, so partition ``i`` of leads, events and stage changes go together.
    """
    import dask.dataframe as dd

    empty = pq.read_schema(source.files[0]).empty_table().to_pandas()
    empty.columns = [str(c).strip() for c in empty.columns]
    meta = empty.assign(**{ROW: pd.Series(dtype="int64"), BUCKET: pd.Series(dtype="int64")})
    frame = dd.from_map(read_piece, list(source.pieces), lead_column=lead_column,
                        meta=meta, enforce_metadata=False)
    return frame.shuffle(on=BUCKET, npartitions=n_partitions)


def partitions(client: Client, frame: Any) -> list[Future]:
    """The frame's partitions as futures on the cluster, in partition order."""
    return client.compute(frame.to_delayed())


def dataset_files(config: DatasetConfig, data_dir: Path) -> list[Path]:
    """Every Parquet file an events-shaped dataset config names (for its fingerprint)."""
    root = config.root_dir(data_dir)
    files = config.files
    names = [files.leads, files.events, files.stage_changes]
    return [Path(f) for name in names for f in parquet_source(root / name).files]


# ------------------------------------------------------------------ validation
TABLES = ("leads", "events", "stage_changes")


def check_partition(leads: pd.DataFrame, events: pd.DataFrame, stage_changes: pd.DataFrame,
                    config: DatasetConfig, labels: dict[str, str]) -> dict[str, TableCheck]:
    """data.py's validation of one partition (whole leads: ids, events and stage changes).

    Args:
        leads: The partition's leads as read, with ``_row`` and ``_bucket``.
        events: Its events, same.
        stage_changes: Its stage changes, same.
        config: The dataset config.
        labels: Table name -> its path as configured (for messages).
    """
    lead_check = check_leads(labels["leads"], leads.drop(columns=BUCKET), config)
    known = KnownLeads.of(lead_check, config.columns.lead_id)
    return {
        "leads": lead_check,
        "events": check_events(labels["events"], events.drop(columns=BUCKET), config, known),
        "stage_changes": check_stage_changes(labels["stage_changes"],
                                             stage_changes.drop(columns=BUCKET), config, known),
    }


@dataclass(frozen=True)
class CheckFacts:
    """What the driver needs from one partition's validation."""

    read: dict[str, int]
    problems: dict[str, pd.DataFrame]
    quarantined: dict[str, pd.DataFrame]
    data_end: pd.Timestamp | None
    first_created: pd.Timestamp | None


def check_facts(checks: dict[str, TableCheck]) -> CheckFacts:
    """Counts, problems, bad rows and time range of one validated partition."""
    stamps = [checks["leads"].kept["created_at"].max(), checks["events"].kept["timestamp"].max(),
              checks["stage_changes"].kept["timestamp"].max()]
    known = [s for s in stamps if pd.notna(s)]
    first = checks["leads"].kept["created_at"].min()
    return CheckFacts({n: c.n_read for n, c in checks.items()},
                      {n: c.problems for n, c in checks.items()},
                      {n: c.quarantined for n, c in checks.items()},
                      max(known) if known else None, first if pd.notna(first) else None)


def located_checks(facts: Sequence[CheckFacts], sources: dict[str, ParquetSource]
                   ) -> dict[str, TableCheck]:
    """Problems and bad rows of all partitions per table, rows named by file and row.

    The returned checks hold no kept rows (those stay on the workers).
    """
    checks = {}
    for name, source in sources.items():
        problems = pd.concat([f.problems[name] for f in facts], ignore_index=True)
        if len(problems):
            files, rows = source.locate(problems["row"])
            problems = problems.assign(file=files, row=rows)
        problems = problems.sort_values(["file", "row"], kind="stable").reset_index(drop=True)
        bad = pd.concat([f.quarantined[name] for f in facts], ignore_index=True)
        bad = bad.drop(columns=BUCKET, errors="ignore")
        if len(bad):
            files, rows = source.locate(bad[ROW])
            bad = bad.assign(**{ROW: rows}).assign(file=files).sort_values(["file", ROW])
        checks[name] = TableCheck(source.label, bad.iloc[:0], bad.reset_index(drop=True),
                                  problems)
    return checks


def check_summary(facts: Sequence[CheckFacts], checks: dict[str, TableCheck]) -> pd.DataFrame:
    """Rows read, kept and quarantined, and problems found, per table (as data.py's)."""
    rows = []
    for name, check in checks.items():
        read = sum(f.read[name] for f in facts)
        rows.append({"file": check.file, "read": read, "kept": read - len(check.quarantined),
                     "quarantined": len(check.quarantined), "problems": len(check.problems)})
    return pd.DataFrame(rows, columns=["file", "read", "kept", "quarantined", "problems"])


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


def partition_examples(checks: dict[str, TableCheck], snapshots: Snapshots,
                       truth: pd.DataFrame | None, bounds: SliceBounds, spec: FeatureSpec,
                       rules: RulesConfig, read: ReadOptions) -> pd.DataFrame:
    """One partition's examples: snapshots, behaviour features, the rules' points, slice
    and (simulated data) the true probability, from train.py's own functions."""
    frame, points = with_behaviour(snapshots.frame, checks["events"].kept, spec, rules)
    true = None
    if truth is not None:
        true = truth_of(frame, parse_truth("truth", truth.drop(columns=BUCKET), read))
    return frame.assign(**{
        SLICE: slice_of(frame["lead_id"], _naive(frame["created_at"]), bounds),
        "rule_points": points.points, "rule_stage": points.stage,
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
           part: str) -> tuple[np.ndarray, np.ndarray]:
    """One slice's encoded model input and labels in this partition."""
    rows = examples.loc[examples[SLICE] == part]
    features = prep.transform(model_frame(rows, columns))
    return np.asarray(features, dtype=np.float64), rows["label"].to_numpy(np.int8)


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


def first_rows(examples: pd.DataFrame, part: str, n: int) -> pd.DataFrame:
    """The first ``n`` examples of one slice in this partition."""
    return examples.loc[examples[SLICE] == part].head(n)


def events_of(checks: dict[str, TableCheck], lead_ids: list[str]) -> pd.DataFrame:
    """The kept events of some leads of this partition."""
    events = checks["events"].kept
    return events.loc[events["lead_id"].isin(lead_ids)]


# ------------------------------------------------------------------ training
@dataclass
class DistributedTraining:
    """A training run on the cluster, ready for the CLI to write and log.

    Attributes:
        run: As the single-machine path returns it; ``run.examples.frame`` holds the
            outcome columns only (the features stay on the workers).
        example: A few raw test leads in the bundle's input format.
        summary: Rows read, kept and quarantined per table.
        quarantine_files: Files written for bad rows (quarantine policy).
        partitions: Partitions the work was split into.
    """

    run: TrainingRun
    example: pd.DataFrame
    summary: pd.DataFrame
    quarantine_files: list[Path] = field(default_factory=list)
    partitions: int = 0


@dataclass(frozen=True)
class TrainingInputs:
    """What a distributed training run reads: configs and where bad rows go."""

    config: DatasetConfig
    model: ModelConfig
    rules: RulesConfig
    base: BaseConfig
    strict: bool = False
    on_bad_rows: Literal["fail", "quarantine"] = "fail"
    quarantine_dir: Path | None = None


@dataclass
class PartitionedExamples:
    """Examples built on the cluster: they stay there, partition by partition.

    Attributes:
        checks: Futures of each partition's validation (kept rows included).
        snapshots: Futures of each partition's snapshots.
        examples: Futures of each partition's examples frame (features, rules' points,
            ``slice``, ``true_probability``).
        spec: The behaviour vocabulary learnt from the training leads' events.
        facts: Each partition's validation facts.
        summary: Rows read, kept and quarantined per table.
        quarantine_files: Files written for bad rows (quarantine policy).
    """

    checks: list[Future]
    snapshots: list[Future]
    examples: list[Future]
    spec: FeatureSpec
    summary: pd.DataFrame
    quarantine_files: list[Path]


def build_examples_distributed(client: Client, inputs: TrainingInputs, n_partitions: int,
                               report: Report = _silent) -> PartitionedExamples:
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
    sources = _sources(config, base)
    tables = {name: partitions(client, read_by_lead(source, _lead_column(config, name),
                                                    n_partitions))
              for name, source in sources.items()}
    labels = {name: source.label for name, source in sources.items()}
    checks = client.map(check_partition, tables["leads"], tables["events"],
                        tables["stage_changes"], config=config, labels=labels)
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
    truth = tables.get("truth") or [None] * n_partitions
    examples = client.map(partition_examples, checks, snapshots, truth, bounds=bounds,
                          spec=spec, rules=inputs.rules, read=config.read)
    return PartitionedExamples(checks, snapshots, examples, spec,
                               check_summary(facts, located), quarantine_files)


def train_distributed(client: Client, inputs: TrainingInputs, n_partitions: int,
                      report: Report = _silent) -> DistributedTraining:
    """Validate, snapshot, featurise, train, calibrate and evaluate on a Dask cluster.

    Args:
        client: A connected Dask client; every worker must read the dataset's paths.
        inputs: The configs (an events-shaped dataset of Parquet files, folders or
            globs; a LightGBM model) and the bad-rows policy.
        n_partitions: Partitions of leads (each a set of whole leads).
        report: Called with the name of each stage as it starts.

    Raises:
        DataValidationError: Bad rows under the ``fail`` policy.
        TrainingError: Too little data, or leakage warnings when ``strict``.
        ValueError: A table shape or a model other than LightGBM.
    """
    config, base = inputs.config, inputs.base
    check_trains_on_dask(inputs.model)
    built = build_examples_distributed(client, inputs, n_partitions, report)
    examples = built.examples
    frame = pd.concat(client.gather(client.map(outcomes, examples)), ignore_index=True)
    columns = feature_columns(config.attributes, built.spec, config.feature_groups)
    rows = {name: np.flatnonzero(frame[SLICE].to_numpy() == name) for name in SPLITS}
    label = frame["label"].to_numpy(np.int8)
    check_enough_data(label[rows["train"]], base.training)
    report("Checking for leakage")
    warnings = _leakage(client, examples, frame, label, rows, columns, base)
    if inputs.strict and warnings:
        raise TrainingError("stopped by --strict: " + "; ".join(warnings))
    report(f"Training {inputs.model.kind} on the workers")
    pipeline = fit_on_cluster(client, examples, columns, inputs.model)
    report("Calibrating and evaluating")
    raw_all = np.concatenate(client.gather(client.map(raw_probability, examples,
                                                      pipeline=pipeline, columns=columns)))
    truth_values = frame["true_probability"].to_numpy(float)
    run_examples = Examples(frame, label, frame["created_at"],
                            None if np.isnan(truth_values).any() else truth_values,
                            frame["rule_points"].to_numpy(float),
                            frame["rule_stage"].to_numpy(object), columns, built.spec)
    seed = base.training.seed
    trained = finish_training(run_examples, rows, pipeline,
                              {name: raw_all[r] for name, r in rows.items()}, config,
                              inputs.model, inputs.rules, base,
                              _model_input_sample(client, examples, "train", columns,
                                                  len(rows["train"]), seed))
    notes = [snapshot_note(*_left_out(client, built.snapshots))]
    weights = global_weights(trained.scorer, _model_input_sample(
        client, examples, "test", columns, len(rows["test"]), seed))
    run = training_run(run_examples, trained, config, inputs.model, warnings, notes, weights)
    example = _bundle_example(client, examples, built.checks, trained.scorer)
    return DistributedTraining(run, example, built.summary, built.quarantine_files,
                               n_partitions)


def check_trains_on_dask(model: ModelConfig) -> None:
    """Refuse a model whose kind does not train on Dask, naming the kinds that do.

    Raises:
        ValueError: The model's kind does not train on Dask.
    """
    if not kinds.get(model.kind).trains_on_dask:
        fit = kinds.on_dask()
        raise ValueError(f"--engine dask trains {', '.join(fit)} models, not {model.kind}; "
                         f"use --model {fit[0]} or --engine local")


def _sources(config: DatasetConfig, base: BaseConfig) -> dict[str, ParquetSource]:
    root = config.root_dir(base.resolved_data_dir())
    files = config.files
    names = {"leads": files.leads, "events": files.events,
             "stage_changes": files.stage_changes}
    if files.truth and (glob.has_magic(files.truth) or (root / files.truth).exists()):
        names["truth"] = files.truth
    return {name: parquet_source(root / path) for name, path in names.items()}


def _lead_column(config: DatasetConfig, table: str) -> str:
    return "lead_id" if table == "truth" else config.columns.lead_id


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


def _leakage(client: Client, examples: list[Future], frame: pd.DataFrame, label: np.ndarray,
             rows: dict[str, np.ndarray], columns: FeatureColumns,
             base: BaseConfig) -> list[str]:
    """train.py's leakage check, over batches of columns gathered from the workers."""
    warnings = []
    names = columns.all
    for start in range(0, len(names), LEAKAGE_BATCH):
        batch = names[start:start + LEAKAGE_BATCH]
        values = pd.concat(client.gather(client.map(columns_of, examples, names=batch)),
                           ignore_index=True)
        subset = FeatureColumns(tuple(c for c in columns.categorical if c in batch),
                                tuple(c for c in columns.numeric if c in batch),
                                {c: columns.groups[c] for c in batch})
        warnings += leakage_warnings(values, label, rows, subset, base.training.leakage_auc)
    return warnings


def fit_on_cluster(client: Client, examples: list[Future], columns: FeatureColumns,
                   model: ModelConfig) -> Any:
    """The single-machine pipeline, its classifier fitted data-parallel on the workers by
    its kind (:meth:`~predictive_scoring.models.kinds.base.ModelKind.fit_on_dask`).

    The encoder learns the categories of all training rows; the kind gets the training
    slice partitioned as the workers hold it and the whole validation slice for early
    stopping.
    """
    import dask.array as da

    pipeline = build_pipeline(model, columns)
    seen = client.gather(client.map(category_values, examples, columns=columns))
    merged = {c: (set().union(*(s[c][0] for s in seen)), any(s[c][1] for s in seen))
              for c in columns.categorical}
    prep = pipeline.named_steps["prep"].fit(vocabulary_frame(merged, columns))
    prep_future = client.scatter(prep, broadcast=True)
    train = _slice_arrays(client, examples, prep_future, columns, "train")
    valid = _slice_arrays(client, examples, prep_future, columns, "valid")
    whole_valid = [client.submit(np.concatenate, part, pure=False) for part in valid[:2]]
    n_valid, n_features = int(valid[2].sum()), len(columns.all)
    valid_x = da.from_delayed(_delayed(whole_valid[0]), (n_valid, n_features), np.float64)
    valid_y = da.from_delayed(_delayed(whole_valid[1]), (n_valid,), np.int8)
    return kinds.get(model.kind).fit_on_dask(
        client, pipeline, model,
        (_dask_rows(train[0], train[2], n_features), _dask_rows(train[1], train[2], None)),
        (valid_x, valid_y))


def _delayed(future: Future) -> Any:
    from dask import delayed

    return delayed(future)


def _slice_arrays(client: Client, examples: list[Future], prep: Future,
                  columns: FeatureColumns, part: str) -> tuple[list, list, np.ndarray]:
    """Futures of one slice's model input and labels per non-empty partition, and sizes."""
    designs = client.map(design, examples, prep=prep, columns=columns, part=part)
    sizes = np.asarray(client.gather(client.map(lambda d: len(d[1]), designs)))
    kept = [d for d, n in zip(designs, sizes, strict=True) if n]
    return ([client.submit(lambda d: d[0], d) for d in kept],
            [client.submit(lambda d: d[1], d) for d in kept], sizes[sizes > 0])


def _dask_rows(futures: list[Future], sizes: np.ndarray, width: int | None) -> Any:
    import dask.array as da

    dtype = np.float64 if width is not None else np.int8
    blocks = [da.from_delayed(_delayed(f), (int(n), width) if width is not None else (int(n),),
                              dtype) for f, n in zip(futures, sizes, strict=True)]
    return da.concatenate(blocks)


def _bundle_example(client: Client, examples: list[Future], checks: list[Future],
                    scorer: LeadScorer) -> pd.DataFrame:
    """The first test examples found, with their events, as the bundle's input."""
    for partition, checked in zip(examples, checks, strict=True):
        rows = client.submit(first_rows, partition, "test", EXAMPLE_LEADS).result()
        if len(rows):
            events = client.submit(events_of, checked, rows["lead_id"].tolist()).result()
            return bundle_input(rows, events, scorer)
    raise TrainingError("the test slice is empty: nothing to evaluate the model on")


# ------------------------------------------------------------------ scoring
@dataclass(frozen=True)
class PartitionScores:
    """What scoring one partition produced."""

    partition: int
    rows_in: int
    rows_scored: int
    rows_failed: int
    path: str
    bad_leads: pd.DataFrame
    bad_events: pd.DataFrame


@dataclass(frozen=True)
class PartitionFailure:
    """A partition that failed, every attempt's error."""

    partition: int
    errors: tuple[str, ...]


class PartitionsFailed(IncompleteOutput):
    """Partitions failed on every attempt: the output is incomplete."""

    def __init__(self, failures: Sequence[PartitionFailure], output: Path):
        self.failures = list(failures)
        lines = [f"{len(failures)} partition(s) failed on every attempt, so {output} is "
                 "incomplete (the other partitions' files are there):"]
        lines += [f"  partition {f.partition}: {len(f.errors)} attempt(s); last error: "
                  f"{f.errors[-1]}" for f in failures]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class DistributedScoreSummary:
    """Rows in, rows scored and failed, the output folder and what was retried."""

    rows_in: int
    rows_scored: int
    rows_failed: int
    output: Path
    partitions: int
    retried: dict[int, tuple[str, ...]]
    quarantine: Path | None
    events_quarantine: Path | None


def score_partition(leads: pd.DataFrame, events: pd.DataFrame | None, scorer: LeadScorer,
                    as_of: pd.Timestamp, read: ReadOptions, output: str, partition: int,
                    events_label: str, reasons: int | None = None) -> PartitionScores:
    """predict.py's chunk scoring of one partition, written as ``part-NNNNN.parquet``
    (``reasons`` as in :func:`~predictive_scoring.predict.score_chunk`).

    The file appears whole or not at all (written aside, then renamed), so a retried
    partition never leaves half a file.
    """
    usable, bad_events = None, pd.DataFrame()
    if events is not None:
        check = check_scoring_events(events_label, events.drop(columns=BUCKET), read,
                                     ColumnNames())
        usable, bad_events = check.kept, check.quarantined
    chunk = leads.drop(columns=[BUCKET, ROW]).reset_index(drop=True)
    frame, error = prepare_chunk(chunk, scorer, as_of, read)
    scores = score_chunk(scorer, frame, error, usable, reasons)
    scores["as_of"] = pd.to_datetime(scores["as_of"], utc=True)
    path = Path(output) / f"part-{partition:05d}.parquet"
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(pa.Table.from_pandas(scores, schema=output_schema(reasons),
                                        preserve_index=False), staging)
    staging.replace(path)
    bad = (error != "").to_numpy()
    bad_leads = leads.iloc[np.flatnonzero(bad)].drop(columns=BUCKET).assign(
        error=error[bad].to_numpy())
    return PartitionScores(partition, len(chunk), int((~bad).sum()), int(bad.sum()),
                           str(path), bad_leads, bad_events)


PartitionJob = Callable[..., PartitionScores]


def run_partitions(client: Client, submit: Callable[[int], Future], n: int, retries: int,
                   done: Callable[[int], None] = lambda _: None
                   ) -> tuple[dict[int, Any], dict[int, list[str]], list[PartitionFailure]]:
    """Run one job per partition, resubmitting a failed one up to ``retries`` times.

    Args:
        client: The Dask client.
        submit: Starts partition ``i``'s job and returns its future.
        n: Number of partitions.
        retries: Extra attempts per partition after a failure.
        done: Called with the number of partitions finished so far.

    Returns:
        Results by partition, the errors of every failed attempt by partition, and the
        partitions that failed on every attempt.
    """
    from distributed import as_completed

    running = {submit(i): i for i in range(n)}
    results: dict[int, Any] = {}
    errors: dict[int, list[str]] = {}
    failures = []
    pending = as_completed(list(running))
    for future in pending:
        partition = running.pop(future)
        if future.status == "finished":
            results[partition] = future.result()
            done(len(results))
            continue
        errors.setdefault(partition, []).append(_error_text(future.exception()))
        if len(errors[partition]) <= retries:
            again = submit(partition)
            running[again] = partition
            pending.add(again)
        else:
            failures.append(PartitionFailure(partition, tuple(errors[partition])))
    return results, errors, sorted(failures, key=lambda f: f.partition)


def _error_text(error: BaseException | None) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) < 2000 else text[:2000] + " ..."


def score_distributed(client: Client, scorer: LeadScorer, leads: str | Path,
                      events: str | Path | None, as_of: pd.Timestamp, output: Path,
                      n_partitions: int, retries: int = 2, read: ReadOptions | None = None,
                      job: PartitionJob = score_partition,
                      done: Callable[[int], None] = lambda _: None,
                      reasons: int | None = None) -> DistributedScoreSummary:
    """Score a Parquet table of leads partition by partition into a Parquet folder.

    Args:
        client: A connected Dask client; every worker must read the inputs and write to
            ``output``.
        scorer: The bundle's scorer.
        leads: Leads (a Parquet file, folder or glob): lead_id, attributes, and for the
            events shape created_at and optionally a per-row as_of.
        events: The leads' events (Parquet file, folder or glob), or None.
        as_of: Moment to score at for rows without their own as_of.
        output: A new or empty folder for ``part-NNNNN.parquet`` files.
        n_partitions: Partitions of leads.
        retries: Extra attempts for a partition that fails.
        read: How text timestamps are read.
        job: The per-partition job (:func:`score_partition` or a wrapper of it).
        done: Called with the number of partitions finished.
        reasons: None: scores only; 0: also fit vs engagement; k: also the top k reasons
            up and down (as :func:`~predictive_scoring.predict.score_file`).

    Returns:
        The summary; rows that could not be scored have their reason in ``error`` and
        are listed with file and row in ``<output>.quarantine.csv``.

    Raises:
        PartitionsFailed: Some partition failed on every attempt.
        IncompleteOutput: Rows out differ from rows in.
        ValueError: ``output`` holds files, or no Parquet input was found.
    """
    read = read or ReadOptions()
    if output.exists() and any(output.iterdir()):
        raise ValueError(f"{output} is not empty; score into a new or empty folder so no "
                         "earlier part file mixes with this run's")
    output.mkdir(parents=True, exist_ok=True)
    lead_source = parquet_source(leads)
    lead_parts = partitions(client, read_by_lead(lead_source, "lead_id", n_partitions))
    event_source = parquet_source(events) if events is not None else None
    event_parts = (partitions(client, read_by_lead(event_source, ColumnNames().lead_id,
                                                   n_partitions))
                   if event_source else [None] * n_partitions)
    scorer_future = client.scatter(scorer, broadcast=True)

    def submit(i: int) -> Future:
        return client.submit(job, lead_parts[i], event_parts[i], scorer_future, as_of, read,
                             str(output), i, event_source.label if event_source else "",
                             reasons, pure=False)

    results, errors, failures = run_partitions(client, submit, n_partitions, retries, done)
    if failures:
        raise PartitionsFailed(failures, output)
    scored = [results[i] for i in range(n_partitions)]
    summary = _checked_counts(scored, lead_source, output)
    bad_leads = _located(pd.concat([s.bad_leads for s in scored]), lead_source)
    bad_events = (_located(pd.concat([s.bad_events for s in scored]), event_source)
                  if event_source else pd.DataFrame())
    return DistributedScoreSummary(
        summary[0], summary[1], summary[0] - summary[1], output, n_partitions,
        {i: tuple(e) for i, e in errors.items() if i in results},
        _write_csv(bad_leads, output.with_name(f"{output.name}.quarantine.csv")),
        _write_csv(bad_events, output.with_name(f"{output.name}.events.quarantine.csv")))


def _checked_counts(scored: list[PartitionScores], source: ParquetSource,
                    output: Path) -> tuple[int, int]:
    """Rows in, as read, as in the input's metadata and as written, must all agree."""
    rows_in = sum(s.rows_in for s in scored)
    written = sum(pq.ParquetFile(s.path).metadata.num_rows for s in scored)
    if not rows_in == written == source.n_rows:
        raise IncompleteOutput(f"row counts disagree: {source.n_rows:,} rows in {source.label}, "
                           f"{rows_in:,} read by the partitions, {written:,} written to "
                           f"{output}; the output is not complete")
    return rows_in, sum(s.rows_scored for s in scored)


def _located(bad: pd.DataFrame, source: ParquetSource) -> pd.DataFrame:
    if bad.empty:
        return bad
    files, rows = source.locate(bad[ROW])
    located = bad.drop(columns=ROW).rename(columns={"_problems": "error"})
    located.insert(0, "row", rows)
    located.insert(0, "file", files)
    return located.sort_values(["file", "row"]).reset_index(drop=True)


def _write_csv(frame: pd.DataFrame, path: Path) -> Path | None:
    if frame.empty:
        return None
    frame.to_csv(path, index=False)
    return path
