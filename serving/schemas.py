"""Request and response models of the API, with the examples the OpenAPI page shows.

Leads arrive the way CRMs export them: sparse (a missing attribute is unknown, not an
error), with categories the model never saw (scored as unknown), with fields the model
does not read (ignored and listed back in ``ignored_fields``), ISO 8601 timestamps with
any offset (read as UTC; a timestamp without one is taken as UTC, as the data files are)
and string ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

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


EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)
"""Timestamps are nanoseconds since 1970 in 64 bits, as in pandas: this range."""


def as_utc(moment: datetime) -> datetime:
    """An aware timestamp in UTC; a naive one is taken as UTC (as the data files are).

    Applied when a lead is read rather than as a validator on every event, which would
    cost a Python call per event of a 1000-lead batch.
    """
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class EventIn(BaseModel):
    """One recent activity of the lead (only those before ``as_of`` count)."""

    model_config = ConfigDict(extra="ignore")

    timestamp: datetime = Field(description="ISO 8601, with an offset (UTC if none)")
    event_type: str = Field(min_length=1, max_length=200,
                            description="the CRM's activity name (open set)")
    detail: str | None = Field(None, max_length=500,
                               description="e.g. the page of a page view")



class LeadIn(BaseModel):
    """A lead to score: its attributes and, for event-based models, its recent events."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [LEAD_EXAMPLE]})

    lead_id: str = Field(min_length=1, max_length=256, description="the CRM's id")
    created_at: datetime | None = Field(None, description="when the lead was created "
                                        "(needed by event-based models)")
    as_of: datetime | None = Field(None, description="moment to score at (default: now)")
    attributes: dict[str, JsonValue] = Field(
        default_factory=dict, description="field -> value; missing fields are unknown, "
        "unread ones are ignored and listed in ignored_fields")
    events: list[EventIn] = Field(default_factory=list, description="recent activities")

    def extra_fields(self) -> list[str]:
        """Top-level fields sent that are not part of the schema (they are ignored)."""
        return list(self.model_extra or ())


class InvalidLead:
    """A batch entry that is not a valid lead: scored as an error entry of its own."""

    def __init__(self, lead_id: str | None, errors: list[dict[str, str]]) -> None:
        self.lead_id = lead_id
        self.errors = errors


def field_errors(error: ValidationError, prefix: tuple[str | int, ...] = ()
                 ) -> list[dict[str, str]]:
    """Pydantic's errors as ``{field, reason}`` (no input echo, no internals)."""
    return [{"field": ".".join(str(part) for part in (*prefix, *item["loc"])) or "lead",
             "reason": item["msg"]} for item in error.errors(include_url=False)]


def _lead_or_error(value: Any, handler: ValidatorFunctionWrapHandler) -> LeadIn | InvalidLead:
    try:
        return handler(value)
    except ValidationError as exc:
        lead_id = value.get("lead_id") if isinstance(value, dict) else None
        return InvalidLead(lead_id if isinstance(lead_id, str) else None, field_errors(exc))


BatchLead = Annotated[LeadIn, WrapValidator(_lead_or_error)]


class BatchIn(BaseModel):
    """Several leads; each is validated and scored on its own."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"leads": [LEAD_EXAMPLE]}]})

    leads: list[BatchLead] = Field(min_length=1, description="leads to score; a bad one "
                                   "gets its own error entry and the others are scored")


class Reason(BaseModel):
    """Why the score is what it is: one feature's push up or down."""

    field: str
    value: JsonValue
    effect: float = Field(description="the feature's contribution to the log-odds")
    sentence: str


class FiredRule(BaseModel):
    """A rule that gave the lead points."""

    rule: str
    points: float


class RulesOut(BaseModel):
    """The hand-set points baseline, scored on the same lead."""

    points: float
    stage: str | None
    fired: list[FiredRule]


class ModelRef(BaseModel):
    """The model version that gave a score."""

    name: str
    version: str


class LeadScore(BaseModel):
    """One lead's model score next to the rules' points."""

    status: Literal["scored"] = "scored"
    lead_id: str
    as_of: datetime | None = Field(description="the moment scored at (event-based models)")
    probability: float = Field(ge=0, le=1, description="calibrated conversion probability")
    score: int = Field(ge=0, le=100, description="the probability in percent")
    suggested_stage: str
    fit_grade: str | None = Field(None, description="how well the lead fits (A best)")
    engagement: str | None = Field(None, description="how engaged the lead is")
    quadrant: str | None = Field(None, description="fit x engagement quadrant")
    reasons: list[Reason] | None = Field(None, description="top reasons (null when not "
                                         "asked for)")
    rules: RulesOut
    ignored_fields: list[str] = Field(description="fields sent that the model does not read")


class ScoreOut(LeadScore):
    """The answer to one lead."""

    model: ModelRef
    request_id: str


class FieldError(BaseModel):
    """What is wrong with one field of a lead."""

    field: str
    reason: str


class LeadError(BaseModel):
    """A batch entry that could not be scored, and why."""

    status: Literal["error"] = "error"
    index: int = Field(description="position of the lead in the request")
    lead_id: str | None
    errors: list[FieldError]


class BatchOut(BaseModel):
    """The answer to a batch: one entry per lead, in the order sent."""

    model: ModelRef
    request_id: str
    scored: int
    failed: int
    results: list[Annotated[LeadScore | LeadError, Field(discriminator="status")]]


class FeatureOut(BaseModel):
    """A model input column."""

    name: str
    kind: Literal["categorical", "numeric"]
    group: str = Field(description="fit (attributes) or engagement (behaviour)")


class ModelOut(BaseModel):
    """What is serving: identity, quality, inputs, stage thresholds and the rules."""

    name: str
    version: str
    alias: str | None
    uri: str
    dataset: str
    shape: Literal["events", "table"]
    model_kind: str | None
    calibration: str | None
    trained_at: str | None
    loaded_at: datetime
    fast_path: bool = Field(description="scored straight through the LightGBM booster")
    test_metrics: dict[str, float | None]
    features: list[FeatureOut]
    raw_fields: list[str] = Field(description="the lead fields the model and rules read")
    stage_thresholds: dict[str, float] = Field(description="minimum calibrated probability "
                                               "of each suggested stage")
    rules: dict[str, JsonValue] = Field(description="the points system in use")


class ReloadOut(BaseModel):
    """The outcome of a reload."""

    status: Literal["reloaded"] = "reloaded"
    changed: bool = Field(description="whether the version differs from the previous one")
    previous: ModelRef | None
    current: ModelRef


class StatusOut(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready", "loading", "failed"]
    model: ModelRef | None = None
    reason: str | None = None


class ErrorOut(BaseModel):
    """An error: what went wrong, for the caller (never internals)."""

    detail: str
    request_id: str | None = None


class ValidationIssue(BaseModel):
    """One problem with the request."""

    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationErrorOut(BaseModel):
    """The request does not match the schema, or a lead cannot be read."""

    detail: list[ValidationIssue]
