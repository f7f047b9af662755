"""The Dask cluster a run uses: where it goes and how finely it splits the leads (a
:class:`DaskPlan`), the client, and a frame's partitions as futures on the workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client, Future

LOCAL = "local"
"""The scheduler value that starts a cluster of worker processes on this machine."""

Report = Callable[[str], None]
"""Called with the name of each stage of a run as it starts."""


def silent(_: str) -> None:
    """A :data:`Report` that says nothing."""
    return None


@dataclass(frozen=True)
class DaskPlan:
    """Where a Dask run goes and how finely it splits the leads.

    Attributes:
        scheduler: ``local`` (:data:`LOCAL`) or a running scheduler's address.
        workers: Worker processes of a local cluster.
        partitions: Partitions of leads (each a set of whole leads).
        retries: Extra attempts for a scoring partition that fails.
    """

    scheduler: str = LOCAL
    workers: int = 2
    partitions: int = 8
    retries: int = 2


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

    return_freed_memory()
    if scheduler != LOCAL:
        with Client(scheduler) as client:
            client.register_plugin(system_arrow_memory())
            yield client
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                      processes=True, host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        # Every worker is registered before work is handed out (on a busy machine one
        # can lag, and data scattered meanwhile would all land on the other).
        client.wait_for_workers(n_workers)
        client.register_plugin(system_arrow_memory())
        yield client


MMAP_THRESHOLD = 1 << 20
"""Allocations of this many bytes or more are mapped on their own and go back to the
system when freed (glibc's default threshold rises up to 32 MiB as large blocks are
freed, after which they stay in its heap)."""
ARENAS = 2
"""At most this many glibc arenas (8 per core by default): the client's threads receive
the workers' results, and memory freed in one thread's arena is not reused by another."""


def return_freed_memory() -> None:
    """Let this process (the driver: client and scheduler) give freed memory back.

    The driver receives every partition's outcomes, the leakage check's columns and
    the validation rows' probabilities; with glibc's defaults most of what it freed stayed
    resident (300k simulated leads: 1.63 GiB peak, 1.14 GiB held when the fit starts, of
    which about 0.3 GiB live; with these settings 1.19 and 0.70 GiB). Elsewhere than on
    glibc nothing changes.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_mmap_threshold, m_arena_max = -3, -8
    mallopt(m_mmap_threshold, MMAP_THRESHOLD)
    mallopt(m_arena_max, ARENAS)


def system_arrow_memory() -> Any:
    """A worker plugin: the worker's Arrow memory (pandas' text columns, Parquet reads,
    the shuffle's shards) comes from the C allocator, as its numpy arrays do.

    Arrow's own allocator (mimalloc) keeps the memory a worker frees for reuse: a
    partition's rows as read stayed resident after it was validated (0.95 GiB against
    0.49 GiB with the C allocator, 50k leads' tables validated in one process). Freed C
    memory goes back to the system (Dask's workers trim it: ``MALLOC_TRIM_THRESHOLD_``).
    """
    from distributed import WorkerPlugin

    class SystemArrowMemory(WorkerPlugin):
        idempotent = True
        name = "system-arrow-memory"

        def setup(self, worker: Any) -> None:
            import pyarrow as pa

            pa.set_memory_pool(pa.system_memory_pool())

    return SystemArrowMemory()


def _require_dask() -> None:
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ValueError(f"--engine dask needs the [dask] extra ({exc.name} is missing): "
                         "pip install -e '.[dask]'") from None


def partitions(client: Client, frame: Any) -> list[Future]:
    """The frame's partitions as futures on the cluster, in partition order."""
    return client.compute(frame.to_delayed())


