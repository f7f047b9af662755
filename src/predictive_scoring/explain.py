"""Why a lead scores as it does: exact per-field contributions, global weights, per-lead
reasons a salesperson reads, and the fit vs engagement split.

**Contributions** are SHAP values on the raw output (log-odds, before calibration), one
per raw model input field (``scorer.columns.all``), so that for every lead
``base + values.sum(axis=1) == raw_output`` exactly (up to float rounding). The model's
kind computes them (:meth:`~predictive_scoring.models.kinds.base.ModelKind.contributions`):
TreeSHAP as LightGBM computes it for trees, the exact linear terms from the mean training
row for a logistic regression; what a kind needs from training (the logistic model's
reference input) is stored by :func:`explanation_metadata`.

**Effects in score points.** The score is ``100 x`` the calibrated probability. The base
score is the score of the base raw output (the model's average lead). A lead's score
change ``score - base_score`` is shared among its fields in proportion to their
log-odds contributions: ``effect_j = value_j * (score - base_score) / (raw_output -
base)``. The factor is the average slope of the (monotone) calibrated score between the
base and the lead's raw output, so effects keep the sign of the contributions and add up
to the score change exactly (before the score is rounded to an integer).

**Fit vs engagement.** Summing a lead's contributions over the ``fit`` fields and over
the ``engagement`` fields (``scorer.columns.groups``, declared in the dataset config)
splits its log-odds into who it is and what it did. Fit grades A-D and engagement levels
hot / warm / cool / cold cut those sums at the quartiles of the training leads (stored in
the bundle's metadata at train time by :func:`explanation_metadata`), so a quarter of
the training leads holds each grade and each level. The quadrant crosses the two halves:
grade A or B is a good fit, hot or warm is engaged.

No mlflow here: :mod:`predictive_scoring.tracking` and the CLI log what this computes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring.features import OTHER_KEY, BehaviourColumn
from predictive_scoring.models.kinds.base import Contributions
from predictive_scoring.models.scorer import LeadScorer

FIT, ENGAGEMENT = "fit", "engagement"
METADATA_KEY = "explanation"
"""Key of the train-time facts (linear reference input, grade cut points) in
``scorer.metadata``."""
FIT_GRADES = ("D", "C", "B", "A")
ENGAGEMENT_LEVELS = ("cold", "cool", "warm", "hot")
QUARTILES = (0.25, 0.5, 0.75)
QUADRANTS = {(True, True): "sales-ready", (True, False): "nurture",
             (False, True): "check fit", (False, False): "low priority"}
"""(good fit, engaged) -> quadrant: sales-ready (call now), nurture (right company, not
active yet: marketing keeps warming it), check fit (active but a weak fit: qualify before
spending sales time), low priority."""
EXPLANATION_COLUMNS = ["fit_logodds", "engagement_logodds", "fit_grade", "engagement",
                       "quadrant"]
NO_CHANGE = 1e-12
"""Log-odds changes below this are no change: the lead sits at the base score."""


# ------------------------------------------------------------------ contributions
def model_matrix(scorer: LeadScorer, features: pd.DataFrame) -> np.ndarray:
    """The classifier's input (the preprocessor's output) as a float64 array."""
    return np.asarray(scorer.pipeline[:-1].transform(features), dtype=np.float64)


def contributions(scorer: LeadScorer, features: pd.DataFrame) -> Contributions:
    """Exact contributions of each raw field to each lead's raw output.

    Args:
        scorer: A trained scorer (of any registered model kind).
        features: Model input, ``scorer.features(leads, encoded)``.

    Returns:
        The contributions, as the scorer's model kind computes them.
    """
    return contributions_from_matrix(scorer, model_matrix(scorer, features))


def contributions_from_matrix(scorer: LeadScorer, matrix: np.ndarray) -> Contributions:
    """:func:`contributions` from the classifier's input (the serving fast path).

    Args:
        scorer: A trained scorer.
        matrix: ``scorer.pipeline[:-1].transform(features)`` as float64, one row per lead.

    Raises:
        ValueError: The matrix has the wrong number of columns, or the model's kind needs
            the train-time reference input and the scorer lacks it.
        TypeError: No registered model kind owns the scorer's classifier.
    """
    return scorer.kind.contributions(scorer.pipeline, scorer.columns,
                                     np.atleast_2d(np.asarray(matrix, dtype=np.float64)),
                                     _reference_input(scorer))


def _reference_input(scorer: LeadScorer) -> np.ndarray | None:
    stored = scorer.metadata.get(METADATA_KEY, {}).get("reference_input")
    return None if stored is None else np.asarray(stored, dtype=np.float64)


# ------------------------------------------------------------------ train-time facts
def explanation_metadata(scorer: LeadScorer, features: pd.DataFrame) -> dict[str, Any]:
    """What explanations need from training, for ``scorer.metadata['explanation']``.

    Args:
        scorer: The freshly trained scorer.
        features: Model input of (a sample of) its training rows.

    Returns:
        ``reference_input`` (what the model's kind measures contributions from: the
        logistic regression's mean classifier input; None for trees) and ``cuts``: the
        quartiles of the fit and engagement log-odds sums (None for a group without
        fields).
    """
    matrix = model_matrix(scorer, features)
    kind = scorer.kind
    reference = kind.reference_input(matrix)
    sums = group_logodds(kind.contributions(scorer.pipeline, scorer.columns, matrix,
                                            reference), scorer.columns.groups)
    cuts = {group: (np.quantile(sums[group], QUARTILES).tolist()
                    if _has_group(scorer.columns.groups, group) else None)
            for group in (FIT, ENGAGEMENT)}
    return {"reference_input": None if reference is None else reference.tolist(),
            "cuts": cuts}


def _has_group(groups: Mapping[str, str], group: str) -> bool:
    return group in groups.values()


# ------------------------------------------------------------------ global weights
def global_importance(contrib: Contributions, groups: Mapping[str, str]) -> pd.DataFrame:
    """Mean absolute contribution of each field over the leads given.

    Args:
        contrib: Contributions of a batch of leads (say, the test slice).
        groups: Field -> group (``scorer.columns.groups``); fields missing there are
            ``other``.

    Returns:
        Columns ``feature``, ``group``, ``mean_abs`` (log-odds), largest first.
    """
    frame = pd.DataFrame({"feature": list(contrib.fields),
                          "group": [groups.get(f, "other") for f in contrib.fields],
                          "mean_abs": np.abs(contrib.values).mean(axis=0)})
    return frame.sort_values("mean_abs", ascending=False, kind="stable").reset_index(drop=True)


def group_logodds(contrib: Contributions, groups: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Each lead's contributions summed per group (fit, engagement, ...)."""
    labels = np.array([groups.get(f, "other") for f in contrib.fields], dtype=object)
    names = list(dict.fromkeys([FIT, ENGAGEMENT, *labels]))
    return {name: contrib.values[:, labels == name].sum(axis=1) for name in names}


def group_importance(contrib: Contributions, groups: Mapping[str, str]) -> pd.DataFrame:
    """Mean absolute contribution of each group (its fields' contributions summed per
    lead first, so a group's weight is what it moves a lead's log-odds as a whole).

    Returns:
        Columns ``group``, ``features`` (how many fields), ``mean_abs``, largest first.
    """
    labels = [groups.get(f, "other") for f in contrib.fields]
    sums = group_logodds(contrib, groups)
    frame = pd.DataFrame({"group": list(sums),
                          "features": [labels.count(g) for g in sums],
                          "mean_abs": [float(np.abs(v).mean()) if len(v) else 0.0
                                       for v in sums.values()]})
    frame = frame.loc[frame["features"] > 0]
    return frame.sort_values("mean_abs", ascending=False, kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class GlobalWeights:
    """What drives the model over a batch of leads (logged with every training run).

    Attributes:
        contributions: The leads' contributions.
        features: Their model input (for the beeswarm's colours).
        importance: :func:`global_importance` of the fields.
        groups: :func:`group_importance` of fit vs engagement.
    """

    contributions: Contributions
    features: pd.DataFrame
    importance: pd.DataFrame
    groups: pd.DataFrame


def global_weights(scorer: LeadScorer, features: pd.DataFrame) -> GlobalWeights:
    """Contributions and mean absolute weights per field and per group of some leads."""
    contrib = contributions(scorer, features)
    groups = scorer.columns.groups
    return GlobalWeights(contrib, features, global_importance(contrib, groups),
                         group_importance(contrib, groups))


def sample_rows(n_rows: int, most: int, seed: int) -> np.ndarray:
    """At most ``most`` sorted row positions out of ``n_rows``, drawn without replacement."""
    if n_rows <= most:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, most, replace=False))


# ------------------------------------------------------------------ score points
def score_effects(scorer: LeadScorer, contrib: Contributions) -> tuple[np.ndarray, np.ndarray]:
    """Contributions in score points (0-100 scale) that add up to the score change.

    Returns:
        The base score per lead (the score of the base raw output) and the ``(n,
        fields)`` effects; ``base_score + effects.sum(1)`` is ``100 x`` the calibrated
        probability (see the module docstring).
    """
    base_score = 100 * scorer.calibrator(_sigmoid(contrib.base))
    score = 100 * scorer.calibrator(_sigmoid(contrib.raw_output))
    change = contrib.raw_output - contrib.base
    moved = np.abs(change) > NO_CHANGE
    slope = np.divide(score - base_score, change, out=np.zeros_like(change), where=moved)
    return base_score, contrib.values * slope[:, None]


def _sigmoid(logodds: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logodds, dtype=np.float64)))


# ------------------------------------------------------------------ reasons
@dataclass(frozen=True)
class Reason:
    """One field's part in a lead's score, worded for a salesperson.

    Attributes:
        field: Raw model input field.
        value: The lead's value of it (None when missing).
        effect: Score points it adds (positive) or takes away (negative).
        sentence: E.g. ``"3 pricing page visits in the last 7 days: +12"``.
    """

    field: str
    value: Any
    effect: float
    sentence: str


FeatureValues = pd.DataFrame | Mapping[str, Sequence[Any] | np.ndarray]
"""Model input by field: the features frame, or a mapping of field -> values per lead."""


def reasons(scorer: LeadScorer, features: FeatureValues, contrib: Contributions,
            k: int = 3) -> list[list[Reason]]:
    """The top-k positive then top-k negative reasons of each lead.

    Args:
        scorer: The scorer the contributions come from.
        features: The leads' model input (for the values quoted in the sentences).
        contrib: Their contributions.
        k: Reasons per direction; fewer when fewer fields push that way.

    Returns:
        Per lead: up to k reasons raising the score (strongest first), then up to k
        lowering it (strongest first). Effects that round to 0.0 points are no reason.
    """
    _, effects = score_effects(scorer, contrib)
    n_fields = len(contrib.fields)
    k = min(k, n_fields)
    order = np.argsort(effects, axis=1, kind="stable")
    picks = np.concatenate([order[:, ::-1][:, :k], order[:, :k]], axis=1)
    signs = np.concatenate([np.ones(k), -np.ones(k)])
    chosen = np.take_along_axis(effects, picks, axis=1)
    keep = chosen * signs >= MIN_REASON_POINTS
    columns: dict[str, np.ndarray] = {}
    out = []
    for row, (fields, wanted) in enumerate(zip(picks, keep, strict=True)):
        lead = []
        for j, field_index in enumerate(fields):
            if not wanted[j]:
                continue
            name = contrib.fields[field_index]
            if name not in columns:
                columns[name] = np.asarray(features[name], dtype=object)
            lead.append(_reason(scorer, name, columns[name][row], chosen[row, j]))
        out.append(lead)
    return out


def _reason(scorer: LeadScorer, field: str, value: Any, effect: float) -> Reason:
    value = None if _missing(value) else value
    text = describe(scorer, field, value)
    return Reason(field, value, float(effect), f"{text}: {_points(effect)}")


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


MIN_REASON_POINTS = 0.05
"""A smaller effect shows as "+0.0" points: not worth a salesperson's attention."""


def _points(effect: float) -> str:
    return f"{effect:+.0f}" if abs(effect) >= 0.95 else f"{effect:+.1f}"


# ------------------------------------------------------------------ sentences
def describe(scorer: LeadScorer, field: str, value: Any) -> str:
    """A salesperson's words for a lead's value of one model input field.

    Behaviour features are read from their row of the feature spec's table
    (:attr:`FeatureSpec.columns <predictive_scoring.features.FeatureSpec.columns>`: what
    the column measures, of which event type and detail, over which window); attributes
    read "Field is value".
    """
    if scorer.feature_spec is not None:
        column = scorer.feature_spec.column(field)
        if column is not None:
            return _describe_behaviour(column, value)
    label = _humanise(field).capitalize()
    if value is None:
        return f"{label} unknown"
    return f"{label} is {_number(value) if field in scorer.columns.numeric else value}"


def _describe_behaviour(column: BehaviourColumn, value: Any) -> str:
    if column.kind == "tenure":
        return f"Lead created {_days(value)} ago" if value is not None else "Lead age unknown"
    singular, plural = event_nouns(*column.key)
    if column.others:
        singular, plural = f"other {singular}", f"other {plural}"
    if column.kind == "since":
        return f"No {singular} yet" if value is None else f"Last {singular} {_days(value)} ago"
    count = 0.0 if value is None else float(value)
    if count == 0:
        return f"No {plural}{_within(column.window) or ' yet'}"
    noun = singular if count == 1 else plural
    return f"{_number(count)} {noun}{_within(column.window) or ' in total'}"


def event_nouns(event_type: str, detail: str | None) -> tuple[str, str]:
    """Singular and plural words for an event key: ``page_view`` + ``pricing`` ->
    ("pricing page visit", "pricing page visits"); ``email_open`` -> ("email open",
    "email opens"); detail of other types in brackets."""
    if event_type == OTHER_KEY:
        return "other activity", "other activities"
    if event_type == "page_view":
        page = f"{_humanise(detail)} page" if detail else "page"
        return f"{page} visit", f"{page} visits"
    words = _humanise(event_type)
    suffix = f" ({_humanise(detail)})" if detail else ""
    return f"{words}{suffix}", f"{_plural(words)}{suffix}"


def _humanise(name: str) -> str:
    return name.replace("_", " ").replace(".", " ").strip()


def _plural(words: str) -> str:
    if words.endswith(("s", "x", "ch", "sh")):
        return f"{words}es"
    if words.endswith("y") and words[-2:-1] not in "aeiou":
        return f"{words[:-1]}ies"
    return f"{words}s"


def _within(window: int | None) -> str:
    return f" in the last {window} days" if window is not None else ""


def _days(value: Any) -> str:
    days = float(value)
    if days < 1:
        return "less than a day"
    whole = int(days)
    return f"{whole} day{'s' * (whole != 1)}"


def _number(value: Any) -> str:
    number = float(value)
    if number.is_integer():
        return f"{int(number):,}"
    return f"{number:,.4g}" if abs(number) >= 1 else f"{number:.3g}"


# ------------------------------------------------------------------ fit vs engagement
@dataclass(frozen=True)
class FitEngagement:
    """Fit vs engagement of a batch of leads, as arrays (the API reads them per lead).

    Attributes:
        fit_logodds: Sum of the fit fields' contributions.
        engagement_logodds: Sum of the engagement fields' contributions.
        fit_grade: A-D (None when the model has no fit field).
        engagement: hot, warm, cool, cold (None when it has no engagement field).
        quadrant: sales-ready, nurture, check fit, low priority (None when either is).
    """

    fit_logodds: np.ndarray
    engagement_logodds: np.ndarray
    fit_grade: np.ndarray
    engagement: np.ndarray
    quadrant: np.ndarray


def fit_engagement_arrays(scorer: LeadScorer, contrib: Contributions) -> FitEngagement:
    """:func:`fit_engagement` without the DataFrame (no pandas for one API request).

    Raises:
        ValueError: The scorer has no train-time cut points.
    """
    cuts = scorer.metadata.get(METADATA_KEY, {}).get("cuts")
    if cuts is None:
        raise ValueError(f"this scorer has no fit and engagement cut points (metadata"
                         f"['{METADATA_KEY}']): retrain it, or set them with "
                         "explanation_metadata(scorer, training_features)")
    sums = group_logodds(contrib, scorer.columns.groups)
    grade = _levels(sums[FIT], cuts[FIT], FIT_GRADES)
    level = _levels(sums[ENGAGEMENT], cuts[ENGAGEMENT], ENGAGEMENT_LEVELS)
    good_fit, engaged = np.isin(grade, FIT_GRADES[2:]), np.isin(level, ENGAGEMENT_LEVELS[2:])
    quadrant = np.array([QUADRANTS[pair] for pair in zip(good_fit, engaged, strict=True)],
                        dtype=object)
    quadrant[pd.isna(grade) | pd.isna(level)] = None
    return FitEngagement(sums[FIT], sums[ENGAGEMENT], grade, level, quadrant)


def fit_engagement(scorer: LeadScorer, contrib: Contributions) -> pd.DataFrame:
    """Each lead's log-odds split into fit and engagement, its grade, level and quadrant.

    Args:
        scorer: A scorer trained with :func:`explanation_metadata` in its metadata.
        contrib: The leads' contributions.

    Returns:
        One row per lead: ``fit_logodds``, ``engagement_logodds``, ``fit_grade`` (A-D),
        ``engagement`` (hot, warm, cool, cold) and ``quadrant`` (sales-ready, nurture,
        check fit, low priority); grade, level and quadrant are missing when the model
        has no field of that group.

    Raises:
        ValueError: The scorer has no train-time cut points.
    """
    split = fit_engagement_arrays(scorer, contrib)
    return pd.DataFrame({"fit_logodds": split.fit_logodds,
                         "engagement_logodds": split.engagement_logodds,
                         "fit_grade": pd.array(split.fit_grade, dtype="string"),
                         "engagement": pd.array(split.engagement, dtype="string"),
                         "quadrant": pd.array(split.quadrant, dtype="string")})


def _levels(values: np.ndarray, cuts: list[float] | None,
            names: tuple[str, ...]) -> np.ndarray:
    if cuts is None:
        return np.full(len(values), None, dtype=object)
    return np.asarray(names, dtype=object)[np.searchsorted(cuts, values, side="right")]


# ------------------------------------------------------------------ scores + explanations
def reason_columns(k: int) -> list[str]:
    """Names of the reason columns of batch output: ``reason_up_1..k``, ``reason_down_1..k``."""
    return [f"reason_{way}_{i}" for way in ("up", "down") for i in range(1, k + 1)]


def explanation_frame(scorer: LeadScorer, features: FeatureValues, contrib: Contributions,
                      k: int) -> pd.DataFrame:
    """Fit vs engagement columns and (``k`` > 0) the reason sentences, one row per lead.

    Reason columns hold sentences, strongest first; a lead with fewer than ``k`` fields
    pushing one way has empty cells there.
    """
    frame = fit_engagement(scorer, contrib)
    if k <= 0:
        return frame
    cells = {name: [None] * len(frame) for name in reason_columns(k)}
    for row, lead in enumerate(reasons(scorer, features, contrib, k)):
        ups = [r for r in lead if r.effect > 0]
        downs = [r for r in lead if r.effect < 0]
        for way, picked in (("up", ups), ("down", downs)):
            for i, reason in enumerate(picked, start=1):
                cells[f"reason_{way}_{i}"][row] = reason.sentence
    return frame.assign(**{name: pd.array(values, dtype="string")
                           for name, values in cells.items()})


def score_explained(scorer: LeadScorer, leads: pd.DataFrame, events: pd.DataFrame | None,
                    k: int) -> pd.DataFrame:
    """:meth:`LeadScorer.score` plus fit vs engagement and ``k`` reasons each way.

    Returns:
        The scorer's columns, then :data:`EXPLANATION_COLUMNS`, then
        :func:`reason_columns` (``k`` > 0); same rows and index as ``leads``.
    """
    encoded = scorer.encode(leads, events)
    features = scorer.features(leads, encoded)
    scores = scorer.score_features(leads, encoded, features)
    explained = explanation_frame(scorer, features, contributions(scorer, features), k)
    return pd.concat([scores, explained.set_axis(scores.index)], axis=1)

