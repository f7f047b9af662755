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

The modules: :mod:`.trail` (the result and its audit trail), :mod:`.events` and
:mod:`.attributes` (the two kinds of rule), :mod:`.scoring` (frames and arrays in, a
result out) and :mod:`.estimator` (the scikit-learn face).
"""

from predictive_scoring.rules.attributes import attribute_rule_points, check_rule_fields
from predictive_scoring.rules.estimator import PointsScorer
from predictive_scoring.rules.events import EventRuleTables, event_rule_points, event_rule_tables
from predictive_scoring.rules.scoring import PreparedRules, points_from_arrays, score_points
from predictive_scoring.rules.trail import PointsResult, rule_names

__all__ = ["EventRuleTables", "PointsResult", "PointsScorer", "PreparedRules",
           "attribute_rule_points", "check_rule_fields", "event_rule_points",
           "event_rule_tables", "points_from_arrays", "rule_names", "score_points"]
