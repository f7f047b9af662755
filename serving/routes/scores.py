"""``POST /v1/score`` and ``POST /v1/score/batch``: the model's score next to the rules'.

Both go through :class:`~predictive_scoring.online.OnlineScorer`, the package's pandas-free
path (the same features, calibration and rules as batch scoring). Responses are built as
plain dicts and written with orjson; their shape is the documented response model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from predictive_scoring import explain
from predictive_scoring.online import LeadInputError, OnlineScores, RawLead
from serving.loading import LoadedModel
from serving.requests import (
    InvalidLead,
    ParsedLead,
    RequestError,
    as_utc,
    decode_batch,
    decode_lead,
    raw_lead,
    request_body,
)
from serving.schemas import BatchOut, ErrorOut, HTTPValidationErrorOut, ScoreOut
from serving.security import SECURED, authorise


class RequestRoute(APIRoute):
    """A route whose endpoint takes the :class:`Request` and returns a :class:`Response`
    itself, documented like any other (response model, errors, ``openapi_extra``).

    FastAPI's custom route class hook (``get_route_handler``): the endpoint is the handler,
    so a request skips dependency solving and response validation, which have nothing to
    do here (the endpoint reads the raw body and writes orjson) and cost about as much as
    the whole no-op endpoint.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


router = APIRouter(prefix="/v1", tags=["scores"], route_class=RequestRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or unknown API key"},
    413: {"model": ErrorOut, "description": "Body over the size limit"},
    422: {"model": HTTPValidationErrorOut, "description": "Invalid request: not JSON, a "
          "field missing, of the wrong type or out of range"},
    503: {"model": ErrorOut, "description": "No model loaded yet"},
}
REASONS_PARAMETER = {"name": "reasons", "in": "query", "required": False,
                     "description": "add the top reasons, fit grade and engagement (a "
                     "little slower)", "schema": {"type": "boolean", "default": True}}
_TRUE = frozenset({"1", "true", "on", "yes", "t", "y"})
_FALSE = frozenset({"0", "false", "off", "no", "f", "n"})


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


def reasons_flag(request: Request) -> bool:
    """The ``reasons`` query flag (default true), read as FastAPI reads a bool.

    Raises:
        HTTPException: 422 for a value that is not a boolean.
    """
    value = request.query_params.get("reasons")
    if value is None or value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise unprocessable(["query", "reasons"], "Input should be a valid boolean",
                        "bool_parsing")


def unprocessable(loc: list[str | int], msg: str, kind: str) -> HTTPException:
    """A 422 in the shape of FastAPI's validation errors."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         [{"loc": loc, "msg": msg, "type": kind}])


def _refused(error: RequestError) -> HTTPException:
    """The 422 for a body that cannot be read, naming the first field at fault."""
    first = error.errors[0]
    return unprocessable(_body_loc(first["field"]), first["reason"], error.kind)


def _documented(body: str) -> dict[str, Any]:
    """``openapi_extra`` of a scoring route: its body, the key schemes and ``reasons``."""
    return request_body(body) | SECURED | {"parameters": [REASONS_PARAMETER]}


def _body_loc(field: str) -> list[str | int]:
    parts = [int(part) if part.isdigit() else part for part in field.split(".")]
    return ["body"] if field in ("body", "lead") else ["body", *parts]


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


def lead_results(model: LoadedModel, scores: OnlineScores, leads: Sequence[ParsedLead],
                 now: datetime, reasons: int | None) -> list[dict[str, Any]]:
    """One ``LeadScore`` dict per scored lead; ``reasons`` None: no explanations."""
    fired = scores.points.fired()
    events_shape = model.scorer.shape == "events"
    explained = (explanations(model, scores, reasons) if reasons is not None
                 else [NO_EXPLANATION] * len(leads))
    results = []
    for i, parsed in enumerate(leads):
        lead = parsed.lead
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
            "ignored_fields": [*parsed.extra_fields, *scores.ignored_fields[i]],
        })
    return results


def log_predictions(request: Request, model: LoadedModel, results: Sequence[dict[str, Any]],
                    now: datetime) -> None:
    """Queue the scores for the prediction log (when it is on) and count them."""
    metrics = request.app.state.metrics
    histogram = metrics.child(metrics.scores, model.ref.version)
    for result in results:
        histogram.observe(result["score"])
    metrics.child(metrics.leads, "scored").inc(len(results))
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
# in the thread pool so that its tens of milliseconds never stall other requests. Both
# read the raw body (no FastAPI body or dependency solving on the hot path): the body,
# query and keys are documented through ``openapi_extra``.
@router.post("/score", response_model=ScoreOut, responses=ERRORS,
             openapi_extra=_documented("LeadIn"))
async def score_lead(request: Request) -> Response:
    """Score one lead: probability, 0-100 score, suggested stage, reasons, rules' points."""
    authorise(request)
    reasons = reasons_flag(request)
    try:
        parsed = decode_lead(await request.body())
    except RequestError as exc:
        raise _refused(exc) from None
    model = serving_model(request)
    now = datetime.now(UTC)
    request.state.lead_ids = [parsed.lead.lead_id]
    try:
        raw = raw_lead(parsed.lead, now, request.app.state.settings.max_events_per_lead)
        scores = model.online.score([raw])
    except LeadInputError as exc:
        metrics = request.app.state.metrics
        metrics.child(metrics.leads, "refused").inc()
        raise unprocessable(_body_loc(exc.field), exc.reason, "lead_input") from None
    k = request.app.state.settings.reasons if reasons else None
    result = lead_results(model, scores, [parsed], now, k)[0]
    log_predictions(request, model, [result], now)
    return json_response(result | {"model": {"name": model.ref.name,
                                             "version": model.ref.version},
                                   "request_id": request.state.request_id})


@router.post("/score/batch", response_model=BatchOut, responses=ERRORS,
             openapi_extra=_documented("BatchIn"))
async def score_batch(request: Request) -> Response:
    """Score several leads; a bad lead gets its own error entry, the others are scored."""
    authorise(request)
    reasons = reasons_flag(request)
    body = await request.body()
    model = serving_model(request)
    return await run_in_threadpool(_score_batch, request, model, body, reasons)


def _score_batch(request: Request, model: LoadedModel, body: bytes, reasons: bool
                 ) -> Response:
    settings = request.app.state.settings
    try:
        leads = decode_batch(body, settings.max_batch_leads)
    except RequestError as exc:
        raise _refused(exc) from None
    now = datetime.now(UTC)
    results: list[dict[str, Any] | None] = [None] * len(leads)
    good: list[tuple[int, ParsedLead, RawLead]] = []
    for index, parsed in enumerate(leads):
        if isinstance(parsed, InvalidLead):
            results[index] = _error(index, parsed.lead_id, parsed.errors)
            continue
        try:
            raw = raw_lead(parsed.lead, now, settings.max_events_per_lead)
            model.online.check(raw)
        except LeadInputError as exc:
            results[index] = _error(index, parsed.lead.lead_id,
                                    [{"field": exc.field, "reason": exc.reason}])
            continue
        good.append((index, parsed, raw))
    request.state.lead_ids = [parsed.lead.lead_id for _, parsed, _ in good]
    if good:
        scored = lead_results(model, model.online.score([raw for _, _, raw in good],
                                                        checked=True),
                              [parsed for _, parsed, _ in good], now,
                              settings.reasons if reasons else None)
        for (index, _, _), result in zip(good, scored, strict=True):
            results[index] = result
        log_predictions(request, model, scored, now)
    failed = len(leads) - len(good)
    if failed:
        metrics = request.app.state.metrics
        metrics.child(metrics.leads, "refused").inc(failed)
    return json_response({"model": {"name": model.ref.name, "version": model.ref.version},
                          "request_id": request.state.request_id, "scored": len(good),
                          "failed": failed, "results": results})


def _error(index: int, lead_id: str | None, errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"status": "error", "index": index, "lead_id": lead_id, "errors": errors}
