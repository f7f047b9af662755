"""Loading a model bundle, checking it, and swapping it in without downtime.

A :class:`ModelSlot` holds the model in service. Requests read ``slot.current`` once and
score with that object to the end, so a reload that swaps the reference never disturbs a
request in flight; a bundle that fails to load or fails its smoke test never gets in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from predictive_scoring import explain
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.online import OnlineScorer, RawLead
from predictive_scoring.tracking import registry, store

SMOKE_LEAD_ID = "smoke-test"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve.

    Attributes:
        ref: Which bundle (registry name, version, alias; the pinned URI loaded).
        scorer: The scorer from the bundle.
        online: The same scorer prepared for raw leads (the fast path).
        loaded_at: When it was loaded (UTC).
        explainable: Reasons can be computed (contributions work for this model).
        has_fit_engagement: The bundle holds fit and engagement cut points.
    """

    ref: registry.BundleRef
    scorer: LeadScorer
    online: OnlineScorer
    loaded_at: datetime
    explainable: bool = False
    has_fit_engagement: bool = False


class ModelLoadError(RuntimeError):
    """A bundle that could not be loaded or failed its smoke test (message says why)."""


def load_model(uri: str) -> LoadedModel:
    """Resolve, load and smoke-test a bundle.

    Raises:
        ModelLoadError: With the reason (credentials in URIs masked).
    """
    try:
        ref = registry.resolve_bundle(uri)
        scorer = registry.load_scorer(ref.uri)
    except Exception as exc:  # any failure of the store or the bundle keeps the old model
        raise ModelLoadError(f"could not load {store.redact(str(uri))}: "
                             f"{store.redact(_first_line(exc))}") from exc
    online = OnlineScorer(scorer)
    explainable, has_fit_engagement = explanation_support(scorer, online)
    model = LoadedModel(ref, scorer, online, datetime.now(UTC), explainable,
                        has_fit_engagement)
    smoke_test(model)
    return model


def explanation_support(scorer: LeadScorer, online: OnlineScorer) -> tuple[bool, bool]:
    """Whether reasons, and fit vs engagement, can be computed for this model.

    A bundle trained before explanations existed lacks their train-time metadata: it
    still scores, and answers without reasons (logged once here, not per request).
    """
    scores = online.score([smoke_lead(scorer, datetime.now(UTC))])
    try:
        contrib = explain.contributions_from_matrix(scorer, scores.matrix)
    except (ValueError, TypeError) as exc:
        log.warning("this model gives no reasons: %s", exc)
        return False, False
    try:
        explain.fit_engagement_arrays(scorer, contrib)
    except ValueError as exc:
        log.warning("this model gives no fit grade or engagement: %s", exc)
        return True, False
    return True, True


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def smoke_lead(scorer: LeadScorer, now: datetime) -> RawLead:
    """A lead with every model attribute missing and one event of each known type."""
    as_of = int(pd.Timestamp(now).value)
    if scorer.shape != "events" or scorer.feature_spec is None:
        return RawLead(SMOKE_LEAD_ID, {}, as_of=as_of)
    created = int(pd.Timestamp(now - timedelta(days=30)).value)
    types = list(scorer.feature_spec.event_types)
    times = [as_of - (i + 1) * 3_600 * 10**9 for i in range(len(types))]
    return RawLead(SMOKE_LEAD_ID, {}, created, as_of, times, types, [None] * len(types))


def smoke_test(model: LoadedModel) -> None:
    """Score a synthetic lead on the fast path and through the scorer's DataFrame path.

    Raises:
        ModelLoadError: The probability is not in [0, 1], or the two paths disagree.
    """
    lead = smoke_lead(model.scorer, datetime.now(UTC))
    try:
        online = model.online.score([lead]).probability[0]
        reference = model.scorer.score(*_frames(lead, model.scorer.shape))["probability"]
    except Exception as exc:
        raise ModelLoadError(f"smoke test failed: {_first_line(exc)}") from exc
    if not 0.0 <= online <= 1.0:
        raise ModelLoadError(f"smoke test failed: probability {online} is not in [0, 1]")
    if not np.isclose(online, reference.iloc[0], rtol=0, atol=1e-9):
        raise ModelLoadError(f"smoke test failed: the fast path gives {online:.6f} and the "
                             f"batch path {reference.iloc[0]:.6f} for the same lead")


def _frames(lead: RawLead, shape: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    leads = pd.DataFrame({"lead_id": [lead.lead_id]})
    if shape != "events":
        return leads, None
    leads["created_at"] = pd.to_datetime([lead.created_at], utc=True)
    leads["as_of"] = pd.to_datetime([lead.as_of], utc=True)
    events = pd.DataFrame({"lead_id": [lead.lead_id] * len(lead.event_times),
                           "timestamp": pd.to_datetime(list(lead.event_times), utc=True),
                           "event_type": list(lead.event_types),
                           "detail": list(lead.event_details)})
    return leads, events


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
