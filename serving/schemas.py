"""Response models of the API (request bodies are in :mod:`serving.requests`).

Responses are written as plain dicts with orjson; these models are their documented
shape in the OpenAPI page, and the schemathesis test holds every answer to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


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
    age_beyond_training: bool = Field(False, description="the lead is older than any lead "
                                      "the model was trained on: its score extrapolates")
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


class AccountModelOut(BaseModel):
    """The account model the bundle holds (``POST /v1/accounts/score``)."""

    max_contacts: int = Field(description="most contacts an account may send")
    roles: list[str] = Field(description="roles the model reads")
    buying_roles: list[str] = Field(description="roles whose engagement goes with "
                                    "conversions (reported missing when no engaged "
                                    "contact holds them)")
    attributes: list[str] = Field(description="the company's own fields the model reads")
    stage_thresholds: dict[str, float]
    test_metrics: dict[str, float | None]


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
    trained_ages_days: list[float] | None = Field(None, description="youngest and oldest "
                                                  "lead age (days) trained on; older leads "
                                                  "are scored with age_beyond_training")
    loaded_at: datetime
    fast_path: bool = Field(description="scored straight through the LightGBM booster")
    test_metrics: dict[str, float | None]
    features: list[FeatureOut]
    raw_fields: list[str] = Field(description="the lead fields the model and rules read")
    stage_thresholds: dict[str, float] = Field(description="minimum calibrated probability "
                                               "of each suggested stage")
    rules: dict[str, JsonValue] = Field(description="the points system in use")
    accounts: AccountModelOut | None = Field(None, description="the account model (null: "
                                             "the model scores leads only)")


class ReloadOut(BaseModel):
    """The outcome of a reload."""

    status: Literal["reloaded"] = "reloaded"
    changed: bool = Field(description="whether the version differs from the previous one")
    previous: ModelRef | None
    current: ModelRef


class PredictionLogOut(BaseModel):
    """Whether scores reach the prediction log's database or wait in the local spool."""

    status: Literal["writing", "spooling"]
    pending_rows: int = Field(description="scores spooled and not yet in the database")
    reason: str | None = Field(description="why the log is spooling")


class StatusOut(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready", "loading", "failed"]
    model: ModelRef | None = None
    reason: str | None = None
    prediction_log: PredictionLogOut | None = Field(None, description="readiness only, "
                                                    "when the prediction log is on")


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


class MomentScore(BaseModel):
    """A lead's score at one moment."""

    as_of: datetime
    probability: float = Field(ge=0, le=1, description="calibrated conversion probability")
    score: int = Field(ge=0, le=100, description="the probability in percent, rounded")


class FieldChangeOut(BaseModel):
    """One field's part in a score change."""

    field: str
    value_from: JsonValue = Field(description="its value at the first moment")
    value_to: JsonValue = Field(description="its value at the second moment")
    effect: float = Field(description="score points of the change it accounts for")
    sentence: str


class ScoreChangeOut(BaseModel):
    """Why a lead's score changed between two moments: every field whose part is not
    zero, largest first; the effects add up to ``score_change``."""

    model_config = ConfigDict(populate_by_name=True)

    lead_id: str
    from_: MomentScore = Field(alias="from")
    to: MomentScore
    score_change: float = Field(description="100 x (probability to - probability from): "
                                "the change of the unrounded score")
    changes: list[FieldChangeOut]
class AccountPoints(BaseModel):
    """The account points baseline CRMs use, on the same contacts."""

    sum: float = Field(description="the contacts' points summed")
    max: float = Field(description="the best contact's points")


class AccountContact(BaseModel):
    """A contact that drives the account's score."""

    lead_id: str
    role: str | None
    effect: float = Field(description="the account's probability with this contact minus "
                          "without it")
    probability: float = Field(ge=0, le=1, description="the contact's own probability")
    score: int = Field(ge=0, le=100)
    suggested_stage: str
    reasons: list[Reason] | None = Field(None, description="the contact's own top reasons "
                                         "(null when not asked for)")


class AccountScoreOut(BaseModel):
    """An account's score from its contacts, next to the points sum and maximum."""

    status: Literal["scored"] = "scored"
    account_id: str
    as_of: datetime = Field(description="the moment scored at")
    n_contacts: int = Field(ge=1)
    probability: float = Field(ge=0, le=1, description="calibrated probability that a "
                               "contact reaches the target stage within the horizon")
    score: int = Field(ge=0, le=100, description="the probability in percent")
    suggested_stage: str
    points: AccountPoints
    top_contacts: list[AccountContact] = Field(description="the contacts that raise the "
                                               "score most, strongest first (at most 3)")
    missing_roles: list[str] = Field(description="roles whose engagement goes with "
                                     "conversions that no engaged contact holds")
    missing_roles_text: str = Field(description="e.g. 'no decision maker engaged yet'")
    model: ModelRef
    request_id: str
