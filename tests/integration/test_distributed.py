"""The Dask engine on a LocalCluster of 2 worker processes on 127.0.0.1, started and closed
here: the same features, a model of equal quality and the same scores as the single-machine
path, failed partitions retried and reported, and every row accounted for."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

pytest.importorskip("distributed", reason="the Dask tests need the [dask] extra")

from predictive_scoring import distributed as dist
from predictive_scoring.cli import app
from predictive_scoring.config import (
    BaseConfig,
    ColumnNames,
    DatasetConfig,
    ModelConfig,
    ReadOptions,
    RulesConfig,
    load_config,
)
from predictive_scoring.data.dataset import DataValidationError, load_dataset, read_scoring_events
from predictive_scoring.data.synthetic import PARQUET_FILES, simulate_into
from predictive_scoring.distributed import store
from predictive_scoring.distributed.sources import uncoded
from predictive_scoring.models.scorer import TRAINED_AGES_KEY
from predictive_scoring.predict import score_file
from predictive_scoring.stages import Stage
from predictive_scoring.train import TrainingRun, examples_from_events
from predictive_scoring.workflow.promotion import TestLeads
from predictive_scoring.workflow.training import run_training, train
from tests.helpers import message_of

pytestmark = [pytest.mark.dask, pytest.mark.heavy]

N_LEADS, SEED, PARTITIONS = 6000, 13, 4
AS_OF = pd.Timestamp("2025-10-01T00:00:00Z")


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with dist.dask_client("local", n_workers=2) as connected:
        assert len(connected.scheduler_info()["workers"]) == 2
        yield connected


@pytest.fixture(scope="module")
def funnel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated Parquet files; events split into a folder of two files."""
    root = tmp_path_factory.mktemp("dask_sim")
    simulate_into(load_config("configs/datasets/simulated.yaml", DatasetConfig), N_LEADS, SEED,
                  root)
    events = pq.read_table(root / "events.parquet")
    (root / "events").mkdir()
    half = events.num_rows // 2
    pq.write_table(events.slice(0, half), root / "events" / "a.parquet", row_group_size=20000)
    pq.write_table(events.slice(half), root / "events" / "b.parquet", row_group_size=20000)
    return root


def dataset_config(root: Path, events: str = "events") -> DatasetConfig:
    config = load_config("configs/datasets/simulated.yaml", DatasetConfig)
    return config.pointed_at(root, PARQUET_FILES | {"events": events})


def inputs(root: Path, model: ModelConfig | None = None, **policy: object
           ) -> dist.TrainingInputs:
    config = dataset_config(root)
    return dist.TrainingInputs(config, model or deterministic_model(),
                               load_config(config.rules, RulesConfig),
                               load_config("configs/base.yaml", BaseConfig), **policy)


def deterministic_model() -> ModelConfig:
    """The LightGBM config without row and column sampling (random per worker) and with
    a fixed number of rounds, so both engines fit the same kind of model. Its learning
    rate is one the capacity rule keeps on this data (it raises 0.02 on few positives)."""
    model = load_config("configs/models/lightgbm.yaml", ModelConfig)
    params = {k: v for k, v in model.params.items() if k != "early_stopping_rounds"}
    return model.model_copy(update={"params": params | {
        "subsample": 1.0, "colsample_bytree": 1.0, "n_estimators": 300,
        "learning_rate": 0.1}})


@pytest.fixture(scope="module")
def single_machine(funnel_dir: Path) -> object:
    run_inputs = inputs(funnel_dir)
    dataset = load_dataset(dataset_config(funnel_dir, "events.parquet"), Path("."))
    return run_training(dataset, run_inputs)  # the plan, read on one machine


@dataclass
class OnCluster:
    """A run of the training flow on the cluster, and what its source gives back."""

    run: TrainingRun
    summary: pd.DataFrame
    example: pd.DataFrame
    test: TestLeads


def train_on(client: object, root: Path) -> OnCluster:
    source = dist.PartitionedSource(client, inputs(root), PARTITIONS)
    trained = train(source, source.inputs)
    return OnCluster(trained.run, source.summary,
                     source.bundle_example(trained.built, trained.run),
                     source.test_leads(trained.built))


@pytest.fixture(scope="module")
def on_cluster(client: object, funnel_dir: Path) -> OnCluster:
    return train_on(client, funnel_dir)


def test_partitioned_features_equal_the_single_machine_features_row_by_row(
        client: object, funnel_dir: Path) -> None:
    run_inputs = inputs(funnel_dir)
    built = dist.build_examples_distributed(client, run_inputs, PARTITIONS)
    kept = store.gather_on(client, store.load, built.examples)
    built.release(client)
    # a worker holds the text columns coded; their text is the single machine's
    partitioned = pd.concat([uncoded(p) for p in kept], ignore_index=True)
    assert sum(len(p) > 0 for p in kept) == PARTITIONS
    assert [{part: int((p["slice"] == part).sum()) for part in ("train", "valid", "test")}
            for p in kept] == built.sizes
    pd.testing.assert_frame_equal(built.outcomes, partitioned[built.outcomes.columns])
    dataset = load_dataset(dataset_config(funnel_dir, "events.parquet"), Path("."))
    local, rows, _ = examples_from_events(dataset, run_inputs.config, run_inputs.rules,
                                          run_inputs.base.training)
    assert built.spec == local.spec
    key = ["lead_id", "as_of"]
    mine = partitioned.set_index(key).sort_index()
    theirs = local.frame.assign(rule_points=local.rule_points, rule_stage=local.rule_stage,
                                slice=pd.Series(index=local.frame.index, dtype=object))
    for name, positions in rows.items():
        theirs.iloc[positions, theirs.columns.get_loc("slice")] = name
    theirs = theirs.set_index(key).sort_index()
    assert len(mine) == len(theirs) and mine.index.equals(theirs.index)
    compared = [*local.columns.all, "label", "rule_points", "rule_stage", "slice"]
    pd.testing.assert_frame_equal(mine[compared], theirs[compared], check_dtype=False)


def kept_files(client: object) -> list[str]:
    """The files the workers keep for runs (each worker's folder of kept values)."""
    def listed(dask_worker: object) -> list[str]:
        folder = Path(dask_worker.local_directory) / store.FOLDER
        return sorted(str(f) for f in folder.glob("*")) if folder.exists() else []

    return sorted(f for files in client.run(listed).values() for f in files)


def test_a_worker_keeps_its_partitions_on_disk_and_holds_none_in_memory(
        client: object, funnel_dir: Path) -> None:
    """Once the examples are built the workers' memory holds no partition's tables,
    snapshots or examples: each partition's examples and its test leads' events are kept
    on the disk of the worker that built them (the tables and snapshots, read no more,
    are removed), each later step reads them there, and the run removes them at its end."""
    before = kept_files(client)
    built = dist.build_examples_distributed(client, inputs(funnel_dir), PARTITIONS)
    kept = [*built.examples, *built.test_events]
    assert len(kept) == 2 * PARTITIONS
    assert sorted(set(kept_files(client)) - set(before)) == sorted(k.path for k in kept)
    workers = set(client.scheduler_info()["workers"])
    assert {k.worker for k in kept} <= workers and len({k.worker for k in kept}) == 2
    for _ in range(100):  # the scheduler releases the steps' results as the driver lets go
        if not any(client.has_what().values()):
            break
        time.sleep(0.1)
    assert not any(client.has_what().values())  # nothing held in the workers' memory
    events = pd.concat(store.gather_on(client, store.load, built.test_events),
                       ignore_index=True)
    test_leads = set(pd.concat([uncoded(p) for p in store.gather_on(client, store.load,
                                                                    built.examples)])
                     .query("slice == 'test'")["lead_id"])
    assert set(events["lead_id"]) <= test_leads and len(events) > 0
    built.release(client)
    assert kept_files(client) == before
    message = message_of(RuntimeError, store.load, built.examples[0])
    assert "partition 0's examples" in message and built.examples[0].worker in message


def _slow_square(value: int, wait: float) -> int:
    time.sleep(wait)
    return value * value


def _results_held(dask_worker: object) -> int:
    return len(dask_worker.data)  # type: ignore[attr-defined]


def _held_settled(client: object) -> int:
    """The finished results the workers hold once the driver's releases have reached
    them (a release travels through the scheduler)."""
    for _ in range(50):
        held = sum(client.run(_results_held).values())  # type: ignore[attr-defined]
        if held == 0:
            break
        time.sleep(0.1)
    return held


def _fail(value: int) -> int:
    raise ValueError(f"partition {value} is broken")


def test_each_result_leaves_its_worker_as_soon_as_the_driver_has_it(client: object) -> None:
    """gather_each returns the results in the futures' order and releases each one as it
    arrives: while the slowest task still runs, the workers hold no finished result (a
    result sharing a partition's memory would otherwise keep it until the last task
    ends). client.gather, for contrast, keeps every finished result until then."""
    from distributed import as_completed

    quick = [client.submit(_slow_square, v, 0.0, pure=False)  # type: ignore[attr-defined]
             for v in range(6)]
    slow = client.submit(_slow_square, 7, 6.0, pure=False)  # type: ignore[attr-defined]
    futures = [*quick, slow]
    seen = []

    def watch() -> None:  # the workers' held results once every quick task has arrived
        for _ in as_completed(quick):
            pass
        seen.append((_held_settled(client), slow.done()))

    import threading

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert store.gather_each(futures) == [v * v for v in range(6)] + [49]
    watcher.join()
    assert seen == [(0, False)]  # nothing held while the slow task ran
    assert _held_settled(client) == 0
    contrast = [client.submit(_slow_square, v, 0.0, pure=False)  # type: ignore[attr-defined]
                for v in range(6)]
    client.gather(contrast)  # type: ignore[attr-defined]
    assert sum(client.run(_results_held).values()) == 6  # type: ignore[attr-defined]
    del contrast
    failing = [client.submit(_slow_square, 1, 0.0, pure=False),  # type: ignore[attr-defined]
               client.submit(_fail, 3, pure=False)]  # type: ignore[attr-defined]
    assert "partition 3 is broken" in message_of(ValueError, store.gather_each, failing)


def test_dask_model_is_as_good_as_the_single_machine_model(
        on_cluster: OnCluster, single_machine: object) -> None:
    mine, theirs = on_cluster.run.metrics, single_machine.metrics
    assert mine["n_train"] == theirs["n_train"] and mine["n_test"] == theirs["n_test"]
    # Data-parallel LightGBM bins each feature on one worker's share of the rows, so the
    # trees depend on which partitions share a worker and which worker ranks first. On
    # this 6k-lead sample the placements span ROC-AUC -0.006 to 0.000 of the single
    # machine at the learning rate 0.02 (measured over 8 trainings; one worker reproduces
    # it exactly), and -0.018 to 0.000 at 0.1 (5 trainings, four with a 540-day age). A
    # broken engine (labels or columns misaligned), or features dropped by a worker's own
    # pre-filter (-0.07 before it was turned off), falls far outside 0.025. The issue's
    # 0.005 bound is checked at benchmark scale (benchmarks/bench_dask.py).
    assert abs(mine["model"]["roc_auc"] - theirs["model"]["roc_auc"]) <= 0.025
    assert mine["oracle"]["roc_auc"] == pytest.approx(theirs["oracle"]["roc_auc"])
    assert mine["rules"] == pytest.approx(theirs["rules"])
    assert on_cluster.summary["problems"].sum() == 0
    assert list(on_cluster.example.columns[:3]) == ["lead_id", "created_at", "as_of"]


def test_the_cluster_hands_the_champion_the_test_leads_of_one_machine(
        on_cluster: OnCluster, single_machine: object) -> None:
    test = on_cluster.test
    run = single_machine
    local = run.examples.frame.iloc[run.trained.rows["test"]]
    key = ["lead_id", "as_of"]
    mine = test.frame.assign(label=test.y, points=test.rule_points).set_index(key).sort_index()
    theirs = local.assign(label=run.examples.label[run.trained.rows["test"]],
                          points=run.examples.rule_points[run.trained.rows["test"]]
                          ).set_index(key).sort_index()
    assert mine.index.equals(theirs.index)
    assert (mine["label"] == theirs["label"]).all()
    assert mine["points"].to_numpy() == pytest.approx(theirs["points"].to_numpy())
    assert set(test.events["lead_id"]) <= set(test.frame["lead_id"])
    # in the cluster's own order: the probabilities training computed are reused as is
    assert test.frame["lead_id"].tolist() == on_cluster.run.examples.frame["lead_id"].iloc[
        on_cluster.run.trained.rows["test"]].tolist()


def test_on_one_worker_the_dask_model_is_the_single_machine_model(
        funnel_dir: Path, single_machine: object) -> None:
    """With nothing split across workers the bins, trees and metrics are identical."""
    with dist.dask_client("local", n_workers=1) as alone:
        run = train_on(alone, funnel_dir).run
    assert run.metrics["model"] == pytest.approx(single_machine.metrics["model"])
    mine = run.trained.scorer.pipeline.named_steps["classifier"].booster_
    theirs = single_machine.trained.scorer.pipeline.named_steps["classifier"].booster_
    assert mine.num_trees() == theirs.num_trees()
    assert mine.dump_model()["tree_info"] == theirs.dump_model()["tree_info"]
    # the same weighted fit, and the stage bars matched on the same open leads
    bars = run.trained.scorer.stage_thresholds
    assert bars == pytest.approx(single_machine.trained.scorer.stage_thresholds)


def test_batch_scores_equal_single_machine_scores_for_the_same_bundle(
        client: object, on_cluster: OnCluster, funnel_dir: Path,
        tmp_path: Path) -> None:
    scorer = on_cluster.run.trained.scorer
    out = tmp_path / "scores"
    summary = dist.score_distributed(
        client, scorer, dist.ScoreRequest(funnel_dir / "leads.parquet", funnel_dir / "events",
                                          AS_OF, out, reasons=2),
        dist.DaskPlan(partitions=PARTITIONS))
    scored = pd.read_parquet(out)
    assert {"fit_grade", "quadrant", "reason_up_2", "reason_down_2"} <= set(scored.columns)
    created = pd.read_parquet(funnel_dir / "leads.parquet")["created_at"]
    not_yet = int((created > AS_OF).sum())
    assert summary.rows_in == len(scored) == N_LEADS
    assert summary.rows_failed == not_yet == scored["error"].notna().sum()
    assert len(list(out.glob(dist.PART_GLOB))) == PARTITIONS and not summary.retried
    events, _ = read_scoring_events(funnel_dir / "events.parquet", ReadOptions(), ColumnNames())
    local_out = tmp_path / "local.parquet"
    score_file(scorer, funnel_dir / "leads.parquet", events, AS_OF, local_out, 5000,
               ReadOptions(), reasons=2)
    mine = scored.set_index("lead_id").sort_index()
    theirs = pd.read_parquet(local_out).set_index("lead_id").sort_index()
    assert mine.index.equals(theirs.index)
    pd.testing.assert_frame_equal(mine, theirs[mine.columns], check_dtype=False)


class FailOnce:
    """Wraps the scoring job: partition 1 fails the first time (a lost worker, say)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, *args: object) -> dist.PartitionScores:
        if args[4] == 1 and not self.marker.exists():
            self.marker.touch()
            raise ConnectionError("worker lost while scoring")
        return dist.score_partition(*args)


def always_fail_partition_0(*args: object) -> dist.PartitionScores:
    if args[4] == 0:
        raise OSError("disk full")
    return dist.score_partition(*args)


def test_a_failed_partition_is_retried_and_reported(
        client: object, on_cluster: OnCluster, funnel_dir: Path,
        tmp_path: Path) -> None:
    out = tmp_path / "scores"
    summary = dist.score_distributed(
        client, on_cluster.run.trained.scorer,
        dist.ScoreRequest(funnel_dir / "leads.parquet", funnel_dir / "events", AS_OF, out),
        dist.DaskPlan(partitions=PARTITIONS, retries=1), job=FailOnce(tmp_path / "failed-once"))
    assert list(summary.retried) == [1]
    assert "ConnectionError: worker lost" in summary.retried[1][0]
    assert len(pd.read_parquet(out)) == summary.rows_in == N_LEADS


def test_a_partition_failing_every_attempt_is_reported_not_missing(
        client: object, on_cluster: OnCluster, funnel_dir: Path,
        tmp_path: Path) -> None:
    with pytest.raises(dist.PartitionsFailed) as caught:
        dist.score_distributed(
            client, on_cluster.run.trained.scorer,
            dist.ScoreRequest(funnel_dir / "leads.parquet", funnel_dir / "events", AS_OF,
                              tmp_path / "scores"),
            dist.DaskPlan(partitions=PARTITIONS, retries=2), job=always_fail_partition_0)
    assert [f.partition for f in caught.value.failures] == [0]
    assert len(caught.value.failures[0].errors) == 3
    assert "partition 0: 3 attempt(s); last error: OSError: disk full" in str(caught.value)


def test_bad_rows_are_named_by_file_and_row(client: object, funnel_dir: Path,
                                            tmp_path: Path) -> None:
    events = pd.read_parquet(funnel_dir / "events" / "b.parquet")
    events.loc[4, "timestamp"] = pd.NaT
    (tmp_path / "events").mkdir()
    events.to_parquet(tmp_path / "events" / "b.parquet")
    pd.read_parquet(funnel_dir / "events" / "a.parquet").to_parquet(
        tmp_path / "events" / "a.parquet")
    for name in ("leads", "stage_changes", "truth"):
        (tmp_path / f"{name}.parquet").symlink_to(funnel_dir / f"{name}.parquet")
    with pytest.raises(DataValidationError) as caught:
        dist.build_examples_distributed(client, inputs(tmp_path), PARTITIONS)
    problems = caught.value.problems
    assert problems[["row", "column", "reason"]].values.tolist() == [
        [5, "timestamp", "missing timestamp"]]
    assert problems["file"].iloc[0].endswith("b.parquet")


def test_cli_trains_and_scores_on_dask(funnel_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "COLUMNS": "200",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    config = tmp_path / "dataset.yaml"
    config.write_text(dataset_config(funnel_dir).model_dump_json(), encoding="utf-8")
    result = runner.invoke(app, ["train", "--config", str(config), "--engine", "dask",
                                 "--partitions", "3", "--output", str(tmp_path / "run")],
                           env=env)
    assert result.exit_code == 0, result.output
    assert "version 1: it is the new champion" in result.output
    out = tmp_path / "scores"
    result = runner.invoke(app, ["score", "--model", "models:/lead-scoring-simulated@champion",
                                 "--input", str(funnel_dir / "leads.parquet"), "--events",
                                 str(funnel_dir / "events"), "--as-of", str(AS_OF.isoformat()),
                                 "--output", str(out), "--engine", "dask", "--partitions", "3"],
                           env=env)
    assert result.exit_code == 0, result.output
    assert f"Read {N_LEADS:,} rows" in result.output and "rows in = rows out" in result.output
    assert len(pd.read_parquet(out)) == N_LEADS
    again = runner.invoke(app, ["score", "--model", "models:/lead-scoring-simulated@champion",
                                "--input", str(funnel_dir / "leads.parquet"), "--output",
                                str(out), "--engine", "dask"], env=env)
    assert again.exit_code == 1 and "is not empty" in again.output


def snapshot_weights(run: TrainingRun) -> pd.Series:
    """Each example's snapshot weight, keyed by (lead, as_of)."""
    examples = run.examples
    return examples.frame.assign(weight=examples.weight).set_index(
        ["lead_id", "as_of"])["weight"].sort_index()


def older_ages(config: DatasetConfig) -> DatasetConfig:
    """The config with one more lead age (540 days) that the data labels for its older
    leads only: their snapshots then weigh less than the younger leads' (1/7, not 1/6);
    and one (900 days) it labels for none, which training names in a note."""
    snapshots = config.snapshots
    ages = [*(snapshots.days_after_creation or []), 540, 900]
    return config.model_copy(update={"snapshots": snapshots.model_copy(
        update={"days_after_creation": ages})})


@pytest.fixture(scope="module")
def weighted_runs(funnel_dir: Path) -> tuple[TrainingRun, TrainingRun]:
    """The same weighted training on one machine and on the cluster.

    The cluster has one worker: its four partitions still each build their examples,
    weights and open leads, and the weights travel in blocks beside the rows, but
    LightGBM bins all rows together, so any difference is the engine's. (With two
    workers each bins its own share: on these 6k leads, four placements gave test
    ROC-AUC 0.000, 0.000, -0.005 and -0.013 from one machine's, and the isotonic steps
    then move the stage bars.)"""
    plan = inputs(funnel_dir)
    dataset = load_dataset(dataset_config(funnel_dir, "events.parquet"), Path("."))
    local = run_training(dataset, replace(plan, config=older_ages(
        dataset_config(funnel_dir, "events.parquet"))))
    on_cluster = replace(plan, config=older_ages(plan.config))
    with dist.dask_client("local", n_workers=1) as alone:
        source = dist.PartitionedSource(alone, on_cluster, PARTITIONS)
        return local, train(source, on_cluster).run


def test_dask_weights_each_lead_and_sets_stage_bars_on_the_open_leads_as_one_machine(
        weighted_runs: tuple[TrainingRun, TrainingRun]) -> None:
    """The distributed fit reads the same per-lead weights (it fits the same trees), the
    stage thresholds are matched on the same open leads, and by_age and the trained ages
    are the same."""
    theirs, mine = weighted_runs
    weights, expected = snapshot_weights(mine), snapshot_weights(theirs)
    assert weights.index.equals(expected.index)
    assert weights.to_numpy() == pytest.approx(expected.to_numpy())
    assert weights.nunique() > 1  # leads labelled at 6 or 7 ages: the fit is weighted
    assert mine.examples.weights(mine.trained.rows) is not None
    trees = [r.trained.scorer.pipeline.named_steps["classifier"].booster_.dump_model()[
        "tree_info"] for r in (mine, theirs)]
    assert trees[0] == trees[1]
    set_on = mine.metrics["stage_thresholds_set_on"]
    assert set_on == theirs.metrics["stage_thresholds_set_on"]
    assert set_on["population"] == "open leads" and set_on["n_open"] == set_on["n"] > 0
    assert mine.examples.population.frame.shape == theirs.examples.population.frame.shape
    assert (mine.trained.scorer.stage_thresholds
            == pytest.approx(theirs.trained.scorer.stage_thresholds, abs=1e-9))
    assert abs(mine.metrics["model"]["roc_auc"] - theirs.metrics["model"]["roc_auc"]) <= 0.005
    ages, expected_ages = mine.metrics["by_age"], theirs.metrics["by_age"]
    assert len(ages) > 1
    for band, expected_band in zip(ages, expected_ages, strict=True):
        assert band == pytest.approx(expected_band)
    assert (mine.trained.scorer.metadata[TRAINED_AGES_KEY]
            == theirs.trained.scorer.metadata[TRAINED_AGES_KEY])
    assert mine.metrics["notes"] == theirs.metrics["notes"]
    assert any("lead age(s) 900 days" in note for note in mine.metrics["notes"])


@pytest.fixture(scope="module")
def decision_runs(funnel_dir: Path) -> tuple[TrainingRun, TrainingRun]:
    """The same training with decisions first (``decision_after: opportunity``) on one
    machine and on a one-worker cluster."""
    plan = inputs(funnel_dir)
    decide = {"decision_after": Stage.OPPORTUNITY}

    def deciding(config: DatasetConfig) -> DatasetConfig:
        return config.model_copy(update={"snapshots": config.snapshots.model_copy(
            update=decide)})

    dataset = load_dataset(dataset_config(funnel_dir, "events.parquet"), Path("."))
    local = run_training(dataset, replace(plan, config=deciding(
        dataset_config(funnel_dir, "events.parquet"))))
    on_cluster = replace(plan, config=deciding(plan.config))
    with dist.dask_client("local", n_workers=1) as alone:
        return local, train(dist.PartitionedSource(alone, on_cluster, PARTITIONS),
                            on_cluster).run


def test_dask_learns_the_decisions_first_as_one_machine(
        decision_runs: tuple[TrainingRun, TrainingRun]) -> None:
    """Each partition's decisions travel with its rows to the workers: the first stage is
    the same trees as on one machine (a fit of the decisions), and the target's fit
    continues from them (its trees may differ in the last digits of the scores they start
    from; the models' test ROC-AUC does not)."""
    theirs, mine = decision_runs
    rounds = [r.metrics["decisions"]["first_stage_rounds"] for r in (mine, theirs)]
    assert rounds[0] == rounds[1] > 0
    classifiers = [r.trained.scorer.pipeline.named_steps["classifier"] for r in (mine, theirs)]
    trees = [c.booster_.dump_model()["tree_info"] for c in classifiers]
    assert trees[0][:rounds[0]] == trees[1][:rounds[0]]
    assert len(trees[0]) > rounds[0] and len(trees[1]) > rounds[0]
    assert abs(mine.metrics["model"]["roc_auc"] - theirs.metrics["model"]["roc_auc"]) <= 0.005


def test_open_leads_past_the_sample_size_are_sampled_evenly_across_partitions(
        client: object, funnel_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More open leads than the sample holds: every partition gives its share, counted
    in full, featurised on the workers, in the same stage shares as all of them."""
    from predictive_scoring.distributed import examples as dask_examples

    run_inputs = inputs(funnel_dir)
    everyone = dist.build_examples_distributed(client, run_inputs, PARTITIONS).population
    monkeypatch.setattr(dask_examples, "POPULATION_ROWS", 1000)
    sample = dist.build_examples_distributed(client, run_inputs, PARTITIONS).population
    assert sample.n_open == everyone.n_open == len(everyone.frame) > 4000
    assert sample.as_of == everyone.as_of
    assert abs(len(sample.frame) - 1000) <= PARTITIONS
    assert len(sample.rule_stage) == len(sample.frame)
    assert set(sample.frame["lead_id"]) <= set(everyone.frame["lead_id"])
    assert sample.frame["lead_id"].is_unique
    full = pd.Series(everyone.rule_stage).value_counts(normalize=True)
    part = pd.Series(sample.rule_stage).value_counts(normalize=True)
    assert part.reindex(full.index, fill_value=0).to_numpy() == pytest.approx(
        full.to_numpy(), abs=0.05)
    columns = everyone.frame.set_index("lead_id").loc[sample.frame["lead_id"]]
    shared = [c for c in sample.frame.columns if c != "lead_id"]
    pd.testing.assert_frame_equal(sample.frame.set_index("lead_id")[shared], columns[shared],
                                  check_dtype=False)
