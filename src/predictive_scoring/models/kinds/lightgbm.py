"""LightGBM: gradient-boosted trees, the default model kind.

The pipeline is ``ColumnTransformer -> LGBMClassifier``: categoricals as ordinal codes
that LightGBM splits natively (unseen or missing categories become missing values),
numbers passed through. It stops early on the validation slice, trains data-parallel on
Dask (:mod:`.lightgbm_dask`), explains itself exactly with TreeSHAP as LightGBM computes it
(``pred_contrib=True``, the tree-path-dependent values; shap's ``TreeExplainer`` gives the
same numbers, see the tests and ``benchmarks/bench_explain.py``) and scores one row
through LightGBM's single-row fast path.
"""

from __future__ import annotations

import ctypes
import math
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from predictive_scoring.models.columns import MODEL_DTYPE
from predictive_scoring.models.kinds.base import (
    FIRST_STAGE_ROUNDS,
    Contributions,
    Decisions,
    ModelKind,
    Slice,
    Weights,
    check_width,
)

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

    from predictive_scoring.config import ModelConfig
    from predictive_scoring.models.columns import FeatureColumns

EARLY_STOPPING_KEY = "early_stopping_rounds"
"""The model config's parameter that is a fit argument, not a classifier parameter."""
ONE_THREAD_ROWS = 64
"""Below this many leads TreeSHAP runs on one thread: starting LightGBM's thread team
costs more than it saves for a lead or two, and a busy core stalls it (measured: one
lead ~0.35 ms on one thread, 0.6-11 ms with two on this shared 2-core machine)."""


# The capacity rule (:func:`capacity_params`): the config's values hold from this much data.
REFERENCE_POSITIVES = 2_000
"""Training positives from which the config's learning rate holds as written."""
MIN_LEAF_ROWS = 5
"""The smallest leaf the rule allows, however small the data."""
LEAF_SHARE = 20
"""On small data a leaf holds at least 1/20 of the training rows."""
POSITIVES_PER_LEAF = 10
"""On small data a tree has at most one leaf per 10 training positives."""
SMALL_DATA_RATE = 0.1
"""The learning rate the rule may raise a smaller configured rate to on little data."""
DECISION_RATE = 2.5
"""The first stage (:func:`first_stage`) learns at this multiple of the rate the capacity
rule gives (at most :data:`SMALL_DATA_RATE`): it is a starting point, and the fit on the
target decides where the model ends. On 100,000 simulated leads (seed 7) a first stage at
0.05 gave a model within 0.0001 test ROC-AUC of one at 0.02, in 707 first-stage rounds
instead of 1,765."""
MORE_DECISIONS = 1.1
"""The first stage runs when the training rows hold at least this many decisions per
target reached."""


class LightGBMKind(ModelKind):
    """Gradient-boosted trees (LightGBM)."""

    name = "lightgbm"
    trains_on_dask = True

    def build(self, model: ModelConfig, columns: FeatureColumns) -> Pipeline:
        """Ordinal-coded categoricals and passed-through numbers into LightGBM, the codes
        float32 as the numbers are (``models.columns.MODEL_DTYPE``): the classifier's
        input is one float32 block, which LightGBM reads without a copy."""
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan, dtype=MODEL_DTYPE)
        prep = ColumnTransformer([("categorical", encoder, list(columns.categorical)),
                                  ("numeric", "passthrough", list(columns.numeric))])
        return Pipeline([("prep", prep),
                         ("classifier", lgb.LGBMClassifier(**classifier_params(model)))])

    def fit(self, pipeline: Pipeline, model: ModelConfig, train: Slice,
            valid: Slice, weights: Weights | None = None) -> Pipeline:
        """Fit with the capacity the training slice allows, stopping early on the
        validation slice when the config asks for it."""
        return self.fit_scored(pipeline, model, train, valid, weights)[0]

    def fit_scored(self, pipeline: Pipeline, model: ModelConfig, train: Slice,
                   valid: Slice, weights: Weights | None = None,
                   others: Sequence[pd.DataFrame] = (), decided: Decisions | None = None
                   ) -> tuple[Pipeline, *tuple[np.ndarray, ...]]:
        """Fit as :meth:`fit` does; the raw probabilities of the training and validation
        rows are LightGBM's own running scores of them, taken at the best round as the
        training ends (:class:`BestRoundScores`), so neither slice is predicted again.
        The rows of ``others`` are handed to the booster at that moment
        (:func:`score_rows_at_best_round`): it scores their binned values, which is
        cheaper than a prediction of the raw rows and gives the same numbers.

        With ``decided``, the trees first learn which leads decide (:func:`first_stage`)
        and the fit on the target continues from them: one booster holding both."""
        prep, classifier = pipeline[:-1], pipeline[-1]
        classifier.set_params(**self.capacity(model, len(train[1]), int(np.sum(train[1]))))
        x_train = prep.fit_transform(*train)
        weighted = ({} if weights is None else
                    {"sample_weight": weights[0], "eval_sample_weight": [weights[1]]})
        x_valid = prep.transform(valid[0])
        init = None
        if decided is not None and learns_decisions(int(np.sum(train[1])),
                                                    int(np.sum(decided[0]))):
            init = first_stage(classifier, model, (x_train, decided[0]),
                               (x_valid, decided[1]), _categorical(pipeline), weighted)
        x_others = [prep.transform(x) for x in others]
        kept = BestRoundScores(model.params.get(EARLY_STOPPING_KEY), x_others)
        classifier.fit(x_train, train[1], eval_X=(x_valid,), eval_y=(valid[1],),
                       categorical_feature=_categorical(pipeline), callbacks=[kept],
                       init_model=init, **weighted)
        setattr(classifier, FIRST_STAGE_ROUNDS, init.num_trees() if init else 0)
        if kept.scores is None or callable(classifier.objective):
            # Training ended in another callback, or a custom objective's scores are
            # margins: predict the rows.
            return (pipeline, *(classifier.predict_proba(x)[:, 1]
                                for x in (x_train, x_valid, *x_others)))
        return pipeline, *kept.scores

    def capacity(self, model: ModelConfig, n_rows: int, n_positive: int) -> dict[str, Any]:
        """:func:`capacity_params` of the config's parameters."""
        return capacity_params(model.params, n_rows, n_positive)

    def owns(self, pipeline: Pipeline) -> bool:
        """A pipeline ending in an ``LGBMClassifier``."""
        return isinstance(pipeline[-1], lgb.LGBMClassifier)

    def contributions(self, pipeline: Pipeline, columns: FeatureColumns,
                      matrix: np.ndarray, reference: np.ndarray | None) -> Contributions:
        """TreeSHAP by LightGBM (``pred_contrib``); categoricals are single columns there,
        so each field has one value. Trees need no reference input."""
        booster = pipeline[-1].booster_
        check_width(matrix, booster.num_feature())
        threads = {"num_threads": 1} if len(matrix) < ONE_THREAD_ROWS else {}
        out = booster.predict(matrix, pred_contrib=True, **threads)
        base, values = out[:, -1], out[:, :-1]
        return Contributions(tuple(columns.all), base, values, base + values.sum(axis=1))

    def fast_predictor(self, pipeline: Pipeline, columns: FeatureColumns,
                       num_threads: int) -> BoosterRows | None:
        """The booster itself, when the pipeline is ordinal codes + passthrough."""
        prep = pipeline.named_steps.get("prep")
        if prep is None:
            return None
        encoder = prep.named_transformers_.get("categorical")
        if columns.categorical and not isinstance(encoder, OrdinalEncoder):
            return None
        categories = tuple(encoder.categories_) if columns.categorical else ()
        return BoosterRows(pipeline[-1].booster_, categories, len(columns.all), num_threads)

    def fit_on_dask(self, client: Client, pipeline: Pipeline, model: ModelConfig,
                    train: tuple[Any, Any], valid: tuple[Any, Any],
                    weights: tuple[Any, Any] | None = None,
                    decided: tuple[Any, Any] | None = None) -> Pipeline:
        """Data-parallel on the workers that hold the training rows
        (:func:`~predictive_scoring.models.kinds.lightgbm_dask.fit_on_workers`), stopping
        early on the whole validation slice: every worker evaluates a full copy of it
        (and of its weights), so all stop at the same round (workers judging their own
        share of it could disagree and hang). With decisions that say more than the
        labels, the trees first learn them, as on one machine (:func:`first_stage`)."""
        import dask.array as da

        from predictive_scoring.models.kinds.lightgbm_dask import Rows, fit_on_workers

        # counted, not read from the shape: the partitions' lengths may be unknown
        n_rows, n_positive, n_decided = (int(v) for v in da.compute(
            (train[1] >= 0).sum(), train[1].sum(),
            (train[1] if decided is None else decided[0]).sum()))
        params = {k: v for k, v in classifier_params(model).items() if k != "n_jobs"}
        params |= self.capacity(model, n_rows, n_positive)
        train_w, valid_w = weights if weights is not None else (None, None)

        def fit(labels: tuple[Any, Any], fit_params: dict[str, Any],
                init: lgb.Booster | None = None) -> lgb.LGBMClassifier:
            return fit_on_workers(client, fit_params, Rows(train[0], labels[0], train_w),
                                  Rows(valid[0], labels[1], valid_w),
                                  {"callbacks": early_stopping(model), "init_model": init,
                                   "categorical_feature": _categorical(pipeline)})

        init = None
        if decided is not None and learns_decisions(n_positive, n_decided):
            first = fit(decided, params | first_stage_params(model, n_rows, n_decided))
            init = best_rounds(first)
        fitted = fit((train[1], valid[1]), params, init)
        classifier = fitted.set_params(n_jobs=model.params.get("n_jobs"))
        setattr(classifier, FIRST_STAGE_ROUNDS, init.num_trees() if init else 0)
        pipeline.steps[-1] = ("classifier", classifier)
        return pipeline


def learns_decisions(n_positive: int, n_decided: int) -> bool:
    """Whether the training rows' decisions say more than their labels: at least
    :data:`MORE_DECISIONS` times as many (decisions that are all wins teach nothing the
    target does not)."""
    return n_decided >= MORE_DECISIONS * max(n_positive, 1)


def first_stage_params(model: ModelConfig, n_rows: int, n_decided: int) -> dict[str, Any]:
    """The first stage's capacity (:func:`capacity_params` of the decisions), its learning
    rate :data:`DECISION_RATE` times that rule's, at most :data:`SMALL_DATA_RATE` (a rate
    above it stays)."""
    params = capacity_params(model.params, n_rows, n_decided)
    rate = float(params["learning_rate"])
    return params | {"learning_rate": max(rate, min(rate * DECISION_RATE, SMALL_DATA_RATE))}


def best_rounds(classifier: lgb.LGBMClassifier) -> lgb.Booster:
    """A fitted classifier's booster cut to its best round (all of it without early
    stopping)."""
    best = classifier.best_iteration_ or None
    return lgb.Booster(model_str=classifier.booster_.model_to_string(num_iteration=best))


def first_stage(classifier: lgb.LGBMClassifier, model: ModelConfig,
                train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
                categorical: list[int], weighted: dict[str, Any]) -> lgb.Booster:
    """Trees that learn which leads decide within the horizon (won, or lost after
    ``decision_after``), stopped early on the validation rows' decisions and cut to their
    best round: the booster the fit on the target starts from (``init_model``).

    A decision is the evidence that a lead was buying, and there are several per win
    (lost deals are decisions too), so engagement is learnt from more examples; the trees
    that follow learn which deciders are won (fit, mostly). The capacity follows the
    decisions (:func:`first_stage_params`).
    """
    first = lgb.LGBMClassifier(**classifier.get_params() | first_stage_params(
        model, len(train[1]), int(np.sum(train[1]))))
    first.fit(*train, eval_X=(valid[0],), eval_y=(valid[1],), categorical_feature=categorical,
              callbacks=early_stopping(model), **weighted)
    return best_rounds(first)


def classifier_params(model: ModelConfig) -> dict[str, Any]:
    """The classifier's parameters: the config's, less early stopping (a fit argument).

    LightGBM also keeps every feature (``feature_pre_filter`` off): its pre-filter drops a
    feature that cannot be split with ``min_child_samples`` rows on each side *in the rows
    it bins*, which on a Dask worker is that worker's share only, and sparse event counts
    (a page seen by 1 lead in 50) then vanish from the distributed model. On one machine
    such a feature can rarely be split anyway, and one Dask worker fits the same trees.
    """
    params = {k: v for k, v in model.params.items() if k != EARLY_STOPPING_KEY}
    params["feature_pre_filter"] = False
    return params


def capacity_params(params: dict[str, Any], n_rows: int, n_positive: int) -> dict[str, Any]:
    """The tree parameters that fit a training slice of ``n_rows`` rows, ``n_positive`` of
    them positive; the config's values (``params``) are the ones for plenty of data and
    are never exceeded, except the learning rate, which rises on little data.

    - ``min_child_samples``: the config's, at most 1/:data:`LEAF_SHARE` of the rows and at
      least :data:`MIN_LEAF_ROWS` (a fixed leaf minimum above the data size makes a
      constant model);
    - ``num_leaves``: the config's, at most one leaf per :data:`POSITIVES_PER_LEAF`
      positives, at least 2;
    - ``min_data_in_bin``: the config's (LightGBM's 3), at most 1% of the rows, at least 1;
    - ``path_smooth``: the config's, in proportion to the leaf minimum when the rule
      lowers it (a leaf's value is pulled toward its parent's by ``path_smooth / (n +
      path_smooth)`` for its ``n`` rows, so a leaf of the minimum size is smoothed alike
      on any data size);
    - ``learning_rate``: the config's times ``sqrt(REFERENCE_POSITIVES / n_positive)``
      below :data:`REFERENCE_POSITIVES` positives, up to :data:`SMALL_DATA_RATE` (early
      stopping on a small validation slice needs each round to count).

    Returns:
        Parameter name -> value for the classifier's ``set_params``.
    """
    leaf_rows = min(int(params.get("min_child_samples", 20)),
                    max(MIN_LEAF_ROWS, n_rows // LEAF_SHARE))
    leaves = min(int(params.get("num_leaves", 31)), max(2, n_positive // POSITIVES_PER_LEAF))
    bin_rows = min(int(params.get("min_data_in_bin", 3)), max(1, n_rows // 100))
    smooth = float(params.get("path_smooth", 0.0)) * leaf_rows / max(
        int(params.get("min_child_samples", 20)), 1)
    rate = float(params.get("learning_rate", 0.1))
    scale = math.sqrt(REFERENCE_POSITIVES / max(n_positive, 1))
    if scale > 1:
        rate = min(rate * scale, max(rate, SMALL_DATA_RATE))
    return {"min_child_samples": leaf_rows, "num_leaves": leaves,
            "min_data_in_bin": bin_rows, "path_smooth": smooth, "learning_rate": rate}


def early_stopping(model: ModelConfig) -> list[Any]:
    """LightGBM's fit callbacks: early stopping on the validation slice when configured."""
    rounds = model.params.get(EARLY_STOPPING_KEY)
    return [lgb.early_stopping(rounds, verbose=False)] if rounds else []


class BestRoundScores:
    """A LightGBM fit callback: early stopping (when configured), and as the training
    ends, the booster rolled back to its best round and LightGBM's own probability of
    every training and validation row kept (:attr:`scores`), with that of the rows of
    ``others`` (:func:`score_rows_at_best_round`).

    LightGBM updates each row's score as it adds a tree (and takes the tree back out on a
    rollback), so these are the numbers ``predict_proba`` gives for the same rows, without
    a pass of every tree over them. The model is the one LightGBM's early stopping keeps
    (it drops the rounds after the best one as the fit ends).

    Args:
        rounds: Early stopping rounds, or None.
        others: Model input of rows to score as the fit ends (encoded as the training
            input is); they take no part in the fit.

    Attributes:
        scores: Probabilities of the training rows, the validation rows and the rows of
            each of ``others``, or None until the last round.
    """

    order = 30  # where LightGBM runs its own early stopping
    before_iteration = False

    def __init__(self, rounds: int | None, others: Sequence[np.ndarray] = ()) -> None:
        self._stop = lgb.early_stopping(rounds, verbose=False) if rounds else None
        self._others = list(others)
        self.scores: tuple[np.ndarray, ...] | None = None

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        try:
            if self._stop is not None:
                self._stop(env)
        except lgb.callback.EarlyStopException as stop:
            self._keep(env.model, env.iteration - stop.best_iteration)
            raise
        if env.iteration == env.end_iteration - 1:
            self._keep(env.model, 0)

    def _keep(self, booster: lgb.Booster, extra_rounds: int) -> None:
        for _ in range(extra_rounds):
            booster.rollback_one_iter()
        score_rows_at_best_round(booster, self._others)
        self._others = []
        self.scores = (*_running_probabilities(booster.eval_train),
                       *_running_probabilities(booster.eval_valid))


def score_rows_at_best_round(booster: lgb.Booster, inputs: Sequence[np.ndarray]) -> None:
    """Hand rows to a booster still training, as validation sets after its last round:
    LightGBM bins them with the training set's bins and adds up every tree's value for
    each (``LGBM_BoosterAddValidData``), the numbers ``predict`` gives for the raw rows
    (tested), in about half the time (``benchmarks/bench_train_speed.py``). Their
    probabilities are then read with the validation slice's. Added after the last
    round, they cannot steer the fit or its early stopping."""
    reference = booster.train_set
    for i, x in enumerate(inputs):
        # set_reference also hands them the booster a fit started from (init_model), whose
        # trees LightGBM adds to a dataset's scores through its init scores
        booster.add_valid(lgb.Dataset(x, params=reference.get_params()).set_reference(
            reference), f"scored_{i}")


def _running_probabilities(evaluate: Any) -> list[np.ndarray]:
    """The probabilities LightGBM holds for its training set (``Booster.eval_train``) or
    for each validation set (``eval_valid``), read through a custom metric (their
    documented way out)."""
    kept: list[np.ndarray] = []

    def keep(predictions: np.ndarray, _: lgb.Dataset) -> tuple[str, float, bool]:
        kept.append(np.array(predictions, dtype=np.float64))
        return "kept", 0.0, True

    evaluate(feval=keep)
    return kept


def _categorical(pipeline: Pipeline) -> list[int]:
    """Positions of the categorical columns in the classifier's input (they come first)."""
    return list(range(len(pipeline.named_steps["prep"].transformers[0][2])))


# ------------------------------------------------------------------ one row, fast
class BoosterRows:
    """The booster on rows of plain values: one row through the single-row fast path,
    several through ``Booster.predict`` (the same probabilities either way).

    Args:
        booster: The fitted booster.
        categories: Per categorical column, the fitted encoder's categories (its codes).
        n_features: Columns of a row.
        num_threads: LightGBM threads per call.
    """

    def __init__(self, booster: lgb.Booster, categories: tuple[Sequence[Any], ...],
                 n_features: int, num_threads: int) -> None:
        self.booster = booster
        self.categories = categories
        self.num_threads = num_threads
        self.single_row = SingleRowPredictor(booster, n_features, num_threads)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """The raw probability of each row (float64, columns in ``columns.all`` order)."""
        if len(rows) == 1:
            return self.single_row.predict(rows)
        return self.booster.predict(rows, num_threads=self.num_threads)


class SingleRowPredictor:
    """One row through LightGBM's single-row fast path (``LGBM_BoosterPredictForMatSingle
    RowFast``): the prediction settings are parsed once, at load, instead of on every call.

    ``Booster.predict`` spends ~70 us per call on its Python wrapper and on parsing its
    parameters, against a few microseconds for the trees of one row; an API request
    scores one lead. The output is the same probability ``Booster.predict`` gives (same
    predictor, same iterations). Calls are serialised by a lock (the fast config holds
    buffers of its own); the config is freed with this object.

    Args:
        booster: The fitted booster.
        n_features: Columns of a row.
        num_threads: LightGBM threads (one is right for one row).
    """

    PREDICT_NORMAL = 0
    FLOAT64 = 1

    def __init__(self, booster: lgb.Booster, n_features: int, num_threads: int) -> None:
        lib = lgb.basic._LIB
        self._predict = lib.LGBM_BoosterPredictForMatSingleRowFast
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.POINTER(ctypes.c_int64),
                                  ctypes.POINTER(ctypes.c_double)]
        self._predict.restype = ctypes.c_int
        handle = ctypes.c_void_p()
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        _check(lib.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(self.PREDICT_NORMAL), ctypes.c_int(0),
            ctypes.c_int(iterations), ctypes.c_int(self.FLOAT64),
            ctypes.c_int32(n_features), ctypes.c_char_p(f"num_threads={num_threads}".encode()),
            ctypes.byref(handle)))
        self._handle = handle
        # the row is copied into a buffer of our own, and the call's arguments are built
        # once: per call, building them cost more than the trees of one row
        self._row = np.empty((1, n_features), dtype=np.float64)
        self._length = ctypes.c_int64()
        self._out = ctypes.c_double()
        self._arguments = (handle, self._row.ctypes.data, ctypes.byref(self._length),
                           ctypes.byref(self._out))
        self._lock = threading.Lock()
        # the booster must outlive the config that points into it
        weakref.finalize(self, _free_fast_config, lib, handle, booster)

    def predict(self, row: np.ndarray) -> np.ndarray:
        """The probability for a ``(1, n_features)`` float64 row, as a 1-element array."""
        if row.shape != self._row.shape or row.dtype != np.float64:
            raise ValueError(f"expected one float64 row of {self._row.shape[1]} features, "
                             f"got {row.dtype} {row.shape}")
        with self._lock:
            self._row[...] = row
            _check(self._predict(*self._arguments))
            value = self._out.value
        return np.array([value])


def _check(code: int) -> None:
    if code != 0:
        raise lgb.basic.LightGBMError(lgb.basic._LIB.LGBM_GetLastError().decode("utf-8"))


def _free_fast_config(lib: ctypes.CDLL, handle: ctypes.c_void_p, booster: lgb.Booster) -> None:
    lib.LGBM_FastConfigFree(handle)
