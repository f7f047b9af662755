"""The model's input: which columns it reads, which group (fit or engagement) each belongs
to, and the frame every model kind is fitted on and scores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from predictive_scoring.config import Attributes, FeatureGroups
from predictive_scoring.features import FeatureSpec


@dataclass(frozen=True)
class FeatureColumns:
    """The model's input columns and which group (fit or engagement) each belongs to.

    Attributes:
        categorical: Categorical attribute columns.
        numeric: Numeric attribute columns, then behaviour features.
        groups: Column -> ``fit`` or ``engagement``.
        behaviour: The behaviour features (computed from events; the rest are attributes).
    """

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    groups: dict[str, str] = field(default_factory=dict)
    behaviour: tuple[str, ...] = ()

    @property
    def all(self) -> list[str]:
        """Every input column, categorical first."""
        return [*self.categorical, *self.numeric]


def feature_columns(attributes: Attributes, spec: FeatureSpec | None,
                    declared: FeatureGroups | None = None) -> FeatureColumns:
    """Attributes are fit unless ``declared`` lists them as engagement; behaviour features
    are engagement."""
    behaviour = tuple(spec.feature_names) if spec else ()
    engaged = set(declared.engagement) if declared else set()
    groups = {c: "engagement" if c in engaged else "fit"
              for c in [*attributes.categorical, *attributes.numeric]}
    groups |= {c: "engagement" for c in behaviour}
    return FeatureColumns(tuple(attributes.categorical),
                          (*attributes.numeric, *behaviour), groups, behaviour)


MODEL_DTYPE = np.float32
"""The model reads its numbers as float32, on every path (training on one machine or on
Dask, batch, one lead): LightGBM bins and predicts float32 without a copy, and the model
input takes half the memory of float64. Counts stay exact (below 2**24); days and other
measures keep about 7 significant digits; a finite number beyond float32's range is read
as float32's largest (:func:`as_model_numbers`), never as infinity."""
LARGEST_MODEL_NUMBER = float(np.finfo(MODEL_DTYPE).max)


def as_model_numbers(values: np.ndarray) -> np.ndarray:
    """Numbers as the model reads them: beyond float32's range clipped to its largest
    magnitude (an infinity would make a logistic model's contributions infinite, which no
    JSON answer can carry), NaN kept; float32 values rounded from the float64 ones."""
    values = np.asarray(values)
    if values.dtype == MODEL_DTYPE:
        return values
    return np.clip(values, -LARGEST_MODEL_NUMBER, LARGEST_MODEL_NUMBER).astype(MODEL_DTYPE)


def numbers_block(n_rows: int, columns: FeatureColumns) -> np.ndarray:
    """An empty :data:`MODEL_DTYPE` block for the model's numeric columns, stored column
    by column: :func:`model_frame` holds its numbers in it.

    Its columns :attr:`FeatureColumns.behaviour` (the last ones, see
    :func:`behaviour_block`) can be written first, by ``features.featurise``'s ``out``.
    """
    return np.empty((n_rows, len(columns.numeric)), dtype=MODEL_DTYPE, order="F")


def behaviour_block(numbers: np.ndarray, columns: FeatureColumns) -> np.ndarray:
    """The behaviour features' columns of a :func:`numbers_block` (a view, stored column by
    column): :func:`feature_columns` puts them last among the numbers, in order.

    Raises:
        ValueError: The columns do not end with the behaviour features.
    """
    n = len(columns.behaviour)
    if tuple(columns.numeric[len(columns.numeric) - n:]) != tuple(columns.behaviour):
        raise ValueError("the model's numeric columns do not end with its behaviour features")
    return numbers[:, len(columns.numeric) - n:]


def model_frame(frame: pd.DataFrame, columns: FeatureColumns,
                rows: np.ndarray | None = None,
                numbers: np.ndarray | None = None) -> pd.DataFrame:
    """The model's input: categoricals as object text (NaN when missing), numbers as
    :data:`MODEL_DTYPE`.

    The numbers are written once into one :func:`numbers_block`, column by column (a
    column that is already a float is copied, not parsed).

    Args:
        frame: Rows holding (at least) the model's columns.
        columns: The model's input columns.
        rows: Positions of the rows to take (all when None): taken column by column, so
            a slice of a large frame is built without a copy of the frame's rows first.
        numbers: A :func:`numbers_block` of the rows whose behaviour columns are already
            written (:func:`behaviour_block`): the frame gives the other columns, and the
            block becomes the frame's numbers (no copy). None: every column from ``frame``.
    """
    def values(name: str) -> pd.Series:
        column = frame[name]
        return column if rows is None else column.iloc[rows]

    index = frame.index if rows is None else frame.index[rows]
    given: tuple[str, ...] = ()
    if numbers is None:
        numbers = numbers_block(len(index), columns)
    else:
        if numbers.shape != (len(index), len(columns.numeric)):
            raise ValueError(f"numbers has shape {numbers.shape}; the rows need "
                             f"{(len(index), len(columns.numeric))}")
        given = columns.behaviour
    for position, name in enumerate(columns.numeric[:len(columns.numeric) - len(given)]):
        numbers[:, position] = as_model_numbers(_numbers(values(name)))
    text = pd.DataFrame({c: _text(values(c)) for c in columns.categorical}, index=index)
    return pd.concat([text, pd.DataFrame(numbers, index=index, columns=list(columns.numeric),
                                         copy=False)], axis=1)


def _text(column: pd.Series) -> pd.Series:
    """A column as object text, NaN where missing (one conversion)."""
    return pd.Series(column.to_numpy(dtype=object, na_value=np.nan), index=column.index,
                     dtype=object, name=column.name)


def _numbers(column: pd.Series) -> np.ndarray:
    """A column as float64 or float32 (NaN when missing or not a number)."""
    if column.dtype in (np.float64, np.float32):
        return column.to_numpy()
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
