"""The leakage guard: columns that give the outcome away because they are filled in after it.

Three signatures, each checked on the training rows (the test rows only for the AUC):

- **One column alone ranks the test leads almost perfectly** (test ROC-AUC above
  ``training.leakage_auc``).
- **Filled in for one class only**: an attribute present only on converted (or only on
  not converted) training examples.
- **Near-pure values cover much of the data.** A CRM's status or tag column that sales
  fills in after contact ("Closed won", "Disqualified") holds values whose leads convert
  at 97-99% or 1-3%. Such a column can score "only" 0.93 alone (its other values are
  mixed), yet its pure values settle the outcome for most leads. A value is *near pure*
  when at least :data:`PURE_HIGH` or at most :data:`PURE_LOW` of its training rows
  converted, and its minority outcome is :data:`ODDS_FACTOR` times rarer than overall
  (2% converting is ordinary where 3% convert, telling where 30% do), with enough rows that
  this is no accident (:data:`MIN_VALUE_ROWS`, and at least :data:`MIN_EXPECTED`
  converted *and* not converted rows expected at the overall rate). A categorical column
  is named when its near-pure values cover at least :data:`PURE_SHARE` of the training
  rows; a numeric column likewise, its values cut at their quantiles
  (:data:`NUMERIC_BINS`; a value many rows share, and missing values, groups of their
  own), which is how a number that alone separates almost perfectly shows.

Real signals never look like this: a genuine fit attribute (seniority, industry) shifts
the odds, it does not settle them for half of all leads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from predictive_scoring.models.columns import FeatureColumns

PURE_HIGH = 0.95
"""A value whose training leads converted at least this often is near-pure positive."""
PURE_LOW = 0.02
"""A value whose training leads converted at most this often is near-pure negative."""
PURE_SHARE = 0.5
"""Near-pure values covering this share of the training rows name the column."""
ODDS_FACTOR = 10
"""A near-pure value is also this many times rarer in its minority class than the data as
a whole: 2% converting is ordinary where 3% convert overall, telling where 30% do."""
MIN_VALUE_ROWS = 30
"""Fewer training rows than this never make a value near pure."""
MIN_EXPECTED = 5
"""A value is near pure only when, at the overall conversion rate, at least this many of
its rows would be expected to convert and this many not to: 0 of 30 rows converting says
nothing when 1 lead in 100 converts."""
NUMERIC_BINS = 10
"""Quantile bins a numeric column is cut into for the near-pure check."""
SHOWN_VALUES = 3
"""Near-pure values quoted in a warning (the largest)."""


def leakage_warnings(frame: pd.DataFrame, label: np.ndarray, rows: dict[str, np.ndarray],
                     columns: FeatureColumns, threshold: float) -> list[str]:
    """Warnings, one paragraph each, naming the columns that give the outcome away.

    Args:
        frame: The examples (one row per example) holding every model input column.
        label: 0/1 outcome per example.
        rows: Row positions of the ``train`` and ``test`` slices.
        columns: The model's input columns (behaviour features, computed from events
            before ``as_of``, are only checked for their AUC).
        threshold: A column alone above this test ROC-AUC is named.
    """
    warnings = []
    train, test = rows["train"], rows["test"]
    for column in columns.all:
        values = frame[column]
        categorical = column in columns.categorical
        auc = _single_column_auc(values.iloc[train], label[train], values.iloc[test],
                                 label[test], categorical)
        if auc > threshold:
            warnings.append(f"leakage: column '{column}' alone gives a test ROC-AUC of "
                            f"{auc:.3f}; it is probably filled in after the outcome")
        if column in columns.behaviour:
            continue
        filled = values.iloc[train].notna().to_numpy()
        by_class = [filled[label[train] == k].any() for k in (0, 1)]
        if by_class[0] != by_class[1]:
            which = "converted" if by_class[1] else "not converted"
            warnings.append(f"leakage: column '{column}' is filled in only for {which} "
                            "examples")
        elif not auc > threshold:  # NaN (one class in test) checks too
            pure = near_pure_values(_groups(values.iloc[train], categorical), label[train])
            if pure.rows.sum() >= PURE_SHARE * len(train):
                warnings.append(_near_pure_warning(column, pure, len(train),
                                                   float(label[train].mean())))
    return warnings


@dataclass(frozen=True)
class NearPure:
    """The near-pure values of one column on the training rows.

    Attributes:
        values: Each near-pure value (or numeric range) as text, largest first.
        rows: Training rows holding each.
        rate: Share of those rows that converted.
    """

    values: list[str]
    rows: np.ndarray
    rate: np.ndarray


@dataclass(frozen=True)
class Groups:
    """Each training row's value (or numeric range) for the near-pure check, coded.

    Attributes:
        codes: Each row's group, an index into ``names``.
        names: Each group's text, distinct.
    """

    codes: np.ndarray
    names: list[str]


def near_pure_values(groups: Groups, label: np.ndarray) -> NearPure:
    """The groups whose rows convert at least :data:`PURE_HIGH` or at most
    :data:`PURE_LOW` of the time, with enough rows; the largest first (ties in the order
    the groups first appear).

    Args:
        groups: The value (or numeric range) of each training row (:func:`_groups`).
        label: 0/1 outcome per training row.
    """
    base = float(label.mean()) if len(label) else 0.0
    n = len(groups.names)
    size = np.bincount(groups.codes, minlength=n)
    converted = np.bincount(groups.codes, weights=label, minlength=n)
    present, first = np.unique(groups.codes, return_index=True)
    order = present[np.argsort(first, kind="stable")]
    size, rate = size[order], converted[order] / size[order]
    enough = ((size >= MIN_VALUE_ROWS) & (size * base >= MIN_EXPECTED)
              & (size * (1 - base) >= MIN_EXPECTED))
    high = 1 - min(1 - PURE_HIGH, (1 - base) / ODDS_FACTOR)
    low = min(PURE_LOW, base / ODDS_FACTOR)
    pure = np.flatnonzero(enough & ((rate >= high) | (rate <= low)))
    pure = pure[np.argsort(-size[pure], kind="stable")]
    return NearPure([groups.names[order[i]] for i in pure], size[pure], rate[pure])


def _groups(values: pd.Series, categorical: bool) -> Groups:
    """Each row's value as text for the near-pure check, coded: categories as they are;
    numbers cut into quantile ranges, a value held by a bin's share of rows or more (a
    CRM's 0 for "no deal yet") a group of its own; missing values one group. Values of
    the same text are one group. Only the groups are text, not the rows (tens of millions
    of rows on Dask)."""
    if categorical:
        codes, uniques = pd.factorize(values, sort=False)
        names = ["(missing)", *(str(u) for u in uniques)]
        return _merged(codes + 1, names)
    numbers = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    known = ~np.isnan(numbers)
    counts = pd.Series(numbers[known]).value_counts()
    spikes = np.sort(counts.index[counts >= len(numbers) / NUMERIC_BINS].to_numpy())
    codes = np.zeros(len(numbers), dtype=np.int64)  # 0: missing
    spike_at = np.searchsorted(spikes, numbers)
    is_spike = known & (spike_at < len(spikes))
    is_spike[is_spike] = spikes[spike_at[is_spike]] == numbers[is_spike]
    codes[is_spike] = 1 + spike_at[is_spike]
    names = ["(missing)", *(f"= {x:g}" for x in spikes)]
    rest = known & ~is_spike
    if rest.any():
        edges = np.unique(np.quantile(numbers[rest], np.linspace(0, 1, NUMERIC_BINS + 1)))
        last = max(len(edges) - 2, 0)
        bins = np.clip(np.searchsorted(edges, numbers[rest], side="right") - 1, 0, last)
        codes[rest] = len(names) + bins
        names += [f"{edges[c]:g} to {edges[min(c + 1, len(edges) - 1)]:g}"
                  for c in range(last + 1)]
    return _merged(codes, names)


def _merged(codes: np.ndarray, names: list[str]) -> Groups:
    """Groups of the same text made one."""
    distinct, inverse = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    return Groups(inverse[codes], [str(n) for n in distinct])


def _near_pure_warning(column: str, pure: NearPure, n_train: int, base: float) -> str:
    shown = ", ".join(f"{value!r} ({rows:,} training rows, {rate:.1%} converted)" for
                      value, rows, rate in zip(pure.values[:SHOWN_VALUES],
                                               pure.rows[:SHOWN_VALUES],
                                               pure.rate[:SHOWN_VALUES], strict=True))
    more = (f" and {len(pure.values) - SHOWN_VALUES} more such value(s)"
            if len(pure.values) > SHOWN_VALUES else "")
    return (f"leakage: column '{column}' nearly settles the outcome: its values {shown}{more} "
            f"cover {pure.rows.sum() / n_train:.0%} of the training rows, against {base:.1%} "
            "converted overall; a status or "
            "tag filled in after the outcome (by sales, after contact) looks like this. "
            "Leave it out of the attributes (a table's drop_columns) unless it is known "
            "before the lead is scored")


def _single_column_auc(train: pd.Series, y_train: np.ndarray, test: pd.Series,
                       y_test: np.ndarray, categorical: bool) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_test)) < 2:
        return float("nan")
    if categorical:
        rates = pd.Series(y_train, index=train.to_numpy()).groupby(level=0).mean()
        score = test.map(rates).astype(float).fillna(float(y_train.mean())).to_numpy()
    else:
        numbers = pd.to_numeric(test, errors="coerce").astype(float)
        score = numbers.fillna(numbers.min() - 1 if numbers.notna().any() else 0).to_numpy()
    auc = roc_auc_score(y_test, score)
    return max(auc, 1 - auc)
