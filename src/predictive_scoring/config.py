"""Pydantic models for every YAML file under ``configs/`` and the one loader for them.

Defaults live in one place: a field either has its default here (optional settings)
or is required and set in the YAML files. Loading has no side effects besides reading
the file; a bad file raises :class:`ConfigError` naming the file, the key path and
the reason.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from predictive_scoring.models.kinds import catalog as kinds
from predictive_scoring.stages import Stage

DATA_DIR_ENV = "PREDICTIVE_SCORING_DATA_DIR"
"""The one setting that says where the public datasets live (see base.yaml)."""


class ConfigError(ValueError):
    """A configuration file that cannot be used, with file, key path and reason."""


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A model bundle pickled before an optional field existed (a rules table before
        # starting_points) unpickles with the field at its default, not without it.
        values = state.get("__dict__", {})
        for name, field in type(self).model_fields.items():
            if name not in values and not field.is_required():
                values[name] = field.get_default(call_default_factory=True)
        super().__setstate__(state)


# --------------------------------------------------------------------------- base.yaml
class Capacity(StrictModel):
    """How many leads sales can take: a number per week, or a share of all leads.

    Written ``250`` (leads per week) or ``10%`` (of the leads) in YAML and on the command
    line.
    """

    per_week: float | None = Field(None, gt=0)
    share: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return cls.parsed(str(value))
        return value

    @model_validator(mode="after")
    def _one_of_them(self) -> Capacity:
        if (self.per_week is None) == (self.share is None):
            raise ValueError("give the capacity as leads per week (e.g. 250) or as a share "
                             "of the leads (e.g. 10%)")
        return self

    @staticmethod
    def parsed(text: str) -> dict[str, float]:
        """``"250"`` -> ``{"per_week": 250}``, ``"10%"`` -> ``{"share": 0.1}``.

        Raises:
            ValueError: Not a positive number of leads per week or a percentage in
                (0, 100].
        """
        cleaned = text.strip().replace(",", "").replace("_", "")
        try:
            if cleaned.endswith("%"):
                share = float(cleaned[:-1]) / 100
                if not 0 < share <= 1:
                    raise ValueError
                return {"share": share}
            per_week = float(cleaned)
            if not 0 < per_week < float("inf"):
                raise ValueError
        except ValueError:
            raise ValueError(f"capacity {text!r} is neither a number of leads per week "
                             "(e.g. 250) nor a share of the leads (e.g. 10%)") from None
        return {"per_week": per_week}

    def __str__(self) -> str:
        if self.share is not None:
            return f"{100 * self.share:g}% of the leads"
        return f"{self.per_week:g} leads per week"


class TrainingConfig(StrictModel):
    """How models are trained, checked and promoted (the same for every dataset)."""

    seed: int
    valid_fraction: float = Field(gt=0, lt=0.5)
    test_fraction: float = Field(gt=0, lt=0.5)
    min_class_examples: int = Field(ge=1, description="fewer positives or negatives in "
                                    "training stops the run")
    leakage_auc: float = Field(gt=0.5, le=1.0, description="a column alone above this test "
                               "AUC is flagged as leakage")
    ece_bins: int = Field(ge=2)
    handoff_stage: Stage = Field(description="the rules' stage from which leads go to sales")
    sales_capacity: Capacity = Field(description="leads sales can take (the accuracy page's "
                                     "threshold): per week (250) or a share (10%)")
    promotion_metric: Literal["roc_auc", "pr_auc"] = Field(
        description="a new version becomes champion when it beats the champion on this "
        "metric on the same leads (and the points there); both rank leads")
    promotion_higher_is_better: bool


class MonitoringConfig(StrictModel):
    """When ``predictive-scoring monitor`` raises an alert (``monitoring.json``'s
    ``alerts``)."""

    psi_watch: float = Field(0.1, gt=0, description="a population stability index above "
                             "this is worth watching (noted, no alert)")
    psi_alert: float = Field(0.25, gt=0, description="an input's or the score's index "
                             "above this raises an alert")
    unknown_category_share: float = Field(0.05, ge=0, le=1, description="an input with a "
                                          "larger share of categories unseen in training "
                                          "raises an alert")
    max_model_age_days: float = Field(180, gt=0, description="a model trained longer ago "
                                      "raises an alert")
    max_data_age_days: float = Field(365, gt=0, description="a model whose training data "
                                     "ended longer ago raises an alert")
    min_matured: int = Field(200, ge=1, description="fewer matured scores in a model "
                             "version: its accuracy is shown but not judged")
    auc_margin: float = Field(0.0, ge=0, le=1, description="an alert when the model's "
                              "realised ROC-AUC is below the points' by more than this")

    @model_validator(mode="after")
    def _watch_below_alert(self) -> MonitoringConfig:
        if self.psi_watch > self.psi_alert:
            raise ValueError(f"psi_watch ({self.psi_watch}) must not exceed psi_alert "
                             f"({self.psi_alert})")
        return self


class BaseConfig(StrictModel):
    """Project-wide settings: tracking store, registry name and paths."""

    tracking_uri: str
    artifact_location: str
    registry_name: str
    data_dir: str = Field(description=f"public datasets; the {DATA_DIR_ENV} env var wins")
    output_dir: str
    training: TrainingConfig
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)

    def model_name(self, dataset: str) -> str:
        """The registered model of a dataset: each dataset has its own champion."""
        return f"{self.registry_name}-{dataset}"

    def resolved_data_dir(self) -> Path:
        """The dataset folder: the environment variable if set, else ``data_dir``."""
        return Path(os.environ.get(DATA_DIR_ENV) or self.data_dir)


# ----------------------------------------------------------------------- rules/*.yaml
NumberOrText = float | int | str | bool


class EventRule(StrictModel):
    """Points for each matching event before ``as_of``."""

    name: str
    event_type: str
    detail: str | list[str] | None = None
    points: float
    cap: float | None = Field(None, gt=0, description="most points (in absolute value) this "
                              "rule gives")
    half_life_days: float | None = Field(None, gt=0, description="an event's points halve "
                                         "every this many days since it happened")
    description: str = Field("", description="what the rule counts, in one line")


Operator = Literal["eq", "ne", "in", "gt", "gte", "lt", "lte", "between", "contains", "is_null"]


class AttributeRule(StrictModel):
    """Points for a lead attribute or table column that passes a comparison."""

    name: str
    field: str
    op: Operator
    value: NumberOrText | list[NumberOrText] | None = None
    points: float
    description: str = Field("", description="what the rule counts, in one line")

    @model_validator(mode="after")
    def _value_fits_operator(self) -> AttributeRule:
        if self.op == "is_null" and self.value is not None:
            raise ValueError("is_null takes no value")
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError("in needs a list value")
        if self.op == "between" and not (isinstance(self.value, list) and len(self.value) == 2):
            raise ValueError("between needs a [low, high] value")
        if self.op == "between" and _reversed(*self.value):
            raise ValueError(f"between needs low <= high, got {self.value}")
        if self.op not in ("is_null", "in", "between") and (
            self.value is None or isinstance(self.value, list)
        ):
            raise ValueError(f"{self.op} needs a single value")
        return self


def _reversed(low: NumberOrText, high: NumberOrText) -> bool:
    try:
        return bool(low > high)  # type: ignore[operator]
    except TypeError:
        return False


STARTING_POINTS = "starting_points"
"""The name under which a lead's starting points appear in its rules' trail."""


class RulesConfig(StrictModel):
    """A points system: event rules, attribute rules and stage thresholds on the total."""

    name: str
    description: str = ""
    starting_points: float = Field(0, description="points every lead starts with (a learned "
                                   "table shifts its scale so its thresholds start at 0)")
    event_rules: list[EventRule] = []
    attribute_rules: list[AttributeRule] = []
    stage_thresholds: dict[Stage, float]

    @model_validator(mode="after")
    def _thresholds_increase(self) -> RulesConfig:
        ordered = sorted(self.stage_thresholds.items(), key=lambda item: item[0].rank)
        bars = [bar for _, bar in ordered]
        if bars != sorted(bars) or len(set(bars)) != len(bars):
            raise ValueError("stage_thresholds must strictly increase along the funnel")
        names = [r.name for r in [*self.event_rules, *self.attribute_rules]]
        if self.starting_points:
            names.append(STARTING_POINTS)
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"rule names must be unique; repeated: {duplicated}")
        return self


# -------------------------------------------------------------------- datasets/*.yaml
class ReadOptions(StrictModel):
    """How to read the dataset's text files."""

    sep: str = Field(",", min_length=1, max_length=1, description="one character")
    timestamp_format: str | None = Field(None, description="strftime format; none: ISO 8601")
    timezone: str = Field("UTC", description="zone of timestamps written without an offset")

    @field_validator("timestamp_format")
    @classmethod
    def _has_directives(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError(f"{value!r} has no strftime directive; write the format with "
                             "them, e.g. '%Y-%m-%d %H:%M'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            near = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else " (an IANA name such as " \
                "'Europe/Berlin' or 'America/New_York')"
            raise ValueError(f"unknown time zone {value!r}{hint}") from None
        return value


class ColumnNames(StrictModel):
    """Contract column -> the column's name in the dataset's files."""

    lead_id: str = "lead_id"
    created_at: str = "created_at"
    timestamp: str = "timestamp"
    event_type: str = "event_type"
    detail: str | None = "detail"
    stage: str = "stage"


class EventFiles(StrictModel):
    """The three tables of the events shape (plus the simulator's truth, if any)."""

    leads: str
    events: str
    stage_changes: str
    truth: str | None = None


class TableSpec(StrictModel):
    """The table shape: one row per lead, with its outcome."""

    file: str
    id_column: str | None = Field(None, description="none: the row number is the id")
    target: str
    positive_values: list[str] = ["1", "yes", "true"]
    negative_values: list[str] = ["0", "no", "false"]
    time_column: str | None = None
    drop_columns: list[str] = Field([], description="filled in after the outcome (leakage)")


class NumericRange(StrictModel):
    """The values a numeric attribute may take: inclusive bounds, either one optional.

    A missing value is always allowed (it is unknown, not out of range). :meth:`outside`
    is the one check every path applies (the API today; files may call it too): it takes
    a number or an array of them.
    """

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> NumericRange:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def outside(self, values: Any) -> Any:
        """Whether each value is below ``min`` or above ``max`` (NaN: False).

        Args:
            values: A number, or a numpy array or pandas Series of numbers.

        Returns:
            A bool, or a boolean array of the same shape.
        """
        low = values < self.min if self.min is not None else False
        high = values > self.max if self.max is not None else False
        return low | high

    def describe(self) -> str:
        """The range as a reason names it: ``must be >= 0``, ``must be between 1 and 5``."""
        if self.max is None:
            return f"must be >= {self.min:g}"
        if self.min is None:
            return f"must be <= {self.max:g}"
        return f"must be between {self.min:g} and {self.max:g}"


RANGES_KEY = "numeric_ranges"
"""Where a trained scorer's metadata keeps its dataset's ranges (as plain values)."""


def ranges_from_metadata(metadata: Mapping[str, Any]) -> dict[str, NumericRange]:
    """The ranges a trained scorer keeps in its metadata (none for older bundles)."""
    return {name: NumericRange.model_validate(bounds)
            for name, bounds in (metadata.get(RANGES_KEY) or {}).items()}


class Attributes(StrictModel):
    """Lead attribute (fit) columns used as features."""

    categorical: list[str] = []
    numeric: list[str] = []
    ranges: dict[str, NumericRange] = Field({}, description="numeric attribute -> the "
                                            "values it may take, e.g. {employees: {min: 0}}")

    @model_validator(mode="after")
    def _ranges_of_numbers(self) -> Attributes:
        unknown = sorted(set(self.ranges) - set(self.numeric))
        if unknown:
            raise ValueError(f"ranges names {unknown}, which are not numeric attributes "
                             f"(numeric: {self.numeric})")
        return self


class FeatureGroups(StrictModel):
    """Which model inputs say who the lead is (fit) and which what it did (engagement).

    Attributes are fit and behaviour features (events shape) engagement, except the
    attribute columns listed under ``engagement``: a CRM export's activity summaries
    (page counts, past contacts) describe behaviour even though they arrive as columns.
    """

    engagement: list[str] = Field([], description="attribute columns that record what the "
                                  "lead did; the other attributes are fit")


class SnapshotConfig(StrictModel):
    """When training examples are taken and what their label means.

    ``days_after_creation`` lists the lead ages (days) of each lead's snapshots: spread
    them over the ages the model will score (e.g. ``[1, 7, 30, 90, 180, 365]``). A
    snapshot whose horizon runs past the end of the data is left out, so the oldest age
    trained on is at most the data's end - ``horizon_days`` - the first lead's creation.
    """

    days_after_creation: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="lead ages (days after creation) of each lead's snapshots")
    every_days: int | None = Field(None, gt=0)
    horizon_days: int = Field(gt=0)
    target_stage: Stage = Stage.CUSTOMER
    decision_after: Stage | None = Field(
        None, description="a lead has decided when it reaches the target stage, or lost "
        "after reaching this stage (e.g. opportunity): LightGBM first learns which leads "
        "decide within the horizon, then which of them reach the target; null: the target "
        "alone")

    @model_validator(mode="after")
    def _one_strategy(self) -> SnapshotConfig:
        if (self.days_after_creation is None) == (self.every_days is None):
            raise ValueError("set exactly one of days_after_creation or every_days")
        return self

    @model_validator(mode="after")
    def _decision_before_target(self) -> SnapshotConfig:
        stage = self.decision_after
        if stage is not None and (stage == Stage.LOST or stage.rank >= self.target_stage.rank):
            raise ValueError(f"decision_after must be a funnel stage before the target stage "
                             f"'{self.target_stage.value}' (got '{stage.value}')")
        return self


class FeatureConfig(StrictModel):
    """Behaviour aggregation settings."""

    windows_days: list[Annotated[int, Field(gt=0)]]
    min_key_count: int = Field(ge=1, description="event types / (type, detail) pairs seen "
                               "fewer times in training share one 'other' column")
    detail_event_types: list[str] | None = Field(
        None, description="event types counted per detail value; omitted (null): every "
        "type with details; []: no type")


MAX_ACCOUNT_CONTACTS = 200
"""The most contacts one account may have when scored through the API (a documented 422)."""


class AccountAttributes(StrictModel):
    """The company's own columns (from the accounts file, else the leads' own columns)."""

    categorical: list[str] = []
    numeric: list[str] = []


class AccountsSpec(StrictModel):
    """Accounts: the company each lead belongs to, and optionally a file of companies.

    A lead without an account id scores as a lead alone. Account scores are learnt from
    the contacts' scores and their engagement (see ``predictive_scoring.accounts``).
    """

    id_column: str = Field(description="the leads' column naming their company (both shapes)")
    role_column: str | None = Field(None, description="the leads' buying-group role column "
                                    "(decision_maker, champion, user, gatekeeper, ...)")
    file: str | None = Field(None, description="optional accounts file, one row per company, "
                             "with the id column and the attributes below")
    truth: str | None = Field(None, description="the simulator's account-level truth")
    attributes: AccountAttributes = AccountAttributes()
    passive_event_types: list[str] = Field([], description="event types that are not the "
                                           "contact's doing (the company's own sends): they "
                                           "do not count as engagement")
    max_contacts: int = Field(MAX_ACCOUNT_CONTACTS, ge=1, le=10_000,
                              description="most contacts an account may send to the API")


class DatasetConfig(StrictModel):
    """One dataset: its shape, files, column names, stage names and snapshot settings."""

    name: str
    shape: Literal["events", "table"]
    root: str = Field(description="folder of the files; '{data_dir}' expands to the data dir")
    read: ReadOptions = ReadOptions()
    files: EventFiles | None = None
    table: TableSpec | None = None
    columns: ColumnNames = ColumnNames()
    attributes: Attributes = Attributes()
    feature_groups: FeatureGroups = FeatureGroups()
    stage_names: dict[str, Stage] = {}
    snapshots: SnapshotConfig | None = None
    features: FeatureConfig | None = None
    accounts: AccountsSpec | None = None
    rules: str

    @model_validator(mode="after")
    def _shape_has_its_sections(self) -> DatasetConfig:
        needs = {"events": ("files", "snapshots", "features", "stage_names"), "table": ("table",)}
        missing = [key for key in needs[self.shape] if not getattr(self, key)]
        if missing:
            raise ValueError(f"shape '{self.shape}' needs {missing}")
        attributes = {*self.attributes.categorical, *self.attributes.numeric}
        unknown = [c for c in self.feature_groups.engagement if c not in attributes]
        if unknown:
            raise ValueError(f"feature_groups.engagement names {unknown}, which are not "
                             f"attribute columns (attributes: {sorted(attributes)})")
        return self

    def root_dir(self, data_dir: Path) -> Path:
        """The dataset folder with ``{data_dir}`` expanded."""
        return Path(self.root.replace("{data_dir}", str(data_dir)))

    def pointed_at(self, root: str | Path, files: Mapping[str, str]) -> DatasetConfig:
        """The same dataset read from ``root``, with the named files (events shape) renamed.

        ``accounts`` and ``account_truth`` rename the accounts section's files, if any."""
        names = {"accounts": "file", "account_truth": "truth"}
        contact = {k: v for k, v in files.items() if k not in names}
        update: dict[str, Any] = {"root": str(root),
                                  "files": self.files.model_copy(update=contact)}
        if self.accounts is not None:
            update["accounts"] = self.accounts.model_copy(update={
                names[k]: v for k, v in files.items() if k in names})
        return self.model_copy(update=update)


# ---------------------------------------------------------------------- models/*.yaml
class SearchDimension(StrictModel):
    """One hyper-parameter's search range."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None


class ModelConfig(StrictModel):
    """An estimator's kind, its hyper-parameters and its tuning search space."""

    kind: str = Field(description="a registered model kind (predictive_scoring.models.kinds)")
    params: dict[str, Any]
    search_space: dict[str, SearchDimension] = {}

    @field_validator("kind")
    @classmethod
    def _registered(cls, kind: str) -> str:
        if kind not in kinds.names():
            raise ValueError(f"'{kind}' is not a model kind; the registered kinds are "
                             f"{', '.join(kinds.names())}")
        return kind


ModelT = TypeVar("ModelT", bound=BaseModel)


def load_config(path: str | Path, model: type[ModelT]) -> ModelT:
    """Read a YAML file into ``model``.

    Args:
        path: The YAML file.
        model: The pydantic model the file must satisfy.

    Returns:
        The validated, frozen config.

    Raises:
        ConfigError: Unreadable file, bad YAML, or a value that fails validation; the
            message names the file, each bad key path and the reason.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc, model)) from None


def _describe(path: Path, exc: ValidationError, model: type[BaseModel]) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s)"]
    for error in exc.errors():
        key_path = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = (_unknown_key(error["loc"], model) if error["type"] == "extra_forbidden"
                   else error["msg"].removeprefix("Value error, "))
        lines.append(f"  {key_path}: {message}")
    return "\n".join(lines)


def _unknown_key(loc: tuple, model: type[BaseModel]) -> str:
    """An unknown key, the nearest valid key at the same place, and the valid ones."""
    valid = _keys_at(model, loc[:-1])
    near = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    return f"unknown key{hint} (valid keys here: {', '.join(valid)})"


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys a config model accepts at ``loc`` (list positions and dict keys skipped)."""
    kind: object = model
    for part in loc:
        kind = _model_of(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            kind = field.annotation if field is not None else None
        else:  # a list position or a dict key: the items' type
            args = typing.get_args(kind)
            kind = args[-1] if args else None
    kind = _model_of(kind)
    return list(kind.model_fields) if isinstance(kind, type) and issubclass(kind, BaseModel) \
        else []


def _model_of(kind: object) -> object:
    """The config model inside ``X | None`` or ``Annotated[X, ...]``, else ``kind``."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        members = [k for k in typing.get_args(kind) if k is not type(None)]
        models = [k for k in members if isinstance(k, type) and issubclass(k, BaseModel)]
        return models[0] if models else (members[0] if len(members) == 1 else kind)
    if typing.get_origin(kind) is Annotated:
        return typing.get_args(kind)[0]
    return kind
