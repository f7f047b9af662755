"""The points engine: the classic hand-set scoring the learned model is compared with.

A :class:`~predictive_scoring.config.RulesConfig` gives points for events (an event type,
optionally narrowed by its detail, with an optional cap and half-life) and for lead
attributes or table columns (a comparison on the value). Every lead's total is the sum
of what each rule gave it (plus the table's ``starting_points``, if any: the first entry
of the trail), and that per-rule trail is kept: marketing teams need to see
why a lead is an MQL, and the comparison report needs the same numbers.

Events are joined to the scored rows with :func:`~predictive_scoring.features.point_in_time`,
the one point-in-time join of the project, so an event at or after a row's ``as_of`` never
counts. The array functions (:func:`event_rule_points`, :func:`attribute_rule_points`)
loop over rules only, never over leads or events, so they score ten million rows or one
lead from an HTTP request with the same code.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache, partial

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from predictive_scoring.config import (
    STARTING_POINTS,
    AttributeRule,
    EventRule,
    NumberOrText,
    RulesConfig,
)
from predictive_scoring.features import PointInTime, SnapshotEvents, lookup_codes, snapshot_events
from predictive_scoring.stages import stage_for_values

_FACTORIZE_FROM = 512
"""Columns at least this long are converted per distinct value, not per cell."""


# ------------------------------------------------------------------------ the trail
@dataclass(frozen=True)
class PointsResult:
    """Points per scored row with the audit trail of what each rule gave.

    Attributes:
        points: Total points per row; always exactly ``per_rule.sum(axis=1)``.
        stage: Stage per row from the rules' stage thresholds (plain strings).
        rule_names: Rule names in column order of ``per_rule`` (event rules first).
        per_rule: Points each rule gave each row, shape ``(rows, rules)``.
    """

    points: np.ndarray
    stage: np.ndarray
    rule_names: tuple[str, ...]
    per_rule: np.ndarray

    def __post_init__(self) -> None:
        if self.per_rule.shape != (len(self.points), len(self.rule_names)):
            raise ValueError(f"per_rule has shape {self.per_rule.shape}; expected "
                             f"({len(self.points)}, {len(self.rule_names)}) for "
                             f"{len(self.points)} rows and rules {list(self.rule_names)}")
        if self.points.ndim != 1 or not (self.points == self.per_rule.sum(axis=1)).all():
            raise ValueError("points must equal per_rule.sum(axis=1); build the result "
                             "with PointsResult.from_trail")

    @classmethod
    def from_trail(cls, per_rule: np.ndarray, rule_names: Sequence[str],
                   rules: RulesConfig) -> PointsResult:
        """The result of a per-rule trail: totals are its row sums, stages their mapping.

        Without stage thresholds (a scorer without rules) every stage is None.
        """
        points = per_rule.sum(axis=1)
        stage = (stage_for_values(points, rules.stage_thresholds) if rules.stage_thresholds
                 else np.full(len(points), None, dtype=object))
        return cls(points, stage, tuple(rule_names), per_rule)

    def fired(self) -> list[list[tuple[str, float]]]:
        """Per row, the rules that gave non-zero points, as ``(rule name, points)``."""
        fired: list[list[tuple[str, float]]] = [[] for _ in range(len(self.points))]
        for row, column, points in self._non_zero():
            fired[row].append((self.rule_names[column], points))
        return fired

    def fired_text(self) -> list[str]:
        """Per row, e.g. ``"demo_request +16; email_open +4.0; student -15"``.

        Points are rounded to one decimal (whole numbers show none); rules whose
        points round to zero are left out, so an old, decayed email open is no noise.
        """
        parts: list[list[str]] = [[] for _ in range(len(self.points))]
        for row, column, points in self._non_zero():
            shown = _signed(points)
            if shown is not None:
                parts[row].append(f"{self.rule_names[column]} {shown}")
        return ["; ".join(row) for row in parts]

    def _non_zero(self) -> Iterable[tuple[int, int, float]]:
        rows, columns = np.nonzero(self.per_rule)
        return zip(rows.tolist(), columns.tolist(), self.per_rule[rows, columns].tolist(),
                   strict=True)


def _signed(points: float) -> str | None:
    """``+16``, ``+4.0``, ``-2.5``; None when the points round to zero."""
    if points.is_integer():
        return f"{points:+.0f}"
    shown = f"{points:+.1f}"
    return None if shown[1:] == "0.0" else shown


# ------------------------------------------------------------------------ event rules
def event_rule_points(
    tables: EventRuleTables,
    pit: PointInTime,
    n_rows: int,
    event_types: np.ndarray | pd.Categorical,
    event_details: np.ndarray | pd.Categorical,
) -> np.ndarray:
    """Points each event rule gives each row, from the events before the row's as_of.

    Args:
        tables: The event rules' tables (:func:`event_rule_tables`).
        pit: Point-in-time pairs of rows and events (see ``features.point_in_time``).
        n_rows: Number of scored rows.
        event_types: Event type of every event the pairs index.
        event_details: Detail of every event (a string, or None/NA when it has none).

    Returns:
        float64 array of shape ``(n_rows, rules)``: per rule, the sum over matching
        events of ``points * 0.5 ** (age_days / half_life_days)`` (no decay without a
        half-life), clipped to ``[-|cap|, |cap|]`` when the rule has a cap.
    """
    types, details, rule_keys, decay = tables
    n_rules = len(rule_keys)
    # one key per event: (type + 1, detail + 1), slot 0 holding types/details no rule names
    type_code = lookup_codes(types, event_types) + 1
    detail_code = lookup_codes(details, event_details) + 1
    event_key = type_code * (len(details) + 1) + detail_code
    # every (rule, pair) match at once: one weighted count over rule-major cells
    rule, pair = np.nonzero(rule_keys[:, event_key[pit.event]])
    weights = decay.points[rule] * 0.5 ** (pit.age_days[pair] / decay.half_life[rule])
    totals = np.bincount(rule * n_rows + pit.snapshot[pair], weights=weights,
                         minlength=n_rules * n_rows).reshape(n_rules, n_rows).T
    return np.minimum(np.maximum(totals, -decay.cap), decay.cap)


@dataclass(frozen=True)
class _Decay:
    """Per event rule: points per event, half-life (inf: none) and cap (inf: none)."""

    points: np.ndarray
    half_life: np.ndarray
    cap: np.ndarray


def _details(rule: EventRule) -> list[str]:
    if rule.detail is None:
        return []
    return [rule.detail] if isinstance(rule.detail, str) else list(rule.detail)


EventRuleTables = tuple[tuple[str, ...], tuple[str, ...], np.ndarray, _Decay]


def event_rule_tables(rules: Sequence[EventRule]) -> EventRuleTables:
    """What :func:`event_rule_points` counts with (at least one rule), built once per set
    of rules (cached by each rule's type, details, points, half-life and cap)."""
    return _event_rule_tables(tuple(
        (rule.event_type, None if rule.detail is None else tuple(_details(rule)),
         rule.points, rule.half_life_days, rule.cap) for rule in rules))


@lru_cache(maxsize=64)
def _event_rule_tables(matched: tuple[tuple[str, tuple[str, ...] | None, float,
                                            float | None, float | None], ...]
                       ) -> EventRuleTables:
    """The event types and details the rules name, which event keys (see
    :func:`event_rule_points`) each rule counts (one row per rule), and their decay.

    An API request scores one lead, and building the tables cost more than counting its
    events: they are built once per set of rules.

    Args:
        matched: Per rule, its event type, its details (None: any detail), points,
            half-life in days and cap (None: none).
    """
    types = tuple(dict.fromkeys(event_type for event_type, *_ in matched))
    details = tuple(dict.fromkeys(d for _, wanted, *_ in matched for d in wanted or ()))
    keys = np.zeros((len(matched), len(types) + 1, len(details) + 1), dtype=bool)
    for j, (event_type, wanted, *_) in enumerate(matched):
        row = types.index(event_type) + 1
        if wanted is None:
            keys[j, row, :] = True
        else:
            keys[j, row, [details.index(d) + 1 for d in wanted]] = True
    keys = keys.reshape(len(matched), -1)
    # 0.5 ** (age / inf) is exactly 1: a rule without a half-life counts its points whole
    decay = _Decay(points=_frozen([points for _, _, points, _, _ in matched]),
                   half_life=_frozen([math.inf if h is None else h for *_, h, _ in matched]),
                   cap=_frozen([math.inf if cap is None else abs(cap) for *_, cap in matched]))
    keys.flags.writeable = False
    return types, details, keys, decay


def _frozen(values: Sequence[float]) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.flags.writeable = False
    return array


# -------------------------------------------------------------------- attribute rules
def attribute_rule_points(
    rules: Sequence[AttributeRule],
    columns: Mapping[str, np.ndarray | pd.Series],
    n_rows: int,
) -> np.ndarray:
    """Points each attribute rule gives each row.

    A missing value (None, NaN, NA, NaT, blank text) fails every comparison except
    ``is_null``. Order comparisons read text that parses as a number as that number
    (CSV exports), and compare text with text when the rule's bounds are not numbers;
    a value that cannot be compared is not matched. ``eq``/``in`` match a number
    whatever its spelling (``10``, ``"10"``, ``10.0``) and text exactly; ``contains``
    is a case-insensitive substring test on the value's text.

    Args:
        rules: The attribute rules.
        columns: Column name -> one value per row (arrays are read without pandas).
        n_rows: Number of scored rows.

    Returns:
        float64 array of shape ``(n_rows, len(rules))``.

    Raises:
        ValueError: A rule's field is not among ``columns`` or has the wrong length.
    """
    cells: dict[str, _Cells] = {}
    for rule in rules:
        if rule.field not in cells:
            cells[rule.field] = _Cells(_column_values(rule, columns, n_rows))
    out = np.zeros((n_rows, len(rules)), dtype=np.float64)
    for j, rule in enumerate(rules):
        out[:, j] = np.where(_matches(rule, cells[rule.field]), rule.points, 0.0)
    return out


class PreparedRules:
    """A points system made ready for scoring a row at a time (an API request's lead).

    Holds what every call would otherwise rebuild: the event rules' tables, the rule
    names, and the attribute rules' points remembered per field value. A rule's match
    depends on its own field's value only, and API requests score one lead at a time
    whose fields take a few recurring values (an industry, a seniority): for one row,
    each distinct value of a field is evaluated once, by :func:`attribute_rule_points`
    itself, and remembered; the remembered values are forgotten together past
    ``max_values``. Several rows at once go straight to :func:`attribute_rule_points`.

    Args:
        rules: The points system.
        max_values: Most (field, value) results kept.
    """

    def __init__(self, rules: RulesConfig, max_values: int = 4096) -> None:
        self.config = rules
        self.names = rule_names(rules)
        self.event_tables = event_rule_tables(rules.event_rules) if rules.event_rules else None
        self._rules = tuple(rules.attribute_rules)
        positions: dict[str, list[int]] = {}
        for j, rule in enumerate(self._rules):
            positions.setdefault(rule.field, []).append(j)
        self._fields = tuple((field, np.array(columns), [self._rules[j] for j in columns])
                             for field, columns in positions.items())
        self._max_values = max_values
        self._known: dict[tuple[object, ...], np.ndarray] = {}

    def attribute_points(self, columns: Mapping[str, np.ndarray | pd.Series], n_rows: int
                         ) -> np.ndarray:
        """The same array as ``attribute_rule_points(rules.attribute_rules, ...)``."""
        if n_rows != 1:
            return attribute_rule_points(self._rules, columns, n_rows)
        out = np.zeros((1, len(self._rules)), dtype=np.float64)
        for field, positions, rules in self._fields:
            out[0, positions] = self._field_points(field, rules, columns)
        return out

    def _field_points(self, field: str, rules: list[AttributeRule],
                      columns: Mapping[str, np.ndarray | pd.Series]) -> np.ndarray:
        key = _cell_key(field, columns.get(field))
        known = None if key is None else self._known.get(key)
        if known is None:
            known = attribute_rule_points(rules, columns, 1)[0]
            if key is not None:
                if len(self._known) >= self._max_values:
                    self._known.clear()
                known.flags.writeable = False
                self._known[key] = known
        return known


def rule_names(rules: RulesConfig) -> tuple[str, ...]:
    """Rule names in trail order: the starting points (when not 0), event rules, then
    attribute rules."""
    start = (STARTING_POINTS,) if rules.starting_points else ()
    return start + tuple(rule.name for rule in [*rules.event_rules, *rules.attribute_rules])


def _cell_key(field: str, column: object) -> tuple[object, ...] | None:
    """A one-cell column's field, array kind and value, by type (``True``, ``1`` and
    ``"1"`` read differently); None when it cannot key a dict (not one cell, unhashable)."""
    if not isinstance(column, np.ndarray) or column.shape != (1,):
        return None
    value = column[0]
    if isinstance(value, float) and math.isnan(value):
        value = "NaN"  # every NaN is one key (NaN != NaN would never be found again)
    try:
        hash(value)
    except TypeError:
        return None
    return field, column.dtype.kind, type(value), value


def _column_values(rule: AttributeRule, columns: Mapping[str, np.ndarray | pd.Series],
                   n_rows: int) -> np.ndarray:
    if rule.field not in columns:
        raise ValueError(f"attribute rule '{rule.name}' reads column '{rule.field}', which "
                         f"is not among the columns given: {list(columns)}")
    column = columns[rule.field]
    if isinstance(column, pd.Series):
        numeric = pd.api.types.is_numeric_dtype(column.dtype)
        values = (column.to_numpy(dtype=np.float64, na_value=np.nan) if numeric
                  else column.to_numpy(dtype=object))
    else:
        values = np.asarray(column)
    if values.shape != (n_rows,):
        raise ValueError(f"column '{rule.field}' has shape {values.shape}; attribute rule "
                         f"'{rule.name}' needs one value per row ({n_rows},)")
    return values.astype(object) if values.dtype.kind in "US" else values


class _Cells:
    """One column's cells read as numbers, as text and as missing, each read once."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.numeric = values.dtype.kind in "biuf"

    @cached_property
    def number(self) -> np.ndarray:
        if self.numeric:
            return self.values.astype(np.float64)
        return _map_cells(self.values, _number_of, np.float64)

    @cached_property
    def text(self) -> np.ndarray:
        return _map_cells(self.values, _text_of, object)

    @cached_property
    def lower(self) -> np.ndarray:
        return _map_cells(self.values, _lower_text_of, object)

    @cached_property
    def missing(self) -> np.ndarray:
        if self.numeric:
            return np.isnan(self.number)
        return np.fromiter((t is None for t in self.text), bool, len(self.values))


def _map_cells(values: np.ndarray, convert: Callable[[object], object],
               dtype: type | np.dtype) -> np.ndarray:
    """``convert`` of every cell; long columns convert each distinct value once."""
    if len(values) >= _FACTORIZE_FROM:
        try:
            codes, uniques = pd.factorize(values)
        except TypeError:  # unhashable cells (lists, dicts) are converted one by one
            pass
        else:  # code -1 (a missing cell) picks the last entry: convert(None)
            table = np.fromiter(map(convert, [*uniques, None]), dtype, len(uniques) + 1)
            return table[codes]
    return np.fromiter(map(convert, values), dtype, len(values))


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(value != value)  # NaN and NaT of every flavour
    except (TypeError, ValueError):
        return False


def _text_of(value: object) -> str | None:
    """A cell as text: None when missing or blank; whole floats without ``.0``."""
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _lower_text_of(value: object) -> str | None:
    text = _text_of(value)
    return None if text is None else text.lower()


_NUMBER_LIKE = (str, numbers.Real, Decimal, np.bool_)


def _number_of(value: object) -> float:
    """A cell as a number: numbers, and text that parses as one; NaN otherwise."""
    number = _as_number(value) if isinstance(value, _NUMBER_LIKE) else None
    return math.nan if number is None else number


def _as_number(value: object) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _matches(rule: AttributeRule, cells: _Cells) -> np.ndarray:
    if rule.op == "is_null":
        return cells.missing
    if rule.op == "contains":
        return _map_cells(cells.values, partial(_contains, str(rule.value).lower()), bool)
    if rule.op in ("eq", "ne", "in"):
        wanted = rule.value if isinstance(rule.value, list) else [rule.value]
        hit = np.zeros(len(cells.values), dtype=bool)
        for value in wanted:
            hit |= _equals(cells, value)
        return (~hit & ~cells.missing) if rule.op == "ne" else hit
    return _in_range(cells, rule.op, rule.value)


def _contains(needle: str, value: object) -> bool:
    text = _lower_text_of(value)
    return text is not None and needle in text


def _equals(cells: _Cells, value: NumberOrText | None) -> np.ndarray:
    number = _as_number(value)
    hit = cells.number == number if number is not None else np.zeros(len(cells.values), bool)
    if isinstance(value, bool):  # true/false written as text in an export
        hit |= cells.lower == str(value).lower()
    elif isinstance(value, str):
        hit |= cells.text == value
    return hit


_ORDER = {"gt": (np.greater,), "gte": (np.greater_equal,), "lt": (np.less,),
          "lte": (np.less_equal,), "between": (np.greater_equal, np.less_equal)}


def _in_range(cells: _Cells, op: str, value: NumberOrText | list[NumberOrText] | None
              ) -> np.ndarray:
    """Order comparisons: numbers with numbers, else text with text, else no match."""
    bounds = value if isinstance(value, list) else [value]
    numeric_bounds = [_as_number(b) for b in bounds]
    hit = np.zeros(len(cells.values), dtype=bool)
    if all(b is not None for b in numeric_bounds):
        hit[:] = True
        for compare, bound in zip(_ORDER[op], numeric_bounds, strict=True):
            hit &= compare(cells.number, bound)
    elif all(isinstance(b, str) for b in bounds):
        present = ~cells.missing
        hit[present] = True
        for compare, bound in zip(_ORDER[op], bounds, strict=True):
            hit[present] &= compare(cells.text[present], bound).astype(bool)
    return hit


def check_rule_fields(rules: RulesConfig, available: Iterable[str], source: str) -> None:
    """Fail early when an attribute rule reads a column the dataset does not have.

    Args:
        rules: The points system.
        available: The dataset's column names.
        source: Where the rules come from (the rules file or config name), for the message.

    Raises:
        ValueError: Naming each such rule and its field, close spellings, and the columns
            that do exist.
    """
    columns = [str(c) for c in available]
    present = set(columns)
    problems = [_missing_field(rule, columns) for rule in rules.attribute_rules
                if rule.field not in present]
    if problems:
        where = source if source == rules.name else f"{source} (rules '{rules.name}')"
        raise ValueError(f"{where}: attribute rules read columns the data does not have:\n"
                         + "\n".join(problems)
                         + f"\nColumns present: {columns}. Fix the rule's field or add the "
                         "column to the data.")


def _missing_field(rule: AttributeRule, columns: list[str]) -> str:
    close = difflib.get_close_matches(rule.field, columns, n=3)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f"  rule '{rule.name}': field '{rule.field}' is not a column{hint}"


# ----------------------------------------------------------------------- frames
def score_points(rules: RulesConfig, leads: pd.DataFrame,
                 events: pd.DataFrame | SnapshotEvents | None) -> PointsResult:
    """Score leads (or snapshots of leads) with a points system.

    Args:
        rules: The points system.
        leads: One row per scored lead or snapshot: ``lead_id``, the attribute columns
            the rules read and, when events are given, ``as_of`` (tz-aware UTC). The
            same lead may appear several times with different ``as_of``.
        events: Contract events frame (``lead_id``, ``timestamp`` tz-aware UTC,
            ``event_type``, optional ``detail``), the same already encoded for these
            rows (:class:`SnapshotEvents`, so a caller that also builds features encodes
            once), or None for table-shaped data: event rules then give 0. Only events
            strictly before a row's ``as_of`` count.

    Returns:
        Points, stage and per-rule trail, one row per row of ``leads`` (same order).

    Raises:
        ValueError: A rule reads a missing column, or a required column is missing or
            is not tz-aware timestamps.
    """
    check_rule_fields(rules, leads.columns, rules.name)
    columns = {rule.field: leads[rule.field] for rule in rules.attribute_rules}
    encoded = events
    if isinstance(events, pd.DataFrame):
        encoded = snapshot_events(leads, events) if rules.event_rules else None
    return points_from_arrays(rules, columns, len(leads), encoded)


def points_from_arrays(rules: RulesConfig, columns: Mapping[str, np.ndarray | pd.Series],
                       n_rows: int, events: SnapshotEvents | None, *,
                       prepared: PreparedRules | None = None) -> PointsResult:
    """Score rows from arrays: the path one lead of an API request takes (no pandas).

    Args:
        rules: The points system.
        columns: Field -> one value per row, for every field the attribute rules read.
        n_rows: Number of scored rows.
        events: The rows (as snapshots) and their events, encoded; None when there are
            no events (table shape): event rules then give 0.
        prepared: ``rules`` made ready for scoring a row at a time, for a caller that
            scores one row per call; None builds what it needs afresh.

    Returns:
        Points, stage and per-rule trail, one row per scored row.

    Raises:
        ValueError: ``prepared`` was built for another points system.
    """
    if prepared is None:
        prepared = PreparedRules(rules)
    elif prepared.config is not rules:
        raise ValueError(f"the prepared rules were built for '{prepared.config.name}', "
                         f"not for '{rules.name}'")
    if events is None or prepared.event_tables is None:
        event_points = np.zeros((n_rows, len(rules.event_rules)))
    else:
        event_points = event_rule_points(prepared.event_tables, events.pit, n_rows,
                                         events.event_types, events.event_details)
    return _result(rules, event_points, prepared.attribute_points(columns, n_rows),
                   prepared.names)


def _result(rules: RulesConfig, event_points: np.ndarray, attribute_points: np.ndarray,
            names: tuple[str, ...]) -> PointsResult:
    parts = (event_points, attribute_points)
    if rules.starting_points:  # every lead's first entry in the trail
        parts = (np.full((len(event_points), 1), float(rules.starting_points)), *parts)
    return PointsResult.from_trail(np.concatenate(parts, axis=1), names, rules)


# ------------------------------------------------------------------ scikit-learn
class PointsScorer(TransformerMixin, BaseEstimator):
    """The points system as a scikit-learn transformer for table-shaped data.

    ``transform`` gives each row's total points as one column, ``predict_stage`` its
    stage. Attribute rules read columns by name: a DataFrame's column names, or
    ``x0, x1, ...`` for arrays. Event rules give 0 (a table has no events).

    Args:
        rules: The points system; None scores 0 for everyone.

    Attributes:
        rules_: The rules in use (an empty points system when ``rules`` is None).
        n_features_in_: Number of columns seen in ``fit``.
        feature_names_in_: Column names seen in ``fit`` (only for DataFrames).
    """

    def __init__(self, rules: RulesConfig | None = None) -> None:
        self.rules = rules

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are data (is_null rules)
        tags.input_tags.string = True  # categorical columns are compared as text
        return tags

    def fit(self, X: pd.DataFrame | np.ndarray, y: object = None) -> PointsScorer:
        """Record the input columns and check that every rule's field is among them.

        Raises:
            ValueError: An attribute rule reads a column ``X`` does not have.
        """
        self._validated(X, reset=True)
        self.rules_ = self.rules or RulesConfig(name="no_rules", stage_thresholds={})
        check_rule_fields(self.rules_, self._names(), "PointsScorer")
        return self

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Total points per row, shape ``(n, 1)``."""
        return self.points_result(X).points[:, np.newaxis]

    def predict_stage(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Stage per row (plain strings) from the rules' stage thresholds."""
        check_is_fitted(self)
        if not self.rules_.stage_thresholds:
            raise ValueError("PointsScorer has no stage thresholds: pass rules= a "
                             "RulesConfig with stage_thresholds")
        return self.points_result(X).stage

    def points_result(self, X: pd.DataFrame | np.ndarray) -> PointsResult:
        """Points, stages and the per-rule trail of every row of ``X``."""
        check_is_fitted(self)
        X = self._validated(X, reset=False)
        position = {name: i for i, name in enumerate(self._names())}
        columns = {rule.field: (X.iloc[:, position[rule.field]] if isinstance(X, pd.DataFrame)
                                else X[:, position[rule.field]])
                   for rule in self.rules_.attribute_rules}
        n_rows = X.shape[0]
        return _result(self.rules_, np.zeros((n_rows, len(self.rules_.event_rules))),
                       attribute_rule_points(self.rules_.attribute_rules, columns, n_rows),
                       rule_names(self.rules_))

    def get_feature_names_out(self, input_features: Sequence[str] | None = None
                              ) -> np.ndarray:
        """The one output column's name, ``rule_points``.

        Raises:
            ValueError: ``input_features`` are not the columns the scorer was fitted on.
        """
        check_is_fitted(self)
        if input_features is not None:
            if len(input_features) != self.n_features_in_:
                raise ValueError(f"input_features should have length equal to the number "
                                 f"of features ({self.n_features_in_}), got "
                                 f"{len(input_features)}")
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and list(input_features) != list(fitted):
                raise ValueError(f"input_features is not equal to feature_names_in_ "
                                 f"{list(fitted)}")
        return np.asarray(["rule_points"], dtype=object)

    def _validated(self, X: pd.DataFrame | np.ndarray, reset: bool) -> pd.DataFrame | np.ndarray:
        if isinstance(X, pd.DataFrame):  # keep each column's dtype: no object array copy
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X
        return validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False)

    def _names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(name) for name in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]
