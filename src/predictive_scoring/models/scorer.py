"""The scorer every bundle holds (:class:`LeadScorer`), the calibration that turns a model's
raw output into an honest probability, and the model's pipeline built and fitted by its
kind.

The pipeline's kind (LightGBM, logistic regression, ...: :mod:`.kinds`) decides its
preprocessing, its classifier and how it is fitted; a :class:`Calibrator` fitted on the
validation slice maps its raw probability to a calibrated one, whatever the kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from predictive_scoring.config import ModelConfig, RulesConfig
from predictive_scoring.features import (
    NS_PER_DAY,
    FeatureSpec,
    SnapshotEvents,
    featurise,
    snapshot_events,
    utc_ns,
)
from predictive_scoring.models import kinds

# FeatureColumns is imported here also for bundles pickled when it lived in this module.
from predictive_scoring.models.columns import (
    FeatureColumns,
    behaviour_block,
    model_frame,
    numbers_block,
)
from predictive_scoring.models.kinds.base import Decisions, ModelKind, Slice, Weights
from predictive_scoring.rules import score_points
from predictive_scoring.stages import Stage, stage_for_values

ISOTONIC_FLOOR = 1e-4
"""Isotonic steps can reach 0 or 1 on a small slice; no lead is ever certain."""
TRAINED_AGES_KEY = "trained_ages_days"
"""Where a scorer's metadata keeps the youngest and oldest lead age (days) it was trained
on (events shape; older bundles have none)."""


def build_pipeline(model: ModelConfig, columns: FeatureColumns) -> Pipeline:
    """The model config's kind of preprocessor and classifier as one pipeline (not yet
    fitted)."""
    return kinds.get(model.kind).build(model, columns)


def fit_pipeline(pipeline: Pipeline, model: ModelConfig, train: Slice,
                 valid: Slice, weights: Weights | None = None) -> Pipeline:
    """Fit the pipeline as its kind does (LightGBM stops early on the validation slice),
    with the capacity the training slice allows (:meth:`ModelKind.capacity`).

    Args:
        pipeline: From :func:`build_pipeline`.
        model: Its config.
        train: Training features and labels.
        valid: Validation features and labels.
        weights: Per-row weights of both slices, or None for equal weights.

    Returns:
        The same pipeline, fitted.
    """
    return kinds.get(model.kind).fit(pipeline, model, train, valid, weights)


def fit_scored(pipeline: Pipeline, model: ModelConfig, train: Slice, valid: Slice,
               weights: Weights | None = None, others: Sequence[pd.DataFrame] = (),
               decided: Decisions | None = None) -> tuple[Pipeline, *tuple[np.ndarray, ...]]:
    """:func:`fit_pipeline`, with the fitted pipeline's raw probability of the training and
    validation rows and of each frame in ``others`` (rows the run scores anyway), each
    predicted once at most: LightGBM returns its own scores of them, see
    :meth:`~predictive_scoring.models.kinds.base.ModelKind.fit_scored`. With ``decided``
    (the rows' decisions), a kind that can learn them learns them first.

    Returns:
        The fitted pipeline, then the raw probability of each training row, each
        validation row and each row of every frame in ``others``.
    """
    return kinds.get(model.kind).fit_scored(pipeline, model, train, valid, weights, others,
                                            decided)


# ------------------------------------------------------------------ calibration
@dataclass(frozen=True)
class Calibrator:
    """Maps the classifier's raw probability to a calibrated one.

    Attributes:
        method: ``isotonic`` or ``sigmoid`` (Platt scaling on the raw log-odds).
        fitted: The fitted ``IsotonicRegression`` or ``LogisticRegression``.
    """

    method: Literal["isotonic", "sigmoid"]
    fitted: Any

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw ones.

        The fitted estimator's own arithmetic without its input checks (about 0.1 ms a
        call, most of a single lead's scoring time): the same numbers as its
        ``predict`` / ``predict_proba``.
        """
        raw = np.asarray(raw, dtype=np.float64).reshape(-1)
        if self.method == "isotonic":
            fitted = self.fitted
            calibrated = fitted.f_(_between(raw, fitted.X_min_, fitted.X_max_))
            return _between(calibrated, ISOTONIC_FLOOR, 1 - ISOTONIC_FLOOR)
        return expit(_logit(raw) * self.fitted.coef_[0, 0] + self.fitted.intercept_[0])


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = _between(p, 1e-7, 1 - 1e-7)
    return np.log(clipped / (1 - clipped))


def _between(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``np.clip`` as two ufuncs: the same values, without clip's Python-level argument
    handling (several microseconds, most of calibrating one lead)."""
    return np.minimum(np.maximum(values, low), high)


def fit_calibrator(method: Literal["isotonic", "sigmoid"], raw: np.ndarray,
                   y: np.ndarray) -> Calibrator:
    """Fit one calibration method on raw probabilities and labels."""
    if method == "isotonic":
        fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    else:
        fitted = LogisticRegression(C=1e6).fit(_logit(raw)[:, None], y)
    return Calibrator(method, fitted)


def choose_calibrator(raw: np.ndarray, y: np.ndarray, seed: int) -> tuple[Calibrator,
                                                                          dict[str, float]]:
    """Pick isotonic or sigmoid by 2-fold cross-validated log loss on the validation slice,
    then refit the winner on all of it.

    Returns:
        The fitted calibrator and the cross-validated log loss of each method.
    """
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    losses = {}
    for method in ("isotonic", "sigmoid"):
        predicted = np.empty(len(y))
        for fit_rows, test_rows in folds.split(raw, y):
            predicted[test_rows] = fit_calibrator(method, raw[fit_rows], y[fit_rows])(
                raw[test_rows])
        losses[method] = float(log_loss(y, np.clip(predicted, 1e-15, 1 - 1e-15)))
    best = min(losses, key=losses.get)
    return fit_calibrator(best, raw, y), losses


def score_0_100(probability: np.ndarray) -> np.ndarray:
    """The 0-100 score CRMs show: the calibrated probability in percent, rounded."""
    return np.rint(np.asarray(probability) * 100).astype(np.int64)


# ------------------------------------------------------------------ the scorer
@dataclass
class LeadScorer:
    """Everything needed to score a raw lead: the object inside every model bundle.

    Attributes:
        dataset: Name of the dataset config it was trained on.
        shape: ``events`` (leads + events, scored as of a moment) or ``table``.
        columns: Model input columns and their groups.
        feature_spec: Behaviour vocabulary (events shape), else None.
        pipeline: Fitted preprocessor + classifier.
        calibrator: Fitted calibration.
        stage_thresholds: Minimum calibrated probability of each suggested stage.
        rules: The points baseline scored next to the model.
        metadata: Free-form facts (trained at, metrics, model kind...).
        accounts: The account model (``predictive_scoring.accounts.model.AccountScorer``)
            of a dataset with accounts, else None.
    """

    dataset: str
    shape: Literal["events", "table"]
    columns: FeatureColumns
    feature_spec: FeatureSpec | None
    pipeline: Pipeline
    calibrator: Calibrator
    stage_thresholds: dict[Stage, float]
    rules: RulesConfig
    metadata: dict[str, Any] = field(default_factory=dict)
    accounts: Any = None

    @property
    def kind(self) -> ModelKind:
        """The kind of the fitted pipeline: it explains the model, scores it fast and
        knows its estimator (:func:`~predictive_scoring.models.kinds.of`).

        Raises:
            TypeError: No registered kind owns the pipeline.
        """
        return kinds.of(self.pipeline)

    def check_layout(self) -> None:
        """Refuse a bundle whose behaviour columns this version's features do not make.

        This version's table of behaviour columns is rebuilt from the spec's vocabulary
        (:attr:`FeatureSpec.columns <predictive_scoring.features.FeatureSpec.columns>`),
        so a bundle pickled by an older version (other columns, or its own cached names)
        is caught, not scored with the columns it knew left empty.

        Raises:
            ValueError: Naming the columns the bundle expects and this version lacks.
        """
        if self.feature_spec is None:
            return
        spec = self.feature_spec
        made = FeatureSpec(spec.event_types, spec.detail_keys, spec.windows_days).feature_names
        if list(self.columns.behaviour) != made:
            unknown = [c for c in self.columns.behaviour if c not in made][:5]
            raise ValueError(
                f"this bundle was trained on another version's behaviour features "
                f"(for example {unknown or 'their order'}); retrain it with this version")

    def raw_attributes(self) -> list[str]:
        """The lead fields the scorer reads: model attributes, then rule fields."""
        computed = set(self.feature_spec.feature_names) if self.feature_spec else set()
        fields = [c for c in self.columns.all if c not in computed]
        fields += [rule.field for rule in self.rules.attribute_rules]
        return list(dict.fromkeys(fields))

    def features(self, leads: pd.DataFrame,
                 encoded: SnapshotEvents | None = None) -> pd.DataFrame:
        """Model input for leads; events shape: ``encoded`` from :meth:`encode`."""
        numbers = None
        if self.feature_spec is not None:  # written once, into the model input's block
            tenure = (encoded.snapshot_as_of - utc_ns(leads["created_at"], "leads")) / NS_PER_DAY
            numbers = numbers_block(len(leads), self.columns)
            featurise(self.feature_spec, encoded, tenure,
                      out=behaviour_block(numbers, self.columns))
        computed = set(self.columns.behaviour) if numbers is not None else set()
        missing = [c for c in self.columns.all if c not in leads and c not in computed]
        return model_frame(leads.assign(**dict.fromkeys(missing, np.nan)), self.columns,
                           numbers=numbers)

    @property
    def trained_ages(self) -> list[float] | None:
        """The youngest and oldest lead age (days) among the training examples, or None
        (a table, or a bundle trained before the range was recorded)."""
        ages = self.metadata.get(TRAINED_AGES_KEY)
        return None if not ages else [float(ages[0]), float(ages[1])]

    @property
    def oldest_trained_age(self) -> float | None:
        """The oldest lead age (days) trained on, or None (see :attr:`trained_ages`)."""
        ages = self.trained_ages
        return None if ages is None else ages[1]

    def beyond_training(self, age_days: np.ndarray) -> np.ndarray:
        """Whether each lead (age in days at its as_of) is at least a whole day older than
        any lead the model was trained on: its score extrapolates from younger leads.

        Args:
            age_days: Lead ages in days (NaN for a lead without one: not marked).
        """
        oldest = self.oldest_trained_age
        ages = np.asarray(age_days, dtype=np.float64)
        if oldest is None:
            return np.zeros(ages.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            return np.floor(ages) > oldest

    def encode(self, leads: pd.DataFrame, events: pd.DataFrame | None) -> SnapshotEvents | None:
        """Leads and their events encoded once for features and rules (events shape)."""
        if self.shape != "events":
            return None
        return snapshot_events(leads, _events_or_empty(events))

    def probability(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated conversion probability from model input."""
        return self.calibrator(self.pipeline.predict_proba(features)[:, 1])

    def score(self, leads: pd.DataFrame, events: pd.DataFrame | None = None) -> pd.DataFrame:
        """Probability, score, suggested stage and the rules' points and stage per lead.

        Args:
            leads: One row per lead with ``lead_id`` and the attribute columns (missing
                ones are treated as unknown); events shape also ``as_of`` and
                ``created_at`` (tz-aware UTC).
            events: Contract events of these leads (events shape), or None.

        Returns:
            One row per input row, same order: lead_id, probability, score,
            suggested_stage, rule_points, rule_stage, age_beyond_training (see
            :meth:`beyond_training`; always False for a table).
        """
        encoded = self.encode(leads, events)
        return self.score_features(leads, encoded, self.features(leads, encoded))

    def score_features(self, leads: pd.DataFrame, encoded: SnapshotEvents | None,
                       features: pd.DataFrame) -> pd.DataFrame:
        """:meth:`score` from the model input already built (for callers that also
        explain it).

        Args:
            leads: As for :meth:`score`.
            encoded: ``self.encode(leads, events)``.
            features: ``self.features(leads, encoded)``.
        """
        probability = self.probability(features)
        rule_input = leads.assign(**{f.field: np.nan for f in self.rules.attribute_rules
                                     if f.field not in leads})
        points = score_points(self.rules, rule_input, encoded)
        return pd.DataFrame({
            "lead_id": leads["lead_id"].to_numpy(),
            "probability": probability,
            "score": score_0_100(probability),
            "suggested_stage": stage_for_values(probability, self.stage_thresholds),
            "rule_points": points.points,
            "rule_stage": points.stage,
            "age_beyond_training": self.beyond_training(_age_days(leads)),
        }, index=leads.index)


def _age_days(leads: pd.DataFrame) -> np.ndarray:
    """Each lead's age at its as_of in days; NaN where the frame has no times (a table)."""
    if "as_of" not in leads or "created_at" not in leads:
        return np.full(len(leads), np.nan)
    return ((leads["as_of"] - leads["created_at"]) / pd.Timedelta(days=1)).to_numpy(float)


def _events_or_empty(events: pd.DataFrame | None) -> pd.DataFrame:
    if events is not None:
        return events
    return pd.DataFrame({"lead_id": pd.Series(dtype="string"),
                         "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
                         "event_type": pd.Series(dtype="string"),
                         "detail": pd.Series(dtype="string")})
