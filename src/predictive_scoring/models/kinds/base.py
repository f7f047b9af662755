"""The protocol of a model kind: what training, explanations, one-lead scoring and the Dask
engine ask of an estimator, and the two answers they share (contributions, a row
predictor).

A kind builds a scikit-learn ``Pipeline`` whose steps are ``prep`` (a ``ColumnTransformer``
of the model's input columns, categorical first) and ``classifier``; the pipeline's
``predict_proba`` is the raw probability the calibrator reads. Everything else a kind
knows about its estimator (how it is fitted, how its exact contributions are computed,
whether it has a faster path for a few rows, whether it trains on Dask) stays in its
module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from distributed import Client
    from sklearn.pipeline import Pipeline

    from predictive_scoring.config import ModelConfig
    from predictive_scoring.models.columns import FeatureColumns

Slice = tuple[pd.DataFrame, np.ndarray]
"""Model input rows and their 0/1 labels."""
Weights = tuple[np.ndarray, np.ndarray]
"""Per-row weights of the training slice and of the validation slice."""
Decisions = tuple[np.ndarray, np.ndarray]
"""Whether each training and each validation row's lead decided (won, or lost after
``SnapshotConfig.decision_after``) within the horizon, 0/1."""
FIRST_STAGE_ROUNDS = "first_stage_rounds_"
"""A fitted classifier's attribute, set by a kind that learns the decisions first: how many
of its first rounds learnt them (0: none did)."""


@dataclass(frozen=True)
class Contributions:
    """Per-field contributions of a batch of leads, in log-odds.

    Attributes:
        fields: Raw model input fields (``scorer.columns.all``, in that order).
        base: ``(n,)`` expected raw output (log-odds, before calibration).
        values: ``(n, len(fields))`` contribution of each raw field.
        raw_output: ``(n,)`` the model's raw output; equals ``base + values.sum(1)``.
    """

    fields: tuple[str, ...]
    base: np.ndarray
    values: np.ndarray
    raw_output: np.ndarray


class RowPredictor(Protocol):
    """A kind's fast path for a few rows built from plain values (an API request's lead):
    no pandas, no pipeline.

    Attributes:
        categories: Per categorical column, its categories in code order: the predictor
            reads a category as its position, a missing or unknown one as NaN.
    """

    categories: tuple[Sequence[Any], ...]

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """The raw probability of each row of the classifier's input (float64, columns in
        ``columns.all`` order, categoricals as their codes)."""
        ...


class ModelKind(ABC):
    """One kind of estimator behind the model: how it is built, fitted and explained.

    Attributes:
        name: The kind's name in model configs and on the command line.
        trains_on_dask: Whether :meth:`fit_on_dask` trains it data-parallel on a cluster.
    """

    name: ClassVar[str]
    trains_on_dask: ClassVar[bool] = False

    @abstractmethod
    def build(self, model: ModelConfig, columns: FeatureColumns) -> Pipeline:
        """Preprocessor and classifier as one pipeline, not yet fitted."""

    @abstractmethod
    def fit(self, pipeline: Pipeline, model: ModelConfig, train: Slice,
            valid: Slice, weights: Weights | None = None) -> Pipeline:
        """Fit the pipeline on ``train``; ``valid`` is there for early stopping.

        The kind fits the data it is given: hyper-parameters whose right value depends on
        the training slice's size (:meth:`capacity`) are set from it before fitting.

        Args:
            pipeline: From :meth:`build`.
            model: Its config.
            train: Training input and labels.
            valid: Validation input and labels.
            weights: Per-row weights of the training and validation rows (a lead's
                snapshots share one unit of weight), or None for equal weights.

        Returns:
            The same pipeline, fitted.
        """

    def capacity(self, model: ModelConfig, n_rows: int, n_positive: int) -> dict[str, Any]:
        """The hyper-parameters this kind sets from the size of the training slice, over
        the config's (none by default). A pure function of its arguments.

        Args:
            model: The model config (its values are the ones for plenty of data).
            n_rows: Training rows.
            n_positive: Training rows labelled 1.
        """
        return {}

    def fit_scored(self, pipeline: Pipeline, model: ModelConfig, train: Slice,
                   valid: Slice, weights: Weights | None = None,
                   others: Sequence[pd.DataFrame] = (), decided: Decisions | None = None
                   ) -> tuple[Pipeline, *tuple[np.ndarray, ...]]:
        """Fit as :meth:`fit` does, with the fitted pipeline's raw probability of the
        training and validation rows (what calibration and the stage thresholds read) and
        of each frame in ``others`` (rows the run scores anyway: the test slice, the
        population the stage thresholds are matched on). ``others`` never touch the fit.

        This default predicts every slice after the fit; a kind whose fit already holds
        those numbers, or can get them more cheaply, returns them instead. ``decided``
        (the training and validation rows' decisions, ``SnapshotConfig.decision_after``)
        is for a kind that can learn them first (LightGBM); this default fits the target
        alone.

        Returns:
            The fitted pipeline, then the raw probability of each training row, of each
            validation row and of each row of every frame in ``others`` (in their order).
        """
        pipeline = self.fit(pipeline, model, train, valid, weights)
        return (pipeline, *(pipeline.predict_proba(x)[:, 1]
                            for x in (train[0], valid[0], *others)))

    @abstractmethod
    def owns(self, pipeline: Pipeline) -> bool:
        """Whether this kind built the (fitted) pipeline."""

    @abstractmethod
    def contributions(self, pipeline: Pipeline, columns: FeatureColumns,
                      matrix: np.ndarray, reference: np.ndarray | None) -> Contributions:
        """Exact contributions of each raw field to each row's raw output (log-odds):
        ``base + values.sum(1) == raw_output``.

        Args:
            pipeline: The fitted pipeline.
            columns: Its input columns (the raw fields, in order).
            matrix: ``pipeline[:-1].transform(features)`` as float64, one row per lead.
            reference: :meth:`reference_input` of the training rows, as stored with the
                model (None when the kind needs none, or none was stored).

        Raises:
            ValueError: The matrix has the wrong number of columns, or the kind needs a
                reference input and none was given.
        """

    def reference_input(self, matrix: np.ndarray) -> np.ndarray | None:
        """What contributions are measured from, computed at train time from (a sample
        of) the training rows' classifier input; None when the kind needs nothing."""
        return None

    def fast_predictor(self, pipeline: Pipeline, columns: FeatureColumns,
                       num_threads: int) -> RowPredictor | None:
        """A faster path for a few rows than the pipeline, or None (rows then go through
        the pipeline as a small DataFrame)."""
        return None

    def fit_on_dask(self, client: Client, pipeline: Pipeline, model: ModelConfig,
                    train: tuple[Any, Any], valid: tuple[Any, Any],
                    weights: tuple[Any, Any] | None = None,
                    decided: tuple[Any, Any] | None = None) -> Pipeline:
        """Fit the classifier data-parallel on a Dask cluster (``trains_on_dask`` kinds).

        Args:
            client: A connected Dask client.
            pipeline: The pipeline with its preprocessor fitted (on every training row's
                categories) and its classifier not yet fitted.
            model: The model config.
            train: The training slice's classifier input and labels, as Dask arrays
                partitioned over the workers.
            valid: The whole validation slice's classifier input and labels, each a Dask
                array of one block.
            weights: The training and validation rows' weights (as in :meth:`fit`),
                Dask arrays blocked as ``train``'s and ``valid``'s labels, or None for
                equal weights.
            decided: The training and validation rows' decisions (as in
                :meth:`fit_scored`), Dask arrays blocked as the labels, or None.

        Returns:
            The pipeline with its classifier fitted (a local estimator that pickles into
            a bundle like one fitted on one machine).

        Raises:
            ValueError: The kind does not train on Dask.
        """
        raise ValueError(f"--engine dask does not train {self.name} models")


def check_width(matrix: np.ndarray, expected: int) -> None:
    """Refuse a classifier input of the wrong width.

    Raises:
        ValueError: Naming both widths.
    """
    if matrix.shape[1] != expected:
        raise ValueError(f"the model input has {matrix.shape[1]} columns; the classifier "
                         f"reads {expected} (build it with pipeline[:-1].transform)")
