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
                         dask_training.SLICE: rng.choice(["train", "valid"], n)})


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with dist.dask_client("local", n_workers=2) as connected:
        yield connected


def test_each_worker_gets_one_block_of_its_partitions_rows_in_order(client: object) -> None:
    frames = [partition(seed) for seed in range(PARTITIONS)]
    examples = client.scatter(frames)  # spread over both workers
    model = load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig)
    prep = build_pipeline(model, COLUMNS).named_steps["prep"].fit(
        model_frame(pd.concat(frames), COLUMNS))
    xs, ys, sizes, ws = dask_training._slice_arrays(client, examples, client.scatter(prep),
                                                    COLUMNS, "train")
    wait([*xs, *ys, *ws])
    holders = [next(iter(client.who_has([x])[x.key])) for x in xs]
    assert len(xs) == len(ys) == len(sizes) == len(ws) == len(set(holders)) <= 2
    parts = [(prep.transform(model_frame(train, COLUMNS)), train["label"].to_numpy(),
              train["weight"].to_numpy())
             for train in (f.loc[f[dask_training.SLICE] == "train"] for f in frames)]
    used = set()
    for x, y, w, size in zip(client.gather(xs), client.gather(ys), client.gather(ws), sizes,
                             strict=True):
        assert len(x) == len(y) == len(w) == size
        at = 0  # the block is whole partitions, stacked in partition order
        for number, (part_x, part_y, part_w) in enumerate(parts):
            end = at + len(part_x)
            if number not in used and end <= len(x) and np.array_equal(x[at:end], part_x):
                np.testing.assert_array_equal(y[at:end], part_y)
                np.testing.assert_array_equal(w[at:end], part_w)
                used.add(number)
                at = end
        assert at == len(x)
    assert used == set(range(PARTITIONS))  # every partition's rows, once
