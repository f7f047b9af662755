"""Response models of the API (request bodies are in :mod:`serving.requests`).

Responses are written as plain dicts with orjson; these models are their documented
shape in the OpenAPI page, and the schemathesis test holds every answer to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, JsonValue


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
