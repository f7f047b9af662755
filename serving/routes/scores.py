"""``POST /v1/score`` and ``POST /v1/score/batch``: the model's score next to the rules'.

Both go through :class:`~predictive_scoring.online.OnlineScorer`, the package's pandas-free
path (the same features, calibration and rules as batch scoring). Responses are built as
plain dicts and written with orjson; their shape is the documented response model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from predictive_scoring import explain
from predictive_scoring.online import LeadInputError, OnlineScores, RawLead
from serving.loading import LoadedModel
from serving.schemas import (
    EARLIEST,
    LATEST,
    BatchIn,
    BatchOut,
    ErrorOut,
    HTTPValidationErrorOut,
    InvalidLead,
    LeadIn,
    ScoreOut,
    as_utc,
)
from serving.security import ApiKey

router = APIRouter(prefix="/v1", tags=["scores"], dependencies=[ApiKey])

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
OUT_OF_RANGE = "is outside the supported range (years 1678 to 2261)"
EARLIEST_NS = (EARLIEST - EPOCH) // timedelta(microseconds=1) * 1_000
LATEST_NS = (LATEST - EPOCH) // timedelta(microseconds=1) * 1_000
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Body is not readable (not UTF-8 JSON)"},
    401: {"model": ErrorOut, "description": "Missing or unknown API key"},
    413: {"model": ErrorOut, "description": "Body over the size limit"},
    422: {"model": HTTPValidationErrorOut, "description": "Invalid request"},
    503: {"model": ErrorOut, "description": "No model loaded yet"},
}
ReasonsFlag = Annotated[bool, Query(description="add the top reasons, fit grade and "
                                    "engagement (a little slower)")]


def serving_model(request: Request) -> LoadedModel:
    """The model in service, read once per request (a reload never changes it midway).

    Raises:
        HTTPException: 503 while no model is loaded.
    """
    model = request.app.state.slot.current
    if model is None:
        reason = request.app.state.slot.error or "the model is still loading"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"no model loaded: {reason}")
    request.state.model_version = model.ref.version
    return model


def ns_since_epoch(moment: datetime, field: str) -> int:
    """A timestamp as int nanoseconds since the epoch, UTC (exact, no float rounding).

    A naive timestamp is taken as UTC. Subtracting the aware epoch applies any offset.

    Raises:
        LeadInputError: The timestamp is outside what 64-bit nanoseconds hold.
    """
    ns = _ns(moment)
    if not EARLIEST_NS <= ns < LATEST_NS:
        raise LeadInputError(field, OUT_OF_RANGE)
    return ns


def events_ns(moments: Sequence[datetime]) -> list[int]:
    """Event timestamps as :func:`ns_since_epoch` gives them, checked in one pass (a
    1000-lead batch has ~10,000: no per-event call or field name unless one is bad).

    Raises:
        LeadInputError: ``events.<i>.timestamp`` is outside the supported range.
    """
    ns = [((m if m.tzinfo is not None else m.replace(tzinfo=UTC)) - EPOCH) // MICROSECOND
          * 1_000 for m in moments]
    if ns and not (min(ns) >= EARLIEST_NS and max(ns) < LATEST_NS):
        i = next(i for i, value in enumerate(ns) if not EARLIEST_NS <= value < LATEST_NS)
        raise LeadInputError(f"events.{i}.timestamp", OUT_OF_RANGE)
    return ns


def _ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MICROSECOND * 1_000


def raw_lead(lead: LeadIn, now: datetime, max_events: int) -> RawLead:
    """The package's view of a request lead (as_of defaults to ``now``).

    Raises:
        LeadInputError: More events than allowed, or a timestamp out of range.
    """
    if len(lead.events) > max_events:
        raise LeadInputError("events", f"{len(lead.events):,} events; at most {max_events:,} "
                             "per lead (PREDICTIVE_SCORING_MAX_EVENTS_PER_LEAD)")
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


def explanations(model: LoadedModel, scores: OnlineScores, k: int) -> list[dict[str, Any]]:
    """Per lead: fit grade, engagement, quadrant and the top ``k`` reasons each way.

    Contributions come straight from the classifier's input the scoring built (LightGBM's
    ``pred_contrib``): nothing is featurised twice, and no pandas.
    """
    n = len(scores.lead_ids)
    if not model.explainable:
        return [dict(NO_EXPLANATION) for _ in range(n)]
    contrib = explain.contributions_from_matrix(model.scorer, scores.matrix)
    reasons = explain.reasons(model.scorer, scores.features, contrib, k)
    split = (explain.fit_engagement_arrays(model.scorer, contrib)
             if model.has_fit_engagement else None)
    return [{
        "fit_grade": split.fit_grade[i] if split else None,
        "engagement": split.engagement[i] if split else None,
        "quadrant": split.quadrant[i] if split else None,
        "reasons": [{"field": r.field, "value": _plain(r.value), "effect": r.effect,
                     "sentence": r.sentence} for r in reasons[i]],
    } for i in range(n)]


NO_EXPLANATION = {"fit_grade": None, "engagement": None, "quadrant": None, "reasons": None}


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python ones, non-finite numbers as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def lead_results(model: LoadedModel, scores: OnlineScores, leads: Sequence[LeadIn],
                 now: datetime, reasons: int | None) -> list[dict[str, Any]]:
    """One ``LeadScore`` dict per scored lead; ``reasons`` None: no explanations."""
    fired = scores.points.fired()
    events_shape = model.scorer.shape == "events"
    explained = (explanations(model, scores, reasons) if reasons is not None
                 else [NO_EXPLANATION] * len(leads))
    results = []
    for i, lead in enumerate(leads):
        as_of = as_utc(lead.as_of or now) if events_shape else None
        results.append({
            "status": "scored",
            "lead_id": lead.lead_id,
            "as_of": as_of.isoformat().replace("+00:00", "Z") if as_of else None,
            "probability": float(scores.probability[i]),
            "score": int(scores.score[i]),
            "suggested_stage": scores.suggested_stage[i],
            **explained[i],
            "rules": {"points": float(scores.points.points[i]),
                      "stage": scores.points.stage[i],
                      "fired": [{"rule": rule, "points": points} for rule, points in fired[i]]},
            "ignored_fields": [*lead.extra_fields(), *scores.ignored_fields[i]],
        })
    return results


def log_predictions(request: Request, model: LoadedModel, results: Sequence[dict[str, Any]],
                    now: datetime) -> None:
    """Queue the scores for the prediction log (when it is on) and count them."""
    metrics = request.app.state.metrics
    histogram = metrics.scores.labels(model.ref.version)
    for result in results:
        histogram.observe(result["score"])
    metrics.leads.labels("scored").inc(len(results))
    prediction_log = request.app.state.prediction_log
    if prediction_log is None:
        return
    prediction_log.add([{
        "scored_at": now, "request_id": request.state.request_id,
        "lead_id": result["lead_id"],
        "as_of": datetime.fromisoformat(result["as_of"]) if result["as_of"] else None,
        "probability": result["probability"], "score": result["score"],
        "suggested_stage": result["suggested_stage"],
        "rule_points": result["rules"]["points"], "rule_stage": result["rules"]["stage"],
        "model_name": model.ref.name, "model_version": model.ref.version,
    } for result in results])


def json_response(body: dict[str, Any]) -> Response:
    """orjson-encoded JSON (numpy-free plain values only)."""
    return Response(orjson.dumps(body), media_type="application/json")


# One lead is scored on the event loop: its fraction of a millisecond costs less than the
# hop to a worker thread (and 16 connections' threads fighting over the GIL). A batch runs
# in the thread pool so that its tens of milliseconds never stall other requests.
@router.post("/score", response_model=ScoreOut, responses=ERRORS)
async def score_lead(lead: LeadIn, request: Request, reasons: ReasonsFlag = True) -> Response:
    """Score one lead: probability, 0-100 score, suggested stage, reasons, rules' points."""
    model = serving_model(request)
    now = datetime.now(UTC)
    request.state.lead_ids = [lead.lead_id]
    try:
        raw = raw_lead(lead, now, request.app.state.settings.max_events_per_lead)
        scores = model.online.score([raw])
    except LeadInputError as exc:
        request.app.state.metrics.leads.labels("refused").inc()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", *exc.field.split(".")], "msg": exc.reason,
                              "type": "lead_input"}]) from None
    k = request.app.state.settings.reasons if reasons else None
    result = lead_results(model, scores, [lead], now, k)[0]
    log_predictions(request, model, [result], now)
    return json_response(result | {"model": {"name": model.ref.name,
                                             "version": model.ref.version},
                                   "request_id": request.state.request_id})


@router.post("/score/batch", response_model=BatchOut, responses=ERRORS)
def score_batch(batch: BatchIn, request: Request, reasons: ReasonsFlag = True) -> Response:
    """Score several leads; a bad lead gets its own error entry, the others are scored."""
    settings = request.app.state.settings
    if len(batch.leads) > settings.max_batch_leads:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", "leads"], "type": "too_long",
                              "msg": f"{len(batch.leads):,} leads; at most "
                              f"{settings.max_batch_leads:,} per batch "
                              "(PREDICTIVE_SCORING_MAX_BATCH_LEADS)"}])
    model = serving_model(request)
    now = datetime.now(UTC)
    results: list[dict[str, Any] | None] = [None] * len(batch.leads)
    good: list[tuple[int, LeadIn, RawLead]] = []
    for index, lead in enumerate(batch.leads):
        if isinstance(lead, InvalidLead):
            results[index] = _error(index, lead.lead_id, lead.errors)
            continue
        try:
            raw = raw_lead(lead, now, settings.max_events_per_lead)
            model.online.check(raw)
        except LeadInputError as exc:
            results[index] = _error(index, lead.lead_id,
                                    [{"field": exc.field, "reason": exc.reason}])
            continue
        good.append((index, lead, raw))
    request.state.lead_ids = [lead.lead_id for _, lead, _ in good]
    if good:
        scored = lead_results(model, model.online.score([raw for _, _, raw in good]),
                              [lead for _, lead, _ in good], now,
                              settings.reasons if reasons else None)
        for (index, _, _), result in zip(good, scored, strict=True):
            results[index] = result
        log_predictions(request, model, scored, now)
    failed = len(batch.leads) - len(good)
    if failed:
        request.app.state.metrics.leads.labels("refused").inc(failed)
    return json_response({"model": {"name": model.ref.name, "version": model.ref.version},
                          "request_id": request.state.request_id, "scored": len(good),
                          "failed": failed, "results": results})


def _error(index: int, lead_id: str | None, errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"status": "error", "index": index, "lead_id": lead_id, "errors": errors}
