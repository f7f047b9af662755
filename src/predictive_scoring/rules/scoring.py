"""Scoring rows with a points system: from contract frames, or from arrays (one lead of an
API request, with the rules prepared once)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from predictive_scoring.config import AttributeRule, RulesConfig
from predictive_scoring.features import SnapshotEvents, snapshot_events
from predictive_scoring.rules.attributes import attribute_rule_points, check_rule_fields
from predictive_scoring.rules.events import event_rule_points, event_rule_tables
from predictive_scoring.rules.trail import PointsResult, rule_names


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
    return PointsResult.from_parts(event_points, prepared.attribute_points(columns, n_rows),
                                   prepared.names, rules)

