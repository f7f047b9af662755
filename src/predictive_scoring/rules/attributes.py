"""Attribute rules: comparisons on a lead field or table column, read as numbers, text or
missing the way CRM exports write them, and the check that every rule's field exists."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import cached_property, partial

import numpy as np
import pandas as pd

from predictive_scoring.config import AttributeRule, NumberOrText, RulesConfig

_FACTORIZE_FROM = 512
"""Columns at least this long are converted per distinct value, not per cell."""


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


