"""A model in service: loaded, smoke-tested, and scoring request leads into answers.

This is the service's one module that imports the model's libraries (numpy, pandas,
scikit-learn, LightGBM through :mod:`predictive_scoring.online` and
:mod:`predictive_scoring.explain`). It is imported by the thread that loads the model, not
when a worker starts, so a worker answers its supervisor and ``/health`` at once; the
routes reach it only through the :class:`LoadedModel` they are given.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring import explain
from predictive_scoring.accounts.online import OnlineAccountScorer
from predictive_scoring.errors import LeadInputError
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.monitoring import reference as monitoring_reference
from predictive_scoring.monitoring.change import ScoreChange, score_change
from predictive_scoring.online import (
    CATEGORY_NUMBERS,
    LARGEST_FLOAT,
    NUMBER_TEXT,
    TIME_FIELDS,
    OnlineScorer,
    OnlineScores,
    RawLead,
)
from predictive_scoring.tracking import registry, store
from serving.drift import OnlineDrift
from serving.loading import ModelLoadError
from serving.requests import (
    LeadIn,
    ModelInputs,
    ParsedLead,
    as_utc,
    events_ns,
    ns_since_epoch,
)

SMOKE_LEAD_ID = "smoke-test"
NO_EXPLANATION: dict[str, Any] = {"fit_grade": None, "engagement": None, "quadrant": None,
                                  "reasons": None}

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
        timings: Seconds spent reading the bundle (``read``) and preparing it
            (``prepare``: the fast path, explanations, smoke test).
        binner: Each lead's input as bins of the training reference (None: the bundle
            has no reference).
        drift: The online drift window of this model (``/metrics``).
        accounts: The bundle's account model on its fast path, or None.
    """

    ref: registry.BundleRef
    scorer: LeadScorer
    online: OnlineScorer
    loaded_at: datetime
    explainable: bool = False
    has_fit_engagement: bool = False
    timings: dict[str, float] | None = None
    binner: monitoring_reference.InputBinner | None = None
    drift: OnlineDrift | None = None
    accounts: OnlineAccountScorer | None = None

    @property
    def events_shape(self) -> bool:
        """Whether leads are scored with their events as of a moment."""
        return self.scorer.shape == "events"

    def inputs(self) -> ModelInputs:
        """What the model reads, for the request schema."""
        numeric = {name: (-LARGEST_FLOAT, LARGEST_FLOAT)
                   for name in self.scorer.columns.numeric
                   if name not in self.scorer.columns.behaviour}
        for name, allowed in self.online.ranges.items():
            low, high = numeric[name]
            numeric[name] = (low if allowed.min is None else allowed.min,
                             high if allowed.max is None else allowed.max)
        return ModelInputs(self.events_shape, numeric, tuple(self.scorer.columns.categorical),
                           CATEGORY_NUMBERS, NUMBER_TEXT)

    def raw_lead(self, lead: LeadIn, now: datetime, max_events: int) -> RawLead:
        """:func:`raw_lead`, checked by the scorer.

        Raises:
            LeadInputError: More events than allowed, a timestamp out of range, or a lead
                the scorer cannot read (:meth:`OnlineScorer.check`); attributes are named
                ``attributes.<name>``.
        """
        raw = raw_lead(lead, now, max_events)
        try:
            self.online.check(raw)
        except LeadInputError as exc:
            if exc.field in TIME_FIELDS:
                raise
            raise LeadInputError(f"attributes.{exc.field}", exc.reason) from None
        return raw

    def answers(self, raws: Sequence[RawLead], leads: Sequence[ParsedLead], now: datetime,
                reasons: int | None, bins: list[str | None] | None = None
                ) -> list[dict[str, Any]]:
        """One ``LeadScore`` dict per lead (checked by :meth:`raw_lead`), in order.

        Args:
            raws: The leads as :meth:`raw_lead` gave them.
            leads: The same leads as decoded (for ``as_of`` and unread fields).
            now: The request's moment (the default ``as_of``).
            reasons: Top reasons each way; None: no reasons (fit grade, engagement and
                quadrant are given either way).
            bins: When given, each lead's input bins (:meth:`input_bins`) are appended
                to it, for the prediction log and the drift window.
        """
        scores = self.online.score(raws, checked=True)
        if bins is not None:
            bins.extend(self.input_bins(scores))
        fired = scores.points.fired()
        explained = self.explanations(scores, reasons)
        results = []
        for i, parsed in enumerate(leads):
            as_of = as_utc(parsed.lead.as_of or now) if self.events_shape else None
            results.append({
                "status": "scored",
                "lead_id": parsed.lead.lead_id,
                "as_of": as_of.isoformat().replace("+00:00", "Z") if as_of else None,
                "probability": float(scores.probability[i]),
                "score": int(scores.score[i]),
                "suggested_stage": scores.suggested_stage[i],
                "age_beyond_training": bool(scores.age_beyond_training[i]),
                **explained[i],
                "rules": {"points": float(scores.points.points[i]),
                          "stage": scores.points.stage[i],
                          "fired": [{"rule": rule, "points": points}
                                    for rule, points in fired[i]]},
                "ignored_fields": [*parsed.extra_fields, *scores.ignored_fields[i]],
            })
        return results

    def score_change(self, raws: Sequence[RawLead], moments: tuple[datetime, datetime]
                     ) -> ScoreChange:
        """Why one lead's score changed: ``raws`` is the lead at each moment (checked by
        :meth:`raw_lead`); see :mod:`predictive_scoring.monitoring.change`."""
        scores = self.online.score(raws, checked=True)
        contrib = explain.contributions_from_matrix(self.scorer, scores.matrix)
        return score_change(self.scorer, contrib, scores.features, raws[0].lead_id,
                            (pd.Timestamp(as_utc(moments[0])),
                             pd.Timestamp(as_utc(moments[1]))))

    def input_bins(self, scores: OnlineScores) -> list[str | None]:
        """Each lead's model input as bins of the training reference (None each when the
        bundle has none): what the prediction log keeps of a lead's input."""
        if self.binner is None:
            return [None] * len(scores.lead_ids)
        features = scores.features
        return self.binner.encode(features.model_input, {
            name: features[name] for name in self.scorer.columns.categorical})

    def explanations(self, scores: OnlineScores, k: int | None) -> list[dict[str, Any]]:
        """Per lead: fit grade, engagement, quadrant and (``k`` not None) the top ``k``
        reasons each way.

        Contributions come straight from the classifier's input the scoring built
        (LightGBM's ``pred_contrib``): nothing is featurised twice, and no pandas.
        """
        n = len(scores.lead_ids)
        if not self.explainable:
            return [NO_EXPLANATION] * n
        contrib = explain.contributions_from_matrix(self.scorer, scores.matrix)
        reasons = (explain.reasons(self.scorer, scores.features, contrib, k)
                   if k is not None else None)
        split = (explain.fit_engagement_arrays(self.scorer, contrib)
                 if self.has_fit_engagement else None)
        return [{
            "fit_grade": split.fit_grade[i] if split else None,
            "engagement": split.engagement[i] if split else None,
            "quadrant": split.quadrant[i] if split else None,
            "reasons": None if reasons is None else [
                {"field": r.field, "value": _plain(r.value), "effect": r.effect,
                 "sentence": r.sentence} for r in reasons[i]],
        } for i in range(n)]


def raw_lead(lead: LeadIn, now: datetime, max_events: int) -> RawLead:
    """The package's view of a request lead (as_of defaults to ``now``), unchecked.

    Raises:
        LeadInputError: More events than allowed, or a timestamp out of range.
    """
    if len(lead.events) > max_events:
        raise LeadInputError("events", f"{len(lead.events):,} events; at most "
                             f"{max_events:,} per lead "
                             "(PREDICTIVE_SCORING_MAX_EVENTS_PER_LEAD)")
    return RawLead(
        lead_id=lead.lead_id,
        attributes=lead.attributes,
        created_at=(ns_since_epoch(lead.created_at, "created_at") if lead.created_at
                    else None),
        as_of=ns_since_epoch(lead.as_of or now, "as_of"),
        event_times=events_ns([event.timestamp for event in lead.events]),
        event_types=[event.event_type for event in lead.events],
        event_details=[event.detail for event in lead.events],
    )


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python ones, non-finite numbers as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------ loading
def load_model(uri: str) -> LoadedModel:
    """Resolve, load and smoke-test a bundle.

    Raises:
        ModelLoadError: With the reason (credentials in URIs masked).
    """
    started = time.perf_counter()
    try:
        ref = registry.resolve_bundle(uri)
        scorer = registry.load_scorer(ref.uri)
    except Exception as exc:  # any failure of the store or the bundle keeps the old model
        raise ModelLoadError(f"could not load {store.redact(str(uri))}: "
                             f"{store.redact(_first_line(exc))}") from exc
    read = time.perf_counter()
    online = OnlineScorer(scorer)
    explainable, has_fit_engagement = explanation_support(scorer, online)
    reference = scorer.metadata.get(monitoring_reference.METADATA_KEY)
    binner = (monitoring_reference.InputBinner(reference, scorer.columns.all)
              if reference is not None else None)
    drift = OnlineDrift(reference, scorer.metadata.get("trained_at"))
    account_model = getattr(scorer, "accounts", None)
    model = LoadedModel(ref, scorer, online, datetime.now(UTC), explainable,
                        has_fit_engagement, binner=binner, drift=drift,
                        accounts=(OnlineAccountScorer(account_model)
                                  if account_model is not None else None))
    smoke_test(model)
    return replace(model, timings={"read": round(read - started, 3),
                                   "prepare": round(time.perf_counter() - read, 3)})


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
