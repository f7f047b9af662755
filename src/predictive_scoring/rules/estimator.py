"""The points system as a scikit-learn transformer for table-shaped data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from predictive_scoring.config import RulesConfig
from predictive_scoring.rules.attributes import attribute_rule_points, check_rule_fields
from predictive_scoring.rules.trail import PointsResult, rule_names


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
        return PointsResult.from_parts(
            np.zeros((n_rows, len(self.rules_.event_rules))),
            attribute_rule_points(self.rules_.attribute_rules, columns, n_rows),
            rule_names(self.rules_), self.rules_)

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
