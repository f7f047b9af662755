"""Request bodies: leads as CRMs send them, decoded straight from the JSON bytes.

The hot path reads bodies with msgspec (C: a 1000-lead batch decodes in about 4 ms,
against about 30 ms through pydantic), and these Structs are also what the OpenAPI page
documents (:func:`openapi_components`), so the docs and the parser cannot drift apart.

Leads arrive the way CRMs export them: sparse (a missing attribute is unknown, not an
error), with categories the model never saw (scored as unknown), with top-level fields the
API does not read (ignored and listed back in ``ignored_fields``), RFC 3339 timestamps with
any offset (a timestamp without one is taken as UTC, as the data files are) and string ids.
A lead that cannot be read gives ``{field, reason}`` errors naming the field; in a batch,
each lead is decoded on its own, so one bad lead never stops the others.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from predictive_scoring.errors import LeadInputError
from serving import nesting

LEAD_EXAMPLE: dict[str, Any] = {
    "lead_id": "L0000001",
    "created_at": "2025-01-06T09:14:00Z",
    "as_of": "2025-02-05T09:00:00+01:00",
    "attributes": {"industry": "software", "company_size": "51-200", "country": "us",
                   "seniority": "director", "lead_source": "paid_search", "employees": 120,
                   "hubspot_owner": "ana"},
    "events": [
        {"timestamp": "2025-01-07T10:02:11Z", "event_type": "page_view", "detail": "pricing"},
        {"timestamp": "2025-01-20T16:40:00-05:00", "event_type": "demo_request"},
    ],
}
DATE_TIME = {"format": "date-time"}


def _moment(description: str) -> Any:
    return Annotated[datetime, Meta(description=description, extra_json_schema=DATE_TIME)]


class EventIn(Struct, gc=False):
    """One recent activity of the lead (only those before ``as_of`` count)."""

    timestamp: _moment("RFC 3339 (ISO 8601), with an offset (UTC if none)")
    event_type: Annotated[str, Meta(min_length=1, max_length=200,
                                    description="the CRM's activity name (open set)")]
    detail: Annotated[str, Meta(max_length=500,
                                description="e.g. the page of a page view")] | None = None


class LeadIn(Struct, forbid_unknown_fields=True, gc=False):
    """A lead to score: its attributes and, for event-based models, its recent events.

    Other top-level fields are accepted, ignored and listed back in ``ignored_fields``.
    """

    lead_id: Annotated[str, Meta(min_length=1, max_length=256, description="the CRM's id")]
    created_at: _moment("when the lead was created (needed by event-based models)") | None = (
        None)
    as_of: _moment("moment to score at (default: now)") | None = None
    attributes: Annotated[dict[str, Any], Meta(
        description="field -> value; missing fields are unknown, unread ones are ignored "
        "and listed in ignored_fields")] = {}
    events: Annotated[list[EventIn], Meta(description="recent activities")] = []


class BatchIn(Struct):
    """Several leads; each is validated and scored on its own."""

    leads: Annotated[list[LeadIn], Meta(min_length=1, description=(
        "leads to score; a bad one gets its own error entry and the others are scored"))]


class ScoreChangeIn(Struct, forbid_unknown_fields=True):
    """A lead with its events, and the two moments whose scores to compare (the lead's
    own ``as_of`` is not read)."""

    lead: LeadIn
    from_as_of: _moment("the first moment (not before the lead's created_at)")
    to_as_of: _moment("the second moment (not before the lead's created_at)")


class _RawChange(Struct, forbid_unknown_fields=True):
    lead: msgspec.Raw
    from_as_of: datetime
    to_as_of: datetime
class ContactIn(Struct, forbid_unknown_fields=True, gc=False):
    """A contact of the account: a lead (scored as of the account's moment) and its role."""

    lead_id: Annotated[str, Meta(min_length=1, max_length=256, description="the CRM's id")]
    created_at: _moment("when the lead was created (needed by event-based models)") | None = (
        None)
    role: Annotated[str, Meta(max_length=200, description=(
        "buying-group role, e.g. decision_maker, champion, user, gatekeeper"))] | None = None
    attributes: Annotated[dict[str, Any], Meta(
        description="field -> value; missing fields are unknown")] = {}
    events: Annotated[list[EventIn], Meta(description="recent activities")] = []


class AccountIn(Struct, forbid_unknown_fields=True):
    """An account (company) with its contacts, scored as of one moment."""

    account_id: Annotated[str, Meta(min_length=1, max_length=256,
                                    description="the CRM's company id")]
    contacts: Annotated[list[ContactIn], Meta(min_length=1, description=(
        "the account's contacts (at most the documented limit)"))]
    as_of: _moment("moment to score at (default: now)") | None = None
    attributes: Annotated[dict[str, Any], Meta(description=(
        "the company's own fields (industry, size, ...); missing or unreadable values "
        "are unknown"))] = {}


ACCOUNT_EXAMPLE: dict[str, Any] = {
    "account_id": "A0000042", "as_of": "2025-02-05T09:00:00Z",
    "attributes": {"industry": "software", "company_size": "51-200", "country": "us",
                   "employees": 120},
    "contacts": [{**{k: v for k, v in LEAD_EXAMPLE.items() if k != "as_of"},
                  "attributes": {k: v for k, v in LEAD_EXAMPLE["attributes"].items()
                                 if k != "hubspot_owner"},
                  "role": "decision_maker"},
                 {"lead_id": "L0000002", "created_at": "2025-01-10T11:00:00Z",
                  "role": "user", "attributes": {"seniority": "individual_contributor",
                                                 "lead_source": "organic_search"},
                  "events": [{"timestamp": "2025-02-01T08:30:00Z",
                              "event_type": "content_download", "detail": "whitepaper"}]}],
}


class _RawBatch(Struct):
    leads: Annotated[list[msgspec.Raw], Meta(min_length=1)]


class _LeadId(Struct):
    lead_id: Any = None


class _Attributes(Struct):
    attributes: dict[str, msgspec.Raw] = {}


@dataclass(frozen=True)
class ParsedLead:
    """A decoded lead and the top-level fields it sent that the API does not read."""

    lead: LeadIn
    extra_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class InvalidLead:
    """A batch entry that is not a valid lead: answered with an error entry of its own."""

    lead_id: str | None
    errors: list[dict[str, str]]


class RequestError(ValueError):
    """A body that cannot be read, with ``{field, reason}`` errors (field ``"body"`` when
    it is not JSON at all)."""

    def __init__(self, errors: list[dict[str, str]], kind: str = "lead_input") -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors
        self.kind = kind


_LEAD = msgspec.json.Decoder(LeadIn)
_ACCOUNT = msgspec.json.Decoder(AccountIn)
_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_BATCH = msgspec.json.Decoder(_RawBatch)
_LEAD_ID = msgspec.json.Decoder(_LeadId)
_CHANGE = msgspec.json.Decoder(_RawChange)
_ATTRIBUTES = msgspec.json.Decoder(_Attributes)
_KNOWN = frozenset(LeadIn.__struct_fields__)
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN_FIELD = "Object contains unknown field"
_OUT_OF_RANGE = ("is a number out of range (beyond about ±1.8e308, or an integer of more "
                 "than 4,300 digits)")


def decode_lead(body: bytes) -> ParsedLead:
    """One lead from its JSON bytes.

    Raises:
        RequestError: Not JSON, or a field is missing, of the wrong type or out of range,
            or nested deeper than the parser goes.
    """
    try:
        return ParsedLead(_LEAD.decode(body))
    except msgspec.ValidationError as exc:
        if not str(exc).startswith(_UNKNOWN_FIELD):
            raise _unreadable(exc, body) from None
    except msgspec.DecodeError as exc:
        raise _unreadable(exc, body) from None
    except RecursionError:
        raise _too_deep(body) from None
    return _with_extra_fields(body)


def _with_extra_fields(body: bytes) -> ParsedLead:
    """The slow path for a lead with top-level fields the API does not read: decode the
    fields it reads, and name the others."""
    try:
        fields = _FIELDS.decode(body)
    except RecursionError:
        raise _too_deep(body) from None
    extra = tuple(name for name in fields if name not in _KNOWN)
    known = b",".join(msgspec.json.encode(name) + b":" + bytes(value)
                      for name, value in fields.items() if name in _KNOWN)
    try:
        return ParsedLead(_LEAD.decode(b"{" + known + b"}"), extra)
    except msgspec.ValidationError as exc:
        raise _unreadable(exc, body) from None


def decode_batch(body: bytes, max_leads: int) -> list[ParsedLead | InvalidLead]:
    """The leads of a batch, each decoded on its own (a bad one becomes an InvalidLead).

    Raises:
        RequestError: The body is not JSON, has no ``leads`` list, or holds more than
            ``max_leads`` leads.
    """
    try:
        raw = [bytes(lead) for lead in _BATCH.decode(body).leads]
    except msgspec.DecodeError as exc:
        raise _unreadable(exc, body) from None
    except RecursionError:  # a lead nested too deep for msgspec to skip: split by hand
        raw = nesting.array_items(body, "leads")
        if raw is None:
            raise _too_deep(body) from None
    if len(raw) > max_leads:
        raise RequestError([{"field": "leads", "reason": (
            f"{len(raw):,} leads; at most {max_leads:,} per batch "
            "(PREDICTIVE_SCORING_MAX_BATCH_LEADS)")}], kind="too_long")
    return [_batch_lead(lead) for lead in raw]


@dataclass(frozen=True)
class ParsedChange:
    """A decoded score-change request."""

    lead: ParsedLead
    from_as_of: datetime
    to_as_of: datetime


def decode_change(body: bytes) -> ParsedChange:
    """A score-change request from its JSON bytes (the lead read as :func:`decode_lead`
    reads one, its extra fields listed back).

    Raises:
        RequestError: Not JSON, a field missing, of the wrong type or out of range (lead
            fields named ``lead.<field>``).
    """
    try:
        raw = _CHANGE.decode(body)
    except msgspec.DecodeError as exc:
        raise _unreadable(exc, body) from None
    except RecursionError:
        raise _too_deep(body) from None
    try:
        lead = decode_lead(bytes(raw.lead))
    except RequestError as exc:
        raise RequestError([{"field": f"lead.{e['field']}" if e["field"] not in (
            "lead", "body") else "lead", "reason": e["reason"]} for e in exc.errors],
            exc.kind) from None
    return ParsedChange(lead, raw.from_as_of, raw.to_as_of)
def decode_account(body: bytes, max_contacts: int) -> AccountIn:
    """An account and its contacts from its JSON bytes.

    Raises:
        RequestError: Not JSON, a field missing, unknown, of the wrong type or out of
            range, or more than ``max_contacts`` contacts (kind ``too_long``).
    """
    try:
        account = _ACCOUNT.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _unreadable(exc, body) from None
    except RecursionError:
        raise _too_deep(body) from None
    if len(account.contacts) > max_contacts:
        raise RequestError([{"field": "contacts", "reason": (
            f"{len(account.contacts):,} contacts; an account is scored with at most "
            f"{max_contacts:,} (the model's accounts.max_contacts): send its most "
            "engaged contacts, and score the others as leads")}], kind="too_long")
    return account


def _batch_lead(body: bytes) -> ParsedLead | InvalidLead:
    try:
        return decode_lead(body)
    except RequestError as exc:
        return InvalidLead(_lead_id(body), exc.errors)


def _lead_id(body: bytes) -> str | None:
    try:
        lead_id = _LEAD_ID.decode(body).lead_id
    except (msgspec.DecodeError, RecursionError):
        return None
    return lead_id if isinstance(lead_id, str) else None


def _unreadable(error: msgspec.DecodeError, body: bytes) -> RequestError:
    """A field that does not validate names the field; a body that is not JSON, ``body``."""
    if isinstance(error, msgspec.ValidationError):
        return RequestError([field_error(error, body)])
    return RequestError([{"field": "body", "reason": f"not valid JSON: {error}"}])


def _too_deep(body: bytes) -> RequestError:
    """The field holding the deepest nesting, for a body msgspec gave up on."""
    path, depth = nesting.deepest(body)
    named = path[:2] if path[:1] == ["attributes"] else path[:3] if path[:1] == [
        "events"] else path[:1]
    return RequestError([{"field": ".".join(map(str, named)) or "lead",
                          "reason": f"is nested {depth} levels deep, deeper than the "
                          "service reads"}])


def field_error(error: msgspec.ValidationError, body: bytes) -> dict[str, str]:
    """msgspec's message as ``{field, reason}``: ``$.events[2].timestamp`` becomes
    ``events.2.timestamp`` (``lead`` for the lead as a whole). msgspec names a value of
    ``attributes`` ``[...]``: the attribute is found in ``body``."""
    message = str(error)
    match = _AT.search(message)
    path = match["path"] if match else ""
    reason = message[:match.start()] if match else message
    if reason in ("Number out of range", "Integer value out of range"):
        reason = _OUT_OF_RANGE
    if path.startswith(".attributes[...]"):
        path = f".attributes.{_failing_attribute(body)}"
    field = re.sub(r"\[(\d+)\]", r".\1", path).strip(".") or "lead"
    return {"field": field, "reason": reason}


def _failing_attribute(body: bytes) -> str:
    """The name of the first attribute whose value msgspec cannot read."""
    for name, value in _ATTRIBUTES.decode(body).attributes.items():
        try:
            msgspec.json.decode(value)
        except msgspec.DecodeError:
            return name
    return "..."


@dataclass(frozen=True)
class ModelInputs:
    """What the model in service reads, for the request schema to say exactly what the
    service accepts.

    Attributes:
        events_shape: Leads are scored with their events (``created_at`` required).
        numeric: Numeric attribute -> the lowest and highest number it takes.
        categorical: Categorical attributes.
        category_numbers: The lowest and highest number sent as a category.
        number_text: The pattern numeric text must match.
    """

    events_shape: bool
    numeric: dict[str, tuple[float, float]]
    categorical: tuple[str, ...]
    category_numbers: tuple[int, int]
    number_text: str


YEARS = "^(?:167[89]|16[89][0-9]|1[7-9][0-9]{2}|2[01][0-9]{2}|22[0-5][0-9]|226[01])-"
"""A timestamp's year as written: FIRST_YEAR to LAST_YEAR (below)."""


def openapi_components(inputs: ModelInputs | None = None, max_events: int | None = None,
                       max_leads: int | None = None,
                       max_contacts: int | None = None) -> dict[str, Any]:
    """The request Structs' JSON schemas, keyed by name, for ``#/components/schemas``.

    With the model in service's ``inputs`` and the service's limits, the schema says
    exactly what is accepted: each attribute's types and range, ``created_at`` required
    by an event-based model, timestamps' years, the most events and leads.
    """
    _, components = msgspec.json.schema_components(
        (LeadIn, BatchIn, ScoreChangeIn, AccountIn),
        ref_template="#/components/schemas/{name}")
    lead, event, batch = components["LeadIn"], components["EventIn"], components["BatchIn"]
    change = components["ScoreChangeIn"]
    for name in ("from_as_of", "to_as_of"):
        change["properties"][name]["pattern"] = YEARS
    change["examples"] = [{"lead": LEAD_EXAMPLE, "from_as_of": "2025-01-20T09:00:00Z",
                           "to_as_of": "2025-02-05T09:00:00Z"}]
    lead.pop("additionalProperties", None)  # extra fields are accepted and listed back
    lead["examples"] = [LEAD_EXAMPLE]
    batch["examples"] = [{"leads": [LEAD_EXAMPLE]}]
    for moment in (lead["properties"]["created_at"]["anyOf"][0],
                   lead["properties"]["as_of"]["anyOf"][0], event["properties"]["timestamp"]):
        moment["pattern"] = YEARS
    leads = batch["properties"]["leads"]
    leads["items"] = {"anyOf": [leads["items"], {
        "description": "anything else is answered with an error entry of its own"}]}
    if max_leads is not None:
        leads["maxItems"] = max_leads
    if max_events is not None:
        lead["properties"]["events"]["maxItems"] = max_events
    account, contact = components["AccountIn"], components["ContactIn"]
    account["examples"] = [ACCOUNT_EXAMPLE]
    for moment in (account["properties"]["as_of"]["anyOf"][0],
                   contact["properties"]["created_at"]["anyOf"][0]):
        moment["pattern"] = YEARS
    if max_contacts is not None:
        account["properties"]["contacts"]["maxItems"] = max_contacts
    if max_events is not None:
        contact["properties"]["events"]["maxItems"] = max_events
    if inputs is not None:
        _document_model(lead, inputs)
        _document_model(contact, inputs)
    return components


def _document_model(lead: dict[str, Any], inputs: ModelInputs) -> None:
    properties = lead["properties"]
    if inputs.events_shape:
        lead["required"] = ["lead_id", "created_at"]
        created = properties["created_at"]["anyOf"][0]
        properties["created_at"] = created | {"description": "when the lead was created; "
                                              "not after as_of"}
    attributes = properties["attributes"]
    attributes["properties"] = {name: {"anyOf": [
        {"type": "number", "minimum": low, "maximum": high},
        {"type": "string", "pattern": inputs.number_text,
         "description": "a number as text (blank: missing), in the same range"},
        {"type": "null"}]} for name, (low, high) in inputs.numeric.items()}
    attributes["properties"] |= {name: {"anyOf": [
        {"type": "string"}, {"type": "boolean"}, {"type": "null"},
        {"type": "number", "minimum": inputs.category_numbers[0],
         "maximum": inputs.category_numbers[1]}]} for name in inputs.categorical}


def request_body(name: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a route's JSON body as the named component."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}}


# ------------------------------------------------------------------ timestamps
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
FIRST_YEAR, LAST_YEAR = 1678, 2261
"""Timestamps are nanoseconds since 1970 in 64 bits, as in pandas (1677-09-21 to
2262-04-11): a timestamp whose year, as written, is in this range fits with any offset."""
OUT_OF_RANGE = f"is outside the supported range (years {FIRST_YEAR} to {LAST_YEAR})"
_INSIDE_NS = tuple((datetime(*day, tzinfo=UTC) - EPOCH) // MICROSECOND * 1_000
                   for day in ((FIRST_YEAR, 1, 2), (LAST_YEAR, 12, 31)))
"""Between these, no offset moves a timestamp's written year out of the range."""


def as_utc(moment: datetime) -> datetime:
    """An aware timestamp in UTC; a naive one is taken as UTC (as the data files are)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def ns_since_epoch(moment: datetime, field: str) -> int:
    """A timestamp as int nanoseconds since the epoch, UTC (exact, no float rounding).

    A naive timestamp is taken as UTC. Subtracting the aware epoch applies any offset.

    Raises:
        LeadInputError: The year, as written, is outside the supported range.
    """
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise LeadInputError(field, OUT_OF_RANGE)
    return _ns(moment)


def events_ns(moments: Sequence[datetime]) -> list[int]:
    """Event timestamps as :func:`ns_since_epoch` gives them, checked in one pass (a
    1000-lead batch has ~10,000: no per-event call or field name unless one is bad).

    Raises:
        LeadInputError: ``events.<i>.timestamp`` is outside the supported range.
    """
    ns = [((m if m.tzinfo is not None else m.replace(tzinfo=UTC)) - EPOCH) // MICROSECOND
          * 1_000 for m in moments]
    if ns and not (min(ns) >= _INSIDE_NS[0] and max(ns) < _INSIDE_NS[1]):
        for i, moment in enumerate(moments):
            if not FIRST_YEAR <= moment.year <= LAST_YEAR:
                raise LeadInputError(f"events.{i}.timestamp", OUT_OF_RANGE)
    return ns


def _ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MICROSECOND * 1_000
