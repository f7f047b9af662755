"""Training on Dask: the model fitted by its kind on the workers, on the examples
:mod:`.examples` built and keeps there partition by partition, then calibrated, evaluated
and bundled as on one machine. The run's flow is ``workflow.training.train``'s, the same
as on one machine: :class:`PartitionedSource` is where its examples live.

Nothing of the model is re-implemented: the category vocabulary of the encoder is learnt
across partitions, each partition encodes its rows with the single-machine pipeline's
preprocessing, and the model's kind trains its classifier data-parallel on the workers
(LightGBM: over its own sockets, :mod:`~predictive_scoring.models.kinds.lightgbm_dask`)
with the snapshot weights; train.py then sets the stage thresholds on the open leads,
calibrates, evaluates (``by_age`` included) and builds the same :class:`LeadScorer`
bundle as the single-machine path.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from predictive_scoring.config import ModelConfig
from predictive_scoring.data.dataset import shared_text
from predictive_scoring.data.snapshots import DECIDED
from predictive_scoring.distributed.cluster import Report
from predictive_scoring.distributed.examples import (
    SLICE,
    PartitionedExamples,
    TrainingInputs,
    build_examples_distributed,
    events_of,
    first_rows,
    slice_rows,
)
from predictive_scoring.distributed.sources import uncoded
from predictive_scoring.distributed.store import (
    Kept,
    applied,
    gather_applied,
    gather_on,
    load,
    submit_on,
)
from predictive_scoring.leakage import leakage_warnings
from predictive_scoring.models import kinds
from predictive_scoring.models.columns import (
    MODEL_DTYPE,
    FeatureColumns,
    feature_columns,
    model_frame,
)
from predictive_scoring.models.scorer import LeadScorer, build_pipeline
from predictive_scoring.train import (
    EXPLANATION_ROWS,
    SPLITS,
    Examples,
    TrainedModel,
    TrainingError,
    TrainingPlan,
    TrainingRun,
    bundle_input,
    finish_training,
    lead_age_days,
    snapshot_notes,
)
from predictive_scoring.workflow.promotion import TestLeads
from predictive_scoring.workflow.training import Built

if TYPE_CHECKING:
    from pathlib import Path

    from distributed import Client, Future

LEAKAGE_BATCH = 16
"""Feature columns gathered at a time for the leakage check, at most: each batch reads
every partition's examples once."""
LEAKAGE_CELLS = 2**28
"""Values (rows x columns) gathered at a time for the leakage check, at most: about 1 GiB
of float32 on the driver, held twice while the partitions' pieces are joined (fewer
columns a batch on tens of millions of rows)."""
EXAMPLE_LEADS = 3


def columns_of(examples: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Some columns of a partition's examples, text as text."""
    return uncoded(examples[names])


def category_values(examples: pd.DataFrame, columns: FeatureColumns
                    ) -> dict[str, tuple[set[str], bool]]:
    """Per categorical column of the training rows: values seen, and whether one is missing."""
    train = model_frame(slice_rows(examples, "train"), columns)
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
           part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One slice's encoded model input, labels, snapshot weights and decisions in this
    partition (the weights and decisions travel with their rows however the partitions
    are stacked; without ``decision_after`` the labels stand in for the decisions, which
    the fit is then not given: :func:`fit_on_cluster`)."""
    rows = slice_rows(examples, part)
    features = (prep.transform(model_frame(rows, columns)) if len(rows) else
                np.empty((0, len(columns.all))))
    label = rows["label"].to_numpy(np.int8)
    decided = rows[DECIDED].to_numpy(np.int8) if DECIDED in rows.columns else label
    return (np.asarray(features, dtype=MODEL_DTYPE), label, rows["weight"].to_numpy(np.float64),
            decided)


def raw_probability(examples: pd.DataFrame, pipeline: Any, columns: FeatureColumns
                    ) -> np.ndarray:
    """The fitted pipeline's raw probability of every example of the partition."""
    if examples.empty:
        return np.empty(0)
    return pipeline.predict_proba(model_frame(examples, columns))[:, 1]


def test_probability(examples: pd.DataFrame, pipeline: Any, columns: FeatureColumns
                     ) -> np.ndarray:
    """The fitted pipeline's raw probability of the partition's test examples."""
    return raw_probability(slice_rows(examples, "test"), pipeline, columns)


def slice_sample(examples: pd.DataFrame, part: str, columns: FeatureColumns,
                 fraction: float, seed: int) -> pd.DataFrame:
    """Model input of a seeded sample (``fraction``) of one slice's rows in this partition."""
    rows = slice_rows(examples, part)
    if fraction < 1:
        rows = rows.sample(frac=fraction, random_state=seed)
    return model_frame(rows, columns)


def _model_input_sample(client: Client, examples: list[Kept], part: str,
                        columns: FeatureColumns, n_rows: int, seed: int) -> pd.DataFrame:
    """About ``EXPLANATION_ROWS`` rows of a slice, sampled evenly across partitions."""
    fraction = min(1.0, EXPLANATION_ROWS / max(n_rows, 1))
    return pd.concat(gather_applied(client, slice_sample, examples, part=part,
                                    columns=columns, fraction=fraction, seed=seed),
                     ignore_index=True)


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
        self.release()
        self.partitioned = built = build_examples_distributed(client, self.inputs,
                                                              self.n_partitions, report)
        frame = built.outcomes
        columns = feature_columns(config.attributes, built.spec, config.feature_groups)
        rows = {name: np.flatnonzero(frame[SLICE].to_numpy() == name) for name in SPLITS}
        truth = frame["true_probability"].to_numpy(float)
        examples = Examples(frame, frame["label"].to_numpy(np.int8), frame["created_at"],
                            None if np.isnan(truth).any() else truth,
                            frame["rule_points"].to_numpy(float),
                            shared_text(frame["rule_stage"]), columns, built.spec,
                            frame["weight"].to_numpy(np.float64), built.population)
        notes = snapshot_notes(*built.left_out, config.snapshots, lead_age_days(frame))
        return Built(examples, rows, notes)

    def leakage(self, built: Built, threshold: float) -> list[str]:
        return _leakage(self.client, self._built().examples, built.examples.frame,
                        built.rows, built.examples.columns, threshold)

    def fit(self, built: Built, plan: TrainingPlan, report: Report) -> TrainedModel:
        """Fit on the workers, calibrate and evaluate. The training and validation
        slices are encoded for the model straight into one block per worker
        (:func:`design_on_cluster`); the model's raw probability of their rows is read
        from that encoded input, the same numbers the pipeline gives (it is its own
        preprocessing's output), and the test rows' from the kept examples."""
        client, columns, rows, partitioned = (self.client, built.examples.columns,
                                              built.rows, self._built())
        report(f"Training {plan.model.kind} on the workers ({self.n_partitions} partitions)")
        sample = _model_input_sample(client, partitioned.examples, "train", columns,
                                     len(rows["train"]), plan.base.training.seed)
        designed = design_on_cluster(client, partitioned.examples, partitioned.sizes,
                                     columns, plan.model)
        pipeline = fit_on_cluster(client, designed, plan.model,
                                  weight_means(built.examples, rows),
                                  plan.config.snapshots.decision_after is not None)
        report("Calibrating and evaluating")
        raw = design_probability(client, designed, pipeline)
        del designed  # the encoded blocks leave the workers
        raw["test"] = np.concatenate(gather_applied(
            client, test_probability, partitioned.examples, pipeline=pipeline,
            columns=columns))
        return finish_training(built.examples, rows, pipeline, raw, plan, sample)

    def test_sample(self, built: Built, seed: int) -> pd.DataFrame:
        return _model_input_sample(self.client, self._built().examples, "test",
                                   built.examples.columns, len(built.rows["test"]), seed)

    def test_leads(self, built: Built) -> TestLeads:
        client, partitioned = self.client, self._built()
        frame = pd.concat(gather_applied(client, first_rows, partitioned.examples,
                                         part="test", n=None), ignore_index=True)
        events = pd.concat(gather_on(client, load, partitioned.test_events),
                           ignore_index=True)
        return TestLeads(frame, events, frame["label"].to_numpy(np.int8),
                         frame["rule_points"].to_numpy(float),
                         shared_text(frame["rule_stage"]))

    def bundle_example(self, built: Built, run: TrainingRun) -> pd.DataFrame:
        return _bundle_example(self.client, self._built().examples, self._built().test_events,
                               run.trained.scorer)

    def release(self) -> None:
        """Remove the examples the run keeps on the workers' disks (a cluster that goes
        on after the run; a local cluster's workers remove their folders as they close)."""
        if self.partitioned is not None:
            self.partitioned.release(self.client)

    def __enter__(self) -> PartitionedSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def check_trains_on_dask(model: ModelConfig) -> None:
    """Refuse a model whose kind does not train on Dask, naming the kinds that do.

    Raises:
        ValueError: The model's kind does not train on Dask.
    """
    if not kinds.get(model.kind).trains_on_dask:
        fit = kinds.on_dask()
        raise ValueError(f"--engine dask trains {', '.join(fit)} models, not {model.kind}; "
                         f"use --model {fit[0]} or --engine local")


def _leakage(client: Client, examples: list[Kept], frame: pd.DataFrame,
             rows: dict[str, np.ndarray], columns: FeatureColumns,
             threshold: float) -> list[str]:
    """train.py's leakage check, over batches of columns gathered from the workers;
    ``frame`` holds the examples' outcomes (their labels)."""
    label = frame["label"].to_numpy(np.int8)
    warnings = []
    names = columns.all
    size = leakage_batch(len(frame))
    for start in range(0, len(names), size):
        batch = names[start:start + size]
        values = pd.concat(gather_applied(client, columns_of, examples, names=batch),
                           ignore_index=True)
        subset = FeatureColumns(tuple(c for c in columns.categorical if c in batch),
                                tuple(c for c in columns.numeric if c in batch),
                                {c: columns.groups[c] for c in batch})
        warnings += leakage_warnings(values, label, rows, subset, threshold)
    return warnings


def leakage_batch(n_rows: int) -> int:
    """Columns gathered at a time for the leakage check of ``n_rows`` examples."""
    return max(1, min(LEAKAGE_BATCH, LEAKAGE_CELLS // max(n_rows, 1)))


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
        train: Futures of the training slice's model input and labels, one block per
            worker (:func:`_worker_blocks`), the blocks' sizes, and futures of their
            snapshot weights and decisions.
        layout: Per block, the partitions stacked in it, in order, and their rows.
        valid: Futures of the whole validation slice's model input, labels, weights and
            decisions, in partition order.
        n_valid: Rows of the validation slice.
    """

    pipeline: Any
    train: tuple[list[Future], list[Future], np.ndarray, list[Future], list[Future]]
    layout: list[list[tuple[int, int]]]
    valid: list[Future]
    n_valid: int


def design_on_cluster(client: Client, examples: list[Kept], sizes: list[dict[str, int]],
                      columns: FeatureColumns, model: ModelConfig) -> ClusterDesign:
    """The slices the kind is fitted on, encoded by the single-machine pipeline's
    preprocessing fitted on the categories of all training rows: the training rows in one
    block per worker (:func:`_worker_blocks`), the validation rows in one block.

    Args:
        examples: Each partition's examples as kept.
        sizes: Each partition's rows per slice.
    """
    pipeline = build_pipeline(model, columns)
    seen = gather_applied(client, category_values, examples, columns=columns)
    merged = {c: (set().union(*(s[c][0] for s in seen)), any(s[c][1] for s in seen))
              for c in columns.categorical}
    prep = pipeline.named_steps["prep"].fit(vocabulary_frame(merged, columns))
    encode = {"prep": client.scatter(prep, broadcast=True), "columns": columns,
              "width": len(prep.get_feature_names_out())}
    blocks, workers, layout = _worker_blocks(client, examples, [s["train"] for s in sizes],
                                             "train", **encode)
    parts = [_parts_of(client, block, [worker]) for block, worker in zip(blocks, workers,
                                                                        strict=True)]
    x, y, w, decided = ([block[i] for block in parts] for i in range(DESIGN_PARTS))
    counts = np.asarray([sum(n for _, n in block) for block in layout], dtype=np.int64)
    valid_blocks, _, valid_layout = _worker_blocks(client, examples,
                                                   [s["valid"] for s in sizes], "valid",
                                                   **encode)
    valid, n_valid = _whole_slice(client, valid_blocks, valid_layout)
    return ClusterDesign(pipeline, (x, y, counts, w, decided), layout, valid, n_valid)


def fit_on_cluster(client: Client, designed: ClusterDesign, model: ModelConfig,
                   weight_scale: tuple[float, float] | None = None,
                   decisions: bool = False) -> Any:
    """The single-machine pipeline, its classifier fitted data-parallel on the workers by
    its kind (:meth:`~predictive_scoring.models.kinds.base.ModelKind.fit_on_dask`).

    The kind gets the training slice partitioned as the workers hold it and the whole
    validation slice for early stopping. With ``weight_scale`` (:func:`weight_means`) it
    also gets each row's snapshot weight divided by its slice's mean, as
    ``Examples.weights`` gives them on one machine; None fits unweighted. With
    ``decisions`` (the examples carry them: ``decision_after``) it gets each row's
    decision, as ``Examples.decisions`` gives them on one machine.
    """
    import dask.array as da

    train, valid, n_valid = designed.train, designed.valid, designed.n_valid
    n_features = len(designed.pipeline.named_steps["prep"].get_feature_names_out())
    valid_x = da.from_delayed(_delayed(valid[0]), (n_valid, n_features), MODEL_DTYPE)
    valid_y = da.from_delayed(_delayed(valid[1]), (n_valid,), np.int8)
    decided = None
    if decisions:
        decided = (_dask_rows(train[4], train[2], None),
                   da.from_delayed(_delayed(valid[3]), (n_valid,), np.int8))
    weights = None
    if weight_scale is not None:
        valid_w = da.from_delayed(_delayed(valid[2]), (n_valid,), np.float64)
        weights = (_dask_rows(train[3], train[2], None, np.float64) / weight_scale[0],
                   valid_w / weight_scale[1])
    return kinds.get(model.kind).fit_on_dask(
        client, designed.pipeline, model,
        (_dask_rows(train[0], train[2], n_features), _dask_rows(train[1], train[2], None)),
        (valid_x, valid_y), weights, decided)


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


def _worker_blocks(client: Client, examples: list[Kept], n_rows: list[int], part: str,
                   prep: Any, columns: FeatureColumns, width: int
                   ) -> tuple[list[Future], list[str], list[list[tuple[int, int]]]]:
    """Futures of one slice's encoded rows (:func:`design_block`), one block per worker
    keeping examples with rows of it, the workers, and per block its partitions and their
    rows (``n_rows``: each partition's rows of the slice).

    One block per worker: each worker's LightGBM trains on the rows it holds, with its
    own copy of the whole validation slice (a copy per block would be a copy per
    partition, each evaluated every round). Each block is filled where its partitions
    are kept, one partition at a time.
    """
    on_worker: dict[str, list[tuple[int, Kept, int]]] = {}
    for partition, (kept, n) in enumerate(zip(examples, n_rows, strict=True)):
        if n:
            on_worker.setdefault(kept.worker, []).append((partition, kept, n))
    blocks = [client.submit(design_block, [k for _, k, _ in parts], [n for *_, n in parts],
                            prep=prep, columns=columns, part=part, width=width,
                            workers=[worker], allow_other_workers=True, pure=False)
              for worker, parts in on_worker.items()]
    return (blocks, list(on_worker),
            [[(partition, n) for partition, _, n in parts] for parts in on_worker.values()])


def design_block(examples: list[Kept], n_rows: list[int], prep: Any, columns: FeatureColumns,
                 part: str, width: int) -> tuple[np.ndarray, ...]:
    """Some partitions' encoded rows of one slice (:func:`design`) stacked in the order
    given, each written into the block as its examples are read: the block is the only
    copy of the encoded rows, and one partition's examples are in memory at a time."""
    total = sum(n_rows)
    block = (np.empty((total, width), dtype=MODEL_DTYPE), np.empty(total, np.int8),
             np.empty(total, np.float64), np.empty(total, np.int8))
    at = 0
    for kept, n in zip(examples, n_rows, strict=True):
        encoded = design(load(kept), prep, columns, part)
        if len(encoded[1]) != n:
            raise RuntimeError(f"{kept.what} hold {len(encoded[1])} {part} rows, not the "
                               f"{n} counted when they were built")
        for whole, rows in zip(block, encoded, strict=True):
            whole[at:at + n] = rows
        at += n
    return block


def _whole_slice(client: Client, blocks: list[Future], layout: list[list[tuple[int, int]]]
                 ) -> tuple[list[Future], int]:
    """Futures of one slice's model input, labels, weights and decisions, the workers'
    blocks (their partitions and rows in ``layout``) stacked into one block in partition
    order (the validation slice every worker evaluates is this one block), and its
    number of rows."""
    from distributed import wait

    whole = client.submit(stack_in_partition_order, *blocks, layout=layout, pure=False)
    wait(whole)
    holder = sorted(client.who_has([whole])[whole.key])
    return _parts_of(client, whole, holder[:1] or None), sum(n for parts in layout
                                                             for _, n in parts)


def partition_order(layout: list[list[tuple[int, int]]]) -> np.ndarray:
    """Row positions that put blocks stacked in ``layout``'s order (each block's
    partitions and their rows) into partition order."""
    stacked = [part for parts in layout for part in parts]
    starts = dict(zip((p for p, _ in stacked), np.cumsum([0, *(n for _, n in stacked)]),
                      strict=False))
    return np.concatenate([np.arange(starts[p], starts[p] + n) for p, n in sorted(stacked)]
                          or [np.empty(0, np.int64)])


def stack_in_partition_order(*designs: tuple[np.ndarray, ...],
                             layout: list[list[tuple[int, int]]]) -> tuple[np.ndarray, ...]:
    """Blocks' model input, labels, weights and decisions as one block, its rows in
    partition order (:func:`partition_order` of the blocks' ``layout``, worked out here on
    the worker: as a task argument it was a row position per validation row, 45 MiB of
    graph on 5M leads)."""
    if not designs:
        return (np.empty((0, 0), MODEL_DTYPE), np.empty(0, np.int8), np.empty(0),
                np.empty(0, np.int8))
    stacked = (designs[0] if len(designs) == 1 else
               tuple(np.concatenate(parts) for parts in zip(*designs, strict=True)))
    order = partition_order(layout)
    if np.array_equal(order, np.arange(len(stacked[1]))):
        return stacked
    return tuple(np.take(part, order, axis=0) for part in stacked)


def _parts_of(client: Client, block: Future, workers: list[str] | None) -> list[Future]:
    """Futures of a stacked block's model input, labels, weights and decisions, each taken
    on ``workers`` (where the block is: a part is not copied to another worker)."""
    return [client.submit(operator.itemgetter(i), block, workers=workers)
            for i in range(DESIGN_PARTS)]


DESIGN_PARTS = 4
"""A slice's encoded parts (:func:`design`): model input, labels, weights, decisions."""


def _dask_rows(futures: list[Future], sizes: np.ndarray, width: int | None,
               dtype: Any = None) -> Any:
    import dask.array as da

    dtype = dtype or (MODEL_DTYPE if width is not None else np.int8)
    blocks = [da.from_delayed(_delayed(f), (int(n), width) if width is not None else (int(n),),
                              dtype) for f, n in zip(futures, sizes, strict=True)]
    return da.concatenate(blocks)


def _bundle_example(client: Client, examples: list[Kept], test_events: list[Kept],
                    scorer: LeadScorer) -> pd.DataFrame:
    """The first test examples found, with their events, as the bundle's input."""
    for partition, events in zip(examples, test_events, strict=True):
        rows = submit_on(client, applied, partition, first_rows, "test",
                         EXAMPLE_LEADS).result()
        if len(rows):
            own = submit_on(client, applied, events, events_of,
                            rows["lead_id"].tolist()).result()
            return bundle_input(rows, own, scorer)
    raise TrainingError("the test slice is empty: nothing to evaluate the model on")


