"""The training reference every bundle stores, and each lead's model input as bins.

**The reference** (``scorer.metadata["monitoring"]``, :func:`training_reference`) is the
distribution of each model input and of the calibrated probability over the training
leads, as bins and their shares:

- a numeric input: up to :data:`NUMERIC_BINS` equal-frequency bins (cut at the deciles
  of its known training values; repeated cuts merged), plus *missing*;
- a categorical input: its :data:`TOP_CATEGORIES` most frequent training categories one
  bin each, every other category seen in training one ``other`` bin, plus *missing*; a
  category never seen in training is *unknown* (share 0 in the reference);
- the probability: deciles of the training leads' calibrated probability.

It also says when the model was trained, the latest moment its training examples
describe, and the target stage and horizon its labels used.

**Bins of a lead** (:class:`InputBinner`) are one character per model input, in the
reference's field order: ``0-9A-Za-z`` the bin's position, ``.`` missing, ``?`` a
category unknown to training. That string is all the prediction log keeps of a lead's
input: no values, only which training bin they fall in, and it reads back as a numpy
byte matrix in one call (a million rows in well under a second).

Light on purpose (numpy and pandas): training and the service's hot path import it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

METADATA_KEY = "monitoring"
"""Key of the training reference in ``scorer.metadata``."""
REFERENCE_VERSION = 1
NUMERIC_BINS = 10
TOP_CATEGORIES = 40
RARE_CATEGORIES = 1000
"""Categories seen in training beyond the top ones that are still known (the rest of a
category-rich field reads as unknown)."""
SYMBOLS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
MISSING, UNKNOWN = ".", "?"
_SYMBOL_BYTES = np.frombuffer(SYMBOLS.encode("ascii"), dtype=np.uint8)
_MISSING_CODE, _UNKNOWN_CODE = -1, -2
_SLOT_BYTES = np.frombuffer((SYMBOLS + MISSING + UNKNOWN).encode("ascii"), dtype=np.uint8)
_MISSING_SLOT, _UNKNOWN_SLOT = len(SYMBOLS), len(SYMBOLS) + 1
"""Encoding looks symbols up in one table: a bin's position, then missing and unknown."""


def category_text(value: Any) -> str | None:
    """A categorical value as the reference keys it: text, ``5.0`` as ``"5"``; None when
    missing (None, NaN, blank)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value)
    return text if text.strip() else None


def numeric_edges(values: np.ndarray, n_bins: int = NUMERIC_BINS) -> list[float]:
    """Cut points of up to ``n_bins`` equal-frequency bins of the known values (bin ``i``
    holds values in ``[edges[i-1], edges[i])``)."""
    known = values[~np.isnan(values)]
    if not len(known):
        return []
    cuts = np.quantile(known, np.arange(1, n_bins) / n_bins)
    edges = np.unique(cuts)
    return [float(edge) for edge in edges if edge > known.min()]


def numeric_bins(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Each value's bin (0..len(edges)), -1 when missing."""
    values = np.asarray(values, dtype=np.float64)
    bins = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    return np.where(np.isnan(values), _MISSING_CODE, bins)


def _shares(bins: np.ndarray, n_bins: int) -> tuple[list[float], float]:
    total = max(len(bins), 1)
    counts = np.bincount(bins[bins >= 0], minlength=n_bins)
    return (counts / total).tolist(), float((bins == _MISSING_CODE).sum() / total)


def _numeric_reference(name: str, values: np.ndarray) -> dict[str, Any]:
    edges = numeric_edges(values)
    shares, missing = _shares(numeric_bins(values, edges), len(edges) + 1)
    return {"name": name, "kind": "numeric", "edges": edges, "shares": shares,
            "missing": missing}


def _categorical_reference(name: str, values: Sequence[Any]) -> dict[str, Any]:
    texts = pd.Series([category_text(v) for v in values], dtype=object)
    counts = texts.dropna().value_counts(sort=True)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    top = [category for category, _ in ordered[:TOP_CATEGORIES]]
    rare = [category for category, _ in ordered[TOP_CATEGORIES:][:RARE_CATEGORIES]]
    binner = _CategoryBins(top, rare)
    shares, missing = _shares(binner.bins(texts.tolist()), len(top) + 1)
    return {"name": name, "kind": "categorical", "categories": top, "rare": rare,
            "shares": shares, "missing": missing}


def training_reference(features: pd.DataFrame, categorical: Sequence[str],
                       probability: np.ndarray, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The reference stored in the bundle.

    Args:
        features: Model input of (a sample of) the training leads, columns in the model's
            order.
        categorical: Which of its columns are categorical.
        probability: Calibrated probability of the training leads.
        facts: ``trained_at``, ``data_end`` (latest moment of the training examples, ISO,
            or None), ``target_stage`` and ``horizon_days`` (None for a table dataset).
    """
    chosen = set(categorical)
    fields = [_categorical_reference(name, features[name].tolist()) if name in chosen
              else _numeric_reference(name, features[name].to_numpy(np.float64))
              for name in features.columns]
    score = _numeric_reference("probability", np.asarray(probability, dtype=np.float64))
    return {"version": REFERENCE_VERSION, "rows": len(features), "fields": fields,
            "score": {"edges": score["edges"], "shares": score["shares"]}, **facts}


# ------------------------------------------------------------------ bins of leads
class _CategoryBins:
    def __init__(self, top: Sequence[str], rare: Sequence[str]) -> None:
        self.index = {category: i for i, category in enumerate(top)}
        self.other = len(top)
        self.index |= dict.fromkeys(rare, self.other)

    def bin(self, value: Any) -> int:
        code = self.index.get(value) if isinstance(value, str) else None
        if code is not None:
            return code
        text = category_text(value)
        if text is None:
            return _MISSING_CODE
        return self.index.get(text, _UNKNOWN_CODE)

    def bins(self, values: Sequence[Any]) -> np.ndarray:
        return np.fromiter((self.bin(v) for v in values), np.int64, len(values))

    def slot(self, value: Any) -> int:
        """The value's position in :data:`_SLOT_BYTES` (its symbol)."""
        code = self.bin(value)
        return _MISSING_SLOT if code == _MISSING_CODE else _UNKNOWN_SLOT if code < 0 else code


def codes_of(matrix: np.ndarray) -> np.ndarray:
    """Bytes of bin strings back to codes (-1 missing, -2 unknown, -3 unreadable)."""
    lookup = np.full(256, -3, dtype=np.int16)
    lookup[_SYMBOL_BYTES] = np.arange(len(SYMBOLS))
    lookup[ord(MISSING)], lookup[ord(UNKNOWN)] = _MISSING_CODE, _UNKNOWN_CODE
    return lookup[matrix]


def score_bin(probability: float, reference: Mapping[str, Any]) -> int:
    """The reference's probability bin of one score."""
    return int(np.searchsorted(reference["score"]["edges"], probability, side="right"))


@dataclass(frozen=True)
class InputBinner:
    """Each lead's model input as its bin string (built once per loaded model).

    Args:
        reference: The bundle's training reference.
        fields: The model's input columns, in order (``scorer.columns.all``): the
            matrix given to :meth:`encode` has them in this order.
    """

    reference: Mapping[str, Any]
    fields: Sequence[str]

    def __post_init__(self) -> None:
        position = {name: i for i, name in enumerate(self.fields)}
        numeric = [f for f in self.reference["fields"] if f["kind"] == "numeric"]
        widest = max((len(f["edges"]) for f in numeric), default=0)
        edges = np.full((len(numeric), max(widest, 1)), np.inf)
        for row, field in enumerate(numeric):
            edges[row, :len(field["edges"])] = field["edges"]
        edges = edges[None, :, :]
        order = [f["name"] for f in self.reference["fields"]]
        object.__setattr__(self, "_edges", edges)
        object.__setattr__(self, "_numeric", np.array([position[f["name"]] for f in numeric],
                                                      dtype=np.int64))
        object.__setattr__(self, "_numeric_slots", np.array(
            [order.index(f["name"]) for f in numeric], dtype=np.int64))
        object.__setattr__(self, "_categorical", tuple(
            (order.index(f["name"]), f["name"], _CategoryBins(f["categories"], f["rare"]))
            for f in self.reference["fields"] if f["kind"] == "categorical"))

    def encode(self, numbers: np.ndarray, categories: Mapping[str, Sequence[Any]]
               ) -> list[str]:
        """Bin strings of some leads (one lead costs a few dozen microseconds: a handful of
        numpy calls for every number at once, a dict lookup per category).

        Args:
            numbers: Model input rows, columns as ``fields`` (only the numeric ones are
                read; NaN is missing).
            categories: Categorical input -> each lead's value as sent.
        """
        n = len(numbers)
        codes = np.empty((n, len(self.reference["fields"])), dtype=np.intp)
        if len(self._numeric):
            values = numbers[:, self._numeric]
            bins = (values[:, :, None] >= self._edges).sum(axis=2)
            bins[np.isnan(values)] = _MISSING_SLOT
            codes[:, self._numeric_slots] = bins
        for slot, name, binner in self._categorical:
            codes[:, slot] = [binner.slot(value) for value in categories[name]]
        rows = _SLOT_BYTES[codes]
        return [row.tobytes().decode("ascii") for row in rows]
