"""``POST /v1/score`` and ``POST /v1/score/batch``: the model's score next to the rules'.

Both go through the :class:`~serving.scoring.LoadedModel` in service (the package's
pandas-free path: the same features, calibration and rules as batch scoring). Responses
are built as plain dicts and written with orjson; their shape is the documented response
model. A response is encoded before its scores go to the prediction log, so the log holds
only what was answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from predictive_scoring.errors import LeadInputError
from serving.requests import (
    InvalidLead,
    ParsedLead,
    RequestError,
    decode_batch,
    decode_lead,
    request_body,
)
from serving.schemas import BatchOut, ErrorOut, HTTPValidationErrorOut, ScoreOut
from serving.security import SCORING, RequestRoute

if TYPE_CHECKING:
    from predictive_scoring.online import RawLead
    from serving.scoring import LoadedModel

router = APIRouter(prefix="/v1", tags=["scores"], route_class=RequestRoute,
                   dependencies=[SCORING])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or unknown API key"},
    413: {"model": ErrorOut, "description": "Body over the size limit"},
    422: {"model": HTTPValidationErrorOut, "description": "Invalid request: not JSON, a "
          "field missing, of the wrong type or out of range"},
    503: {"model": ErrorOut, "description": "No model loaded yet, or the prediction log "
          "cannot keep the scores"},
}
REASONS_PARAMETER = {"name": "reasons", "in": "query", "required": False,
                     "description": "add the top reasons (a little slower; fit grade, "
                     "engagement and quadrant come either way)",
                     "schema": {"type": "boolean", "default": True}}
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
    """``openapi_extra`` of a scoring route: its body and the ``reasons`` flag."""
    return request_body(body) | {"parameters": [REASONS_PARAMETER]}


def _body_loc(field: str) -> list[str | int]:
    parts = [int(part) if part.isdigit() else part for part in field.split(".")]
    return ["body"] if field in ("body", "lead") else ["body", *parts]


def log_predictions(request: Request, model: LoadedModel, results: Sequence[dict[str, Any]],
                    now: datetime, bins: Sequence[str | None]) -> None:
    """Count the scores, add them to the drift window and keep them in the prediction log
    (when it is on) with what monitoring needs (fit grade, engagement, quadrant, the
    input's bins).

    Raises:
        HTTPException: 503 when the prediction log cannot keep them (the scores are
            then not answered: nothing answered is ever missing from the log).
    """
    metrics = request.app.state.metrics
    histogram = metrics.child(metrics.scores, model.ref.version)
    for result in results:
        histogram.observe(result["score"])
    metrics.child(metrics.leads, "scored").inc(len(results))
    if model.drift is not None and model.drift.observe(
            [result["probability"] for result in results], bins):
        metrics.drift(model.drift.values())
    prediction_log = request.app.state.prediction_log
    if prediction_log is None:
        return
    try:
        prediction_log.add([{
            "scored_at": now, "request_id": request.state.request_id,
            "lead_id": result["lead_id"], "as_of": result["as_of"],
            "probability": result["probability"], "score": result["score"],
            "suggested_stage": result["suggested_stage"],
            "rule_points": result["rules"]["points"], "rule_stage": result["rules"]["stage"],
            "model_name": model.ref.name, "model_version": model.ref.version,
            "fit_grade": result["fit_grade"], "engagement": result["engagement"],
            "quadrant": result["quadrant"], "input_bins": lead_bins,
        } for result, lead_bins in zip(results, bins, strict=True)])
    except OSError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the prediction log cannot "
                            f"keep the scores ({exc.strerror or type(exc).__name__}); "
                            "nothing was scored, try again") from None


def json_response(body: bytes) -> Response:
    """An orjson-encoded JSON body."""
    return Response(body, media_type="application/json")


def _refuse_lead(request: Request, error: LeadInputError) -> HTTPException:
    metrics = request.app.state.metrics
    metrics.child(metrics.leads, "refused").inc()
    return unprocessable(_body_loc(error.field), error.reason, "lead_input")


# One lead is scored on the event loop: its fraction of a millisecond costs less than the
# hop to a worker thread (and 16 connections' threads fighting over the GIL). A batch runs
# in the thread pool so that its tens of milliseconds never stall other requests. Both
# read the raw body (no FastAPI body or dependency solving on the hot path): the body and
# query are documented through ``openapi_extra``, the keys by the router's SCORING.
@router.post("/score", response_model=ScoreOut, responses=ERRORS,
             openapi_extra=_documented("LeadIn"))
async def score_lead(request: Request) -> Response:
    """Score one lead: probability, 0-100 score, suggested stage, reasons, rules' points."""
    reasons = reasons_flag(request)
    try:
        parsed = decode_lead(await request.body())
    except RequestError as exc:
        raise _refused(exc) from None
    model = serving_model(request)
    now = datetime.now(UTC)
    request.state.lead_ids = [parsed.lead.lead_id]
    settings = request.app.state.settings
    try:
        raw = model.raw_lead(parsed.lead, now, settings.max_events_per_lead)
    except LeadInputError as exc:
        raise _refuse_lead(request, exc) from None
    bins: list[str | None] = []
    result = model.answers([raw], [parsed], now, settings.reasons if reasons else None,
                           bins)[0]
    body = orjson.dumps(result | {"model": {"name": model.ref.name,
                                            "version": model.ref.version},
                                  "request_id": request.state.request_id})
    log_predictions(request, model, [result], now, bins)
    return json_response(body)


@router.post("/score/batch", response_model=BatchOut, responses=ERRORS,
             openapi_extra=_documented("BatchIn"))
async def score_batch(request: Request) -> Response:
    """Score several leads; a bad lead gets its own error entry, the others are scored."""
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
            raw = model.raw_lead(parsed.lead, now, settings.max_events_per_lead)
        except LeadInputError as exc:
            results[index] = _error(index, parsed.lead.lead_id,
                                    [{"field": exc.field, "reason": exc.reason}])
            continue
        good.append((index, parsed, raw))
    request.state.lead_ids = [parsed.lead.lead_id for _, parsed, _ in good]
    bins: list[str | None] = []
    scored = (model.answers([raw for _, _, raw in good], [parsed for _, parsed, _ in good],
                            now, settings.reasons if reasons else None, bins) if good else [])
    for (index, _, _), result in zip(good, scored, strict=True):
        results[index] = result
    failed = len(leads) - len(good)
    answer = orjson.dumps({"model": {"name": model.ref.name, "version": model.ref.version},
                           "request_id": request.state.request_id, "scored": len(good),
                           "failed": failed, "results": results})
    if scored:
        log_predictions(request, model, scored, now, bins)
    if failed:
        metrics = request.app.state.metrics
        metrics.child(metrics.leads, "refused").inc(failed)
    return json_response(answer)


def _error(index: int, lead_id: str | None, errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"status": "error", "index": index, "lead_id": lead_id, "errors": errors}
