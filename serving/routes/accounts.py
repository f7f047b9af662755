"""``POST /v1/accounts/score``: an account (company) scored from its contacts.

Each contact is scored by the lead model on its fast path (as of the account's moment),
then the bundle's account model scores the buying group on its own numpy path
(:mod:`predictive_scoring.accounts.online`): the account's probability, suggested stage,
the points sum and maximum, the contacts that move the score most (with their own
reasons) and the missing roles. The contacts' scores go to the prediction log as any
answered score does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status

from predictive_scoring.errors import LeadInputError
from serving.requests import (
    AccountIn,
    LeadIn,
    ParsedLead,
    RequestError,
    as_utc,
    decode_account,
    ns_since_epoch,
)
from serving.routes.scores import (
    ERRORS,
    _documented,
    _refused,
    json_response,
    log_predictions,
    reasons_flag,
    serving_model,
    unprocessable,
)
from serving.schemas import AccountScoreOut, ErrorOut
from serving.security import SCORING, RequestRoute

if TYPE_CHECKING:
    from predictive_scoring.accounts.online import OnlineAccount
    from serving.scoring import LoadedModel

router = APIRouter(prefix="/v1", tags=["accounts"], route_class=RequestRoute,
                   dependencies=[SCORING])

TOP_CONTACTS = 3
ACCOUNT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorOut, "description": "The model in service has no account model "
          "(it was trained on a dataset without accounts)"},
}


@router.post("/accounts/score", response_model=AccountScoreOut, responses=ACCOUNT_ERRORS,
             openapi_extra=_documented("AccountIn"))
async def score_account(request: Request) -> Response:
    """Score an account from its contacts: probability, stage, who drives it, roles missing."""
    reasons = reasons_flag(request)
    body = await request.body()
    model = serving_model(request)
    if model.accounts is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the model in service has no account "
                            "model: train it on a dataset whose config has an accounts "
                            "section")
    try:
        account = decode_account(body, model.accounts.scorer.max_contacts)
    except RequestError as exc:
        raise _refused(exc) from None
    now = datetime.now(UTC)
    request.state.lead_ids = [contact.lead_id for contact in account.contacts]
    settings = request.app.state.settings
    leads = [ParsedLead(LeadIn(c.lead_id, c.created_at, account.as_of, c.attributes,
                               c.events)) for c in account.contacts]
    raws = []
    for index, parsed in enumerate(leads):
        try:
            raws.append(model.raw_lead(parsed.lead, now, settings.max_events_per_lead))
        except LeadInputError as exc:
            metrics = request.app.state.metrics
            metrics.child(metrics.leads, "refused").inc()
            raise unprocessable(["body", "contacts", index, *exc.field.split(".")],
                                exc.reason, "lead_input") from None
    bins: list[str | None] = []
    answers = model.answers(raws, leads, now, settings.reasons if reasons else None, bins)
    scored = _score(model, account, raws, answers, now)
    body = orjson.dumps(_answer(account, scored, answers, now) | {
        "model": {"name": model.ref.name, "version": model.ref.version},
        "request_id": request.state.request_id})
    log_predictions(request, model, answers, now, bins)
    return json_response(body)


def _score(model: LoadedModel, account: AccountIn, raws: list, answers: list[dict[str, Any]],
           now: datetime) -> OnlineAccount:
    from predictive_scoring.accounts.online import OnlineContact

    contacts = [OnlineContact(contact.lead_id, answer["probability"],
                              answer["rules"]["points"], contact.role, raw.event_times,
                              raw.event_types)
                for contact, raw, answer in zip(account.contacts, raws, answers,
                                                strict=True)]
    as_of = ns_since_epoch(account.as_of or now, "as_of")
    return model.accounts.score(contacts, as_of, account.attributes)


def _answer(account: AccountIn, scored: OnlineAccount, answers: list[dict[str, Any]],
            now: datetime) -> dict[str, Any]:
    from predictive_scoring.accounts.explain import missing_roles_text

    order = sorted(range(len(answers)), key=lambda i: -scored.effects[i])[:TOP_CONTACTS]
    return {
        "status": "scored", "account_id": account.account_id,
        "as_of": as_utc(account.as_of or now).isoformat().replace("+00:00", "Z"),
        "n_contacts": len(answers), "probability": scored.probability,
        "score": round(scored.probability * 100), "suggested_stage": scored.stage,
        "points": {"sum": scored.points_sum, "max": scored.points_max},
        "top_contacts": [{
            "lead_id": answers[i]["lead_id"], "role": account.contacts[i].role,
            "effect": float(scored.effects[i]), "probability": answers[i]["probability"],
            "score": answers[i]["score"], "suggested_stage": answers[i]["suggested_stage"],
            "reasons": answers[i]["reasons"]} for i in order],
        "missing_roles": scored.missing_roles,
        "missing_roles_text": missing_roles_text(scored.missing_roles),
    }
