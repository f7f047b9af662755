"""LightGBM trained data-parallel on the Dask workers that hold the training rows.

LightGBM's own distributed learning (``tree_learner=data`` over its sockets, the
``machines`` it is given): one training task per worker, on the rows that worker already
holds, each with the whole validation slice so that every worker stops at the same round.
The fitted classifier comes back from one worker; the rows never leave theirs.

``lightgbm.dask`` (4.7) does the same, but before training it checks that each worker got
validation data by fetching a training part of every worker to the client: the driver
received the whole training matrix (on 5M leads about 5 GB, and it was the driver the
kernel killed) and each worker serialised its block once more for it (288 bytes a row on
top of the fit's own memory). Here nothing is fetched but the fitted model.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import lightgbm as lgb
    from distributed import Client, Future

NETWORK_PARAMS = ("machines", "local_listen_port", "num_machines", "time_out")
"""The network settings each worker trains with, taken back out of the fitted classifier
(they name this cluster's ports, not the model)."""
NETWORK_MINUTES = 120
"""LightGBM's socket time-out (minutes), its default: a worker waits that long for the
others between rounds."""


@dataclass(frozen=True)
class Rows:
    """One slice's rows on a Dask cluster: model input (rows x features, float32),
    labels and, when weighted, weights; each a Dask array, blocked alike."""

    x: Any
    y: Any
    w: Any = None


def fit_on_workers(client: Client, params: dict[str, Any], train: Rows, valid: Rows,
                   fit_args: dict[str, Any]) -> lgb.LGBMClassifier:
    """An ``LGBMClassifier`` (``params``) fitted data-parallel on the workers holding
    ``train``'s blocks, each stopping early on the whole ``valid`` slice.

    Args:
        client: A connected Dask client.
        params: The classifier's parameters (``tree_learner`` ``data`` unless given).
        train: The training rows, blocked as the workers hold them.
        valid: The validation rows (any blocking: stacked into one array, copied once to
            each other worker).
        fit_args: More arguments of ``LGBMClassifier.fit`` (callbacks, init_model,
            categorical_feature).

    Returns:
        The fitted classifier, as one fitted on one machine (no network settings).
    """
    from dask import delayed
    from distributed import wait

    parts = client.compute([delayed(_part)(x, y, w) for x, y, w in _blocks(train)])
    held = client.compute(delayed(_stacked)(_blocks(valid)))
    wait([*parts, held])
    holders = client.who_has(parts)
    on_worker: dict[str, list[Future]] = {}
    for part in parts:
        on_worker.setdefault(sorted(holders[part.key])[0], []).append(part)
    workers = list(on_worker)
    sockets = {w: client.submit(_hold_port, workers=[w], allow_other_workers=False,
                                pure=False) for w in workers}
    ports = dict(zip(workers, client.gather([client.submit(_port_of, sockets[w], workers=[w],
                                                           pure=False) for w in workers]),
                     strict=True))
    network = {"machines": ",".join(f"{_host(w)}:{ports[w]}" for w in workers),
               "num_machines": len(workers), "time_out": NETWORK_MINUTES}
    threads = client.ncores()
    fits = [client.submit(_fit_here, on_worker[w], held, sockets[w],
                          params={"tree_learner": "data", **params, **network,
                                  "local_listen_port": ports[w],
                                  "num_threads": threads[w]},
                          fit_args=fit_args, keep=w == workers[0], workers=[w],
                          allow_other_workers=False, pure=False)
            for w in workers]
    classifier = next(c for c in client.gather(fits) if c is not None)
    for name in NETWORK_PARAMS:
        classifier._other_params.pop(name, None)  # as lightgbm.dask leaves its model
    return classifier


def _blocks(rows: Rows) -> list[tuple[Any, Any, Any]]:
    """Each block's delayed model input, labels and weights (None unweighted), their
    graphs as built (optimised, a block's key would name another task than the same
    key computed before, and the scheduler warns of it)."""
    def delayed(array: Any) -> list[Any]:
        return array.to_delayed(optimize_graph=False).ravel().tolist()

    xs, ys = delayed(rows.x), delayed(rows.y)
    ws = delayed(rows.w) if rows.w is not None else [None] * len(xs)
    return list(zip(xs, ys, ws, strict=True))


def _part(x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[Any, ...]:
    return x, y, w


def _stacked(blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]
             ) -> tuple[Any, ...]:
    """Blocks as one (the block itself when there is one: no copy)."""
    if len(blocks) == 1:
        return tuple(blocks[0])
    return tuple(None if parts[0] is None else np.concatenate(parts)
                 for parts in zip(*blocks, strict=True))


class _Port:
    """A port bound on a worker, held until its training task starts (another process
    could take a port only looked up, before LightGBM binds it)."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("", 0))

    def release(self) -> None:
        self.socket.close()


def _hold_port() -> _Port:
    return _Port()


def _port_of(port: _Port) -> int:
    return int(port.socket.getsockname()[1])


def _host(address: str) -> str:
    from urllib.parse import urlparse

    return urlparse(address).hostname or "127.0.0.1"


def _fit_here(parts: list[tuple[Any, ...]], valid: tuple[Any, ...], port: _Port,
              params: dict[str, Any], fit_args: dict[str, Any], keep: bool
              ) -> lgb.LGBMClassifier | None:
    """This worker's share of the fit: its parts (as held, stacked only when several),
    the whole validation slice; the classifier if ``keep``."""
    import lightgbm as lgb

    x, y, w = _stacked(parts)
    classifier = lgb.LGBMClassifier(**params)
    port.release()
    try:
        classifier.fit(x, y, sample_weight=w, eval_X=(valid[0],), eval_y=(valid[1],),
                       eval_sample_weight=None if valid[2] is None else [valid[2]],
                       **fit_args)
    finally:
        if getattr(classifier, "fitted_", False):
            classifier.booster_.free_network()
    return classifier if keep else None

