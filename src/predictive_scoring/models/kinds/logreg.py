"""Logistic regression: the linear benchmark on the same features.

The pipeline is ``ColumnTransformer -> LogisticRegression``: one-hot categoricals with an
infrequent bucket, numbers squashed with arcsinh, imputed with their median plus a
missing-value indicator, and standardised.

Contributions are exact and linear: ``coef * (x - reference)`` per classifier input
column, where ``reference`` is the mean classifier input of the training rows (stored
with the model at train time); the one-hot columns of a categorical and the value plus
missing indicator of a number are summed back to their raw field, and
``base = intercept + coef . reference``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn import linear_model
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from predictive_scoring.models.kinds.base import (
    Contributions,
    ModelKind,
    Slice,
    Weights,
    check_width,
)

if TYPE_CHECKING:
    from predictive_scoring.config import ModelConfig
    from predictive_scoring.models.columns import FeatureColumns

MISSING_CATEGORY = "__missing__"
MIN_CATEGORY_ROWS = 20
"""Categories seen in fewer training rows share the infrequent bucket."""


class LogisticRegressionKind(ModelKind):
    """Logistic regression on one-hot categoricals and standardised numbers."""

    name = "logreg"

    def build(self, model: ModelConfig, columns: FeatureColumns) -> Pipeline:
        """One-hot categoricals, squashed and standardised numbers, a logistic regression."""
        one_hot = Pipeline([
            ("fill", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
            ("encode", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                     min_frequency=MIN_CATEGORY_ROWS, sparse_output=False)),
        ])
        numbers = Pipeline([
            ("squash", FunctionTransformer(np.arcsinh, feature_names_out="one-to-one")),
            ("fill", SimpleImputer(strategy="median", add_indicator=True,
                                   keep_empty_features=True)),
            ("scale", StandardScaler()),
        ])
        prep = ColumnTransformer([("categorical", one_hot, list(columns.categorical)),
                                  ("numeric", numbers, list(columns.numeric))])
        return Pipeline([("prep", prep),
                         ("classifier", linear_model.LogisticRegression(**model.params))])

    def fit(self, pipeline: Pipeline, model: ModelConfig, train: Slice,
            valid: Slice, weights: Weights | None = None) -> Pipeline:
        """Fit on the training slice (the solver runs to convergence: no early stopping).

        No capacity rule is needed: scikit-learn's penalty ``||w||^2 / 2`` is weighed
        against the *sum* of the examples' losses, so the same ``C`` regularises more,
        relative to the data, the fewer (or the lighter) the training examples are.
        """
        prep, classifier = pipeline[:-1], pipeline[-1]
        classifier.fit(prep.fit_transform(*train), train[1],
                       sample_weight=None if weights is None else weights[0])
        return pipeline

    def owns(self, pipeline: Pipeline) -> bool:
        """A pipeline ending in a ``LogisticRegression``."""
        return isinstance(pipeline[-1], linear_model.LogisticRegression)

    def reference_input(self, matrix: np.ndarray) -> np.ndarray:
        """The mean classifier input: contributions are measured from the average lead."""
        return matrix.mean(axis=0)

    def contributions(self, pipeline: Pipeline, columns: FeatureColumns,
                      matrix: np.ndarray, reference: np.ndarray | None) -> Contributions:
        """The linear terms from the reference input, summed back to their raw fields."""
        classifier = pipeline[-1]
        coef = classifier.coef_[0]
        check_width(matrix, len(coef))
        if reference is None:
            raise ValueError("this logistic-regression model has no reference input for "
                             "explanations (the mean training row, stored with the model at "
                             "train time): retrain it")
        values = ((matrix - reference) * coef) @ _field_membership(pipeline, columns)
        base = float(classifier.intercept_[0] + coef @ reference)
        return Contributions(tuple(columns.all), np.full(len(matrix), base), values,
                             matrix @ coef + classifier.intercept_[0])


def _field_membership(pipeline: Pipeline, columns: FeatureColumns) -> np.ndarray:
    """0/1 matrix (classifier input columns x raw fields)."""
    fields = _column_fields(pipeline, columns)
    membership = np.zeros((len(fields), len(columns.all)))
    membership[np.arange(len(fields)), fields] = 1.0
    return membership


def _column_fields(pipeline: Pipeline, columns: FeatureColumns) -> np.ndarray:
    """Raw field index of each column the preprocessor outputs.

    Categoricals: one column per kept category of each field, plus one for its
    infrequent bucket (scikit-learn's OneHotEncoder order). Numbers: one column per
    field, then a missing indicator per field that had missing values in training.
    """
    prep = pipeline.named_steps["prep"]
    n_categorical = len(columns.categorical)
    fields: list[int] = []
    if n_categorical:
        encoder = prep.named_transformers_["categorical"].named_steps["encode"]
        infrequent = getattr(encoder, "infrequent_categories_", [None] * n_categorical)
        for i, (categories, rare) in enumerate(zip(encoder.categories_, infrequent,
                                                   strict=True)):
            n_rare = 0 if rare is None else len(rare)
            fields += [i] * (len(categories) - n_rare + (n_rare > 0))
    numeric = range(n_categorical, len(columns.all))
    if len(numeric):
        indicator = prep.named_transformers_["numeric"].named_steps["fill"].indicator_
        flagged = [] if indicator is None else list(indicator.features_)
        fields += list(numeric) + [n_categorical + j for j in flagged]
    return np.asarray(fields, dtype=np.int64)
