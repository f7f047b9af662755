"""The training slice reaches LightGBM as one block per worker (its partitions' rows
stacked in order, their snapshot weights beside them), so each worker holds one copy of
the validation slice, not one per partition."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from distributed import wait

from predictive_scoring import distributed as dist
from predictive_scoring.config import ModelConfig, load_config
from predictive_scoring.data.snapshots import DECIDED
from predictive_scoring.distributed import examples as dask_examples
from predictive_scoring.distributed import store
from predictive_scoring.distributed import train as dask_training
from predictive_scoring.models.columns import FeatureColumns, model_frame
from predictive_scoring.models.scorer import build_pipeline
from tests.conftest import REPO

COLUMNS = FeatureColumns(("plan",), ("seats",), {"plan": "fit", "seats": "fit"})
PARTITIONS = 6


def partition(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 50 + 10 * seed
    return pd.DataFrame({"plan": rng.choice(["free", "pro"], n),
                         "seats": rng.integers(1, 50, n).astype(float),
                         "label": rng.integers(0, 2, n).astype(np.int8),
                         "weight": 1 / rng.integers(1, 7, n),
                         DECIDED: rng.integers(0, 2, n).astype(np.int8),
                         dask_examples.SLICE: rng.choice(["train", "valid"], n)})


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with dist.dask_client("local", n_workers=2) as connected:
        yield connected


def test_each_worker_gets_one_block_of_its_partitions_rows_in_order(client: object) -> None:
    frames = [partition(seed) for seed in range(PARTITIONS)]
    kept = client.gather(client.map(store.keep, frames,  # spread over both workers
                                    [f"partition {i}'s examples" for i in range(PARTITIONS)]))
    assert len({k.worker for k in kept}) == 2
    model = load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig)
    prep = build_pipeline(model, COLUMNS).named_steps["prep"].fit(
        model_frame(pd.concat(frames), COLUMNS))
    sizes = [{part: int((f[dask_examples.SLICE] == part).sum())
              for part in ("train", "valid", "test")} for f in frames]
    designed = dask_training.design_on_cluster(client, kept, sizes, COLUMNS, model)
    xs, ys, counts, ws, ds = designed.train
    layout = designed.layout
    wait([*xs, *ys, *ws, *ds])
    holders = [next(iter(client.who_has([x])[x.key])) for x in xs]
    assert len(xs) == len(ys) == len(counts) == len(ws) == len(ds) == len(set(holders)) == 2
    # each block is made on the worker keeping its partitions
    assert all(kept[p].worker == holder for parts, holder in zip(layout, holders, strict=True)
               for p, _ in parts)
    assert [sum(n for _, n in parts) for parts in layout] == list(counts)
    valid = [f.loc[f[dask_examples.SLICE] == "valid"] for f in frames]
    assert designed.n_valid == sum(map(len, valid))
    np.testing.assert_array_equal(
        client.gather(designed.valid[0]),  # the validation rows, in partition order
        np.concatenate([prep.transform(model_frame(v, COLUMNS)) for v in valid]))
    np.testing.assert_array_equal(client.gather(designed.valid[3]),
                                  np.concatenate([v[DECIDED].to_numpy() for v in valid]))
    assert sorted(p for parts in layout for p, _ in parts) == list(range(PARTITIONS))
    parts = [(prep.transform(model_frame(train, COLUMNS)), train["label"].to_numpy(),
              train["weight"].to_numpy(), train[DECIDED].to_numpy())
             for train in (f.loc[f[dask_examples.SLICE] == "train"] for f in frames)]
    used = set()
    for x, y, w, d, size in zip(client.gather(xs), client.gather(ys), client.gather(ws),
                                client.gather(ds), counts, strict=True):
        assert len(x) == len(y) == len(w) == len(d) == size
        at = 0  # the block is whole partitions, stacked in partition order
        for number, (part_x, part_y, part_w, part_d) in enumerate(parts):
            end = at + len(part_x)
            if number not in used and end <= len(x) and np.array_equal(x[at:end], part_x):
                np.testing.assert_array_equal(y[at:end], part_y)
                np.testing.assert_array_equal(w[at:end], part_w)
                np.testing.assert_array_equal(d[at:end], part_d)  # decisions travel too
                used.add(number)
                at = end
        assert at == len(x)
    assert used == set(range(PARTITIONS))  # every partition's rows, once


def test_a_partition_featurised_in_blocks_gives_the_examples_of_one_block(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few snapshots (a lead's snapshots split between blocks) give the same
    examples, row for row, as the whole partition at once."""
    from predictive_scoring.config import BaseConfig, DatasetConfig, RulesConfig
    from predictive_scoring.data.synthetic import simulate_into
    from predictive_scoring.distributed import sources

    config = simulate_into(load_config(REPO / "configs/datasets/simulated.yaml", DatasetConfig),
                           300, 5, tmp_path)
    tables = {name: sources.read_piece(source.pieces[0], "lead_id") for name, source in
              sources.dataset_sources(config, load_config(REPO / "configs/base.yaml",
                                                          BaseConfig)).items()
              if name in sources.TABLES}
    checks = sources.check_partition(*(tables[name] for name in sources.TABLES), config,
                                     dict.fromkeys(sources.TABLES, "file"))
    facts = sources.check_facts(checks)
    snapshots = dask_examples.partition_snapshots(checks, config, facts.data_end,
                                                  facts.first_created)
    training = load_config(REPO / "configs/base.yaml", BaseConfig).training
    bounds = dask_examples.slice_bounds(dask_examples.first_seen(snapshots), training)
    spec = dask_examples.vocabulary_of(
        [dask_examples.partition_key_counts(checks, snapshots, bounds, config)], config)
    recipe = dask_examples.ExampleRecipe(bounds, spec, load_config(REPO / config.rules,
                                                                   RulesConfig), config.read)
    whole = dask_examples.partition_examples(checks, snapshots, None, recipe)
    monkeypatch.setattr(dask_examples, "EXAMPLE_BLOCK_ROWS", 7)
    assert len(whole) > 7 * 3
    pd.testing.assert_frame_equal(
        dask_examples.partition_examples(checks, snapshots, None, recipe), whole)


def test_each_partitions_check_holds_whole_leads_with_their_events(
        client: object, tmp_path: object) -> None:
    """Each table is shuffled by lead on its own, yet partition ``i`` of every table holds
    the same leads: every event and stage change is validated beside its lead (none
    refused as of an unknown lead) and every row is kept once."""
    from predictive_scoring.config import BaseConfig, DatasetConfig
    from predictive_scoring.data.synthetic import simulate_into
    from predictive_scoring.distributed import sources

    config = simulate_into(load_config(REPO / "configs/datasets/simulated.yaml", DatasetConfig),
                           400, 11, tmp_path)
    found = sources.dataset_sources(config, load_config(REPO / "configs/base.yaml",
                                                        BaseConfig))
    tables = {name: sources.read_by_lead(found[name], sources.lead_id_column(config, name), 3)
              for name in sources.TABLES}
    checked = client.gather(dask_examples.checked_partitions(
        client, tables, config, dict.fromkeys(sources.TABLES, "file")))
    checks = [t.checks for t in store.gather_on(client, store.load,
                                                [c.tables for c in checked])]
    store.drop_all(client, [c.tables for c in checked])
    assert len(checks) == 3
    for name in sources.TABLES:
        assert sum(len(c[name].kept) for c in checks) == found[name].n_rows
        assert all(c[name].problems.empty for c in checks)
    for check in checks:
        leads = set(check["leads"].kept["lead_id"])
        assert leads  # every partition holds some leads (the check is not vacuous)
        for name in ("events", "stage_changes"):
            assert set(check[name].kept["lead_id"].astype(str)) <= leads


def _planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(2 - 2 * x[:, 0]))).astype(np.int8)
    return x, y, rng.uniform(0.5, 1.5, n)


def _sent(client: object) -> int:
    """Bytes the workers have sent so far, to each other and to the client."""
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
               .values())


def test_the_fit_sends_the_validation_rows_and_the_model_never_the_training_rows(
        client: object) -> None:
    import dask.array as da
    from sklearn.metrics import roc_auc_score

    from predictive_scoring.models.kinds.lightgbm_dask import NETWORK_PARAMS, Rows, fit_on_workers

    workers = sorted(client.scheduler_info()["workers"])
    rows = 100_000
    blocks = [client.submit(_planted, rows, seed, workers=[w], pure=False)
              for seed, w in enumerate(workers)]
    valid = client.submit(_planted, 2_000, 9, workers=[workers[0]], pure=False)
    wait([*blocks, valid])

    def column(futures: list[object], i: int, shape: tuple[int, ...], dtype: object) -> object:
        return da.concatenate([da.from_delayed(dask_training._delayed(
            client.submit(lambda b, i=i: b[i], f, pure=False)), shape, dtype)
            for f in futures])

    train = Rows(column(blocks, 0, (rows, 16), np.float32),
                 column(blocks, 1, (rows,), np.int8), column(blocks, 2, (rows,), float))
    held = Rows(column([valid], 0, (2_000, 16), np.float32),
                column([valid], 1, (2_000,), np.int8), column([valid], 2, (2_000,), float))
    before = _sent(client)
    classifier = fit_on_workers(client, {"n_estimators": 30, "num_leaves": 7,
                                         "verbose": -1}, train, held, {})
    sent = _sent(client) - before
    block_bytes = rows * 16 * 4
    # one copy of the validation rows to the other worker and the model to the client;
    # lightgbm.dask also sent each worker's training block to the client
    assert sent < block_bytes / 4, sent
    x, y, _ = _planted(2_000, 9)
    assert roc_auc_score(y, classifier.predict_proba(x)[:, 1]) > 0.75
    assert classifier.booster_.num_trees() == 30
    assert not set(NETWORK_PARAMS) & set(classifier.get_params())
