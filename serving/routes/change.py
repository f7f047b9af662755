"""``POST /v1/score/change``: why one lead's score changed between two moments.

The lead is scored at both moments on the service's fast path (the same features,
calibration and contributions as ``/v1/score``); each field's change of contribution is
put on the score's scale so that the fields add up to the score change
(:mod:`predictive_scoring.monitoring.change`). Nothing goes to the prediction log: this
explains scores, it gives none to act on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from predictive_scoring.errors import LeadInputError
from serving.requests import RequestError, decode_change, request_body
from serving.routes.scores import (
    ERRORS,
    _body_loc,
    _refused,
    json_response,
    serving_model,
    unprocessable,
)
from serving.schemas import ScoreChangeOut
from serving.security import SCORING, RequestRoute

if TYPE_CHECKING:
    from serving.requests import ParsedChange
    from serving.scoring import LoadedModel

router = APIRouter(prefix="/v1", tags=["scores"], route_class=RequestRoute,
                   dependencies=[SCORING])


@router.post("/score/change", response_model=ScoreChangeOut, responses=ERRORS,
             openapi_extra=request_body("ScoreChangeIn"))
async def score_change(request: Request) -> Response:
    """Why a lead's score changed between two moments: each field's part, in the reasons'
    words, adding up to the change."""
    body = await request.body()
    try:
        parsed = decode_change(body)
    except RequestError as exc:
        raise _refused(exc) from None
    model = serving_model(request)
    request.state.lead_ids = [parsed.lead.lead.lead_id]
    return await run_in_threadpool(_answer, request, model, parsed)


def _answer(request: Request, model: LoadedModel, parsed: ParsedChange) -> Response:
    if not model.events_shape:
        raise unprocessable(["body"], "this model scores leads without time (a table "
                            "dataset): its score does not change between two moments",
                            "no_moments")
    if not model.explainable:
        raise unprocessable(["body"], "this model gives no contributions (trained before "
                            "explanations existed): retrain it to explain score changes",
                            "not_explainable")
    settings = request.app.state.settings
    lead = parsed.lead.lead
    now = datetime.now(UTC)
    raws = []
    for name, moment in (("from_as_of", parsed.from_as_of), ("to_as_of", parsed.to_as_of)):
        try:
            raws.append(model.raw_lead(msgspec.structs.replace(lead, as_of=moment), now,
                                       settings.max_events_per_lead))
        except LeadInputError as exc:
            field = name if exc.field == "as_of" else f"lead.{exc.field}"
            reason = exc.reason.replace("is after as_of", f"is after {name}")
            raise unprocessable(_body_loc(field), reason, "lead_input") from None
    answer: dict[str, Any] = model.score_change(raws, (parsed.from_as_of,
                                                       parsed.to_as_of)).as_dict()
    answer |= {"model": {"name": model.ref.name, "version": model.ref.version},
               "request_id": request.state.request_id}
    return json_response(orjson.dumps(answer))
