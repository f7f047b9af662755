"""What a partition's tasks keep between steps, kept on the disk of the worker that made
it instead of in its memory: a partition's validated tables, snapshots and examples are
written once (pickled, as Dask spills data) and read back by each later task of that
partition, which runs on the same worker. A worker then holds in memory the partition it
is working on, not every partition it has read, whatever the data's size.

The driver holds a small :class:`Kept` per value and submits each partition's tasks to
the worker that wrote it (:func:`submit_on`); :func:`drop` removes the files.
"""

from __future__ import annotations

import pickle
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from distributed import Client, Future

FOLDER = "predictive-scoring-kept"
"""The folder, in a worker's local directory, of the values its tasks keep."""


@dataclass(frozen=True)
class Kept:
    """A value kept in a file on one worker.

    Attributes:
        what: What it is (for messages): ``partition 3's examples``.
        path: The file, on ``worker``'s disk.
        worker: The address of the worker that wrote it.
    """

    what: str
    path: str
    worker: str


def keep(value: Any, what: str) -> Kept:
    """Write ``value`` to this worker's local directory (run inside a Dask task)."""
    from distributed import get_worker

    worker = get_worker()
    folder = Path(worker.local_directory) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.pkl"
    with path.open("wb") as out:
        pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
    return Kept(what, str(path), worker.address)


def load(kept: Kept) -> Any:
    """The value a task kept (run on the worker that kept it).

    Raises:
        RuntimeError: The file is not on this worker: the worker that kept it has gone
            (a task that cannot run where its partition is kept).
    """
    try:
        with Path(kept.path).open("rb") as file:
            return pickle.load(file)
    except FileNotFoundError:
        raise RuntimeError(
            f"{kept.what} was kept on the Dask worker {kept.worker}, and its file is not on "
            "the worker this task ran on: that worker has left the cluster (or the run's "
            "files were removed) while the run went on. Start the run again on a stable "
            "cluster.") from None


def take(kept: Kept) -> Any:
    """A value kept to be read once: the value, its file removed (on its worker)."""
    value = load(kept)
    drop(kept)
    return value


def drop(kept: Kept) -> None:
    """Remove a kept value's file (run on the worker that kept it)."""
    Path(kept.path).unlink(missing_ok=True)


def submit_on(client: Client, function: Callable[..., Any], kept: Kept, *args: Any,
              **kwargs: Any) -> Future:
    """``function(kept, *args, **kwargs)`` as a task on the worker that kept ``kept``
    (on another one only if that worker has gone; :func:`load` then says so)."""
    return client.submit(function, kept, *args, workers=[kept.worker],
                         allow_other_workers=True, pure=False, **kwargs)


def map_on(client: Client, function: Callable[..., Any], kept: Sequence[Kept], *args: Any,
           **kwargs: Any) -> list[Future]:
    """:func:`submit_on` for each kept value, in order."""
    return [submit_on(client, function, k, *args, **kwargs) for k in kept]


def gather_each(futures: Sequence[Future]) -> list[Any]:
    """The futures' results in order, each fetched and released as soon as its task ends.

    A task's result stays in its worker's memory until the driver releases it, and with it
    whatever memory the result still shares: a partition's validation facts (empty frames
    cut from its tables) held its whole Arrow columns, so a worker held every partition's
    columns until the last partition was validated. Released as they arrive, a worker
    holds none of them.

    Raises:
        Exception: The first failed task's error (the futures not yet gathered are
            released with the caller's list).
    """
    from distributed import as_completed

    position = {id(future): i for i, future in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    for future, result in as_completed(futures, with_results=True):
        results[position[id(future)]] = result
        future.release()
    return results


def gather_on(client: Client, function: Callable[..., Any], kept: Sequence[Kept],
              *args: Any, **kwargs: Any) -> list[Any]:
    """The results of :func:`map_on`, in order (:func:`gather_each`)."""
    return gather_each(map_on(client, function, kept, *args, **kwargs))


def applied(kept: Kept, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function`` of a kept value (a task on its worker: :func:`gather_applied`)."""
    return function(load(kept), *args, **kwargs)


def gather_applied(client: Client, function: Callable[..., Any], kept: Sequence[Kept],
                   *args: Any, **kwargs: Any) -> list[Any]:
    """``function(value, *args, **kwargs)`` of each kept value, each computed on the
    worker that kept it, in order."""
    return gather_on(client, applied, kept, function, *args, **kwargs)


def drop_all(client: Client, kept: Sequence[Kept]) -> None:
    """Remove the files of some kept values, each on its worker."""
    if kept:
        client.gather(map_on(client, drop, kept))
