"""The model in service, swapped without downtime.

A :class:`ModelSlot` holds the model in service. Requests read ``slot.current`` once and
score with that object to the end, so a reload that swaps the reference never disturbs a
request in flight; a bundle that fails to load or fails its smoke test never gets in.
Loading itself (:func:`serving.scoring.load_model`) imports the model's libraries, so it
is imported here only when a model is loaded: a worker starts without them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serving.scoring import LoadedModel

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A bundle that could not be loaded or failed its smoke test (message says why)."""


def load_model(uri: str) -> LoadedModel:
    """:func:`serving.scoring.load_model`, imported on first use.

    Raises:
        ModelLoadError: The bundle failed to load or failed its smoke test.
    """
    started = time.perf_counter()
    from serving.scoring import load_model as load

    imports = time.perf_counter() - started  # the model's libraries, on the first load
    model = load(uri)
    return replace(model, timings={"imports": round(imports, 3)} | (model.timings or {}))


class ModelSlot:
    """The model in service, its load error if any, and one reload at a time."""

    def __init__(self) -> None:
        self.current: LoadedModel | None = None
        self.error: str | None = None
        self.reloading = threading.Lock()

    def load(self, uri: str) -> tuple[LoadedModel | None, LoadedModel]:
        """Load ``uri`` and swap it in; on failure keep the old model.

        Returns:
            The previous model (None at start-up) and the one now serving.

        Raises:
            ModelLoadError: The new bundle failed; the old one keeps serving.
        """
        previous = self.current
        try:
            model = load_model(uri)
        except ModelLoadError as exc:
            if previous is None:
                self.error = str(exc)
            raise
        self.current, self.error = model, None
        return previous, model

    def follow(self, uri: str, every_seconds: float, stop: threading.Event,
               on_swap: Callable[[LoadedModel], None]) -> None:
        """Reload whenever ``uri`` points at another bundle than the one serving.

        Runs until ``stop`` is set, checking every ``every_seconds`` (each worker process
        of a multi-worker server runs its own, so a promotion reaches all of them). A
        bundle that failed is not tried again until the URI points elsewhere.

        Args:
            uri: The configured model URI (typically ``models:/NAME@champion``).
            every_seconds: Time between checks.
            stop: Set to end the loop.
            on_swap: Called with each model swapped in.
        """
        from predictive_scoring.tracking import registry, store

        failed: registry.BundleRef | None = None
        while not stop.wait(every_seconds):
            try:
                ref = registry.resolve_bundle(uri)
            except Exception as exc:  # the store may be down for a moment: check again later
                log.warning("could not check %s for a new model (%s)",
                            store.redact(uri), type(exc).__name__)
                continue
            current = self.current
            if ref == failed or (current is not None and ref == current.ref):
                continue
            if not self.reloading.acquire(blocking=False):
                continue
            try:
                _, model = self.load(uri)
            except ModelLoadError as exc:
                failed = ref
                log.error("the new model did not load, the old one keeps serving: %s", exc)
                continue
            finally:
                self.reloading.release()
            on_swap(model)
