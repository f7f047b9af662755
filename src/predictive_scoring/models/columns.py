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


def model_frame(frame: pd.DataFrame, columns: FeatureColumns,
                rows: np.ndarray | None = None) -> pd.DataFrame:
    """The model's input: categoricals as object text (NaN when missing), numbers float64.

    The numbers are written once into one float64 block, column by column (a
    column that is already float64 is copied, not parsed).

    Args:
        frame: Rows holding (at least) the model's columns.
        columns: The model's input columns.
        rows: Positions of the rows to take (all when None): taken column by column, so
            a slice of a large frame is built without a copy of the frame's rows first.
    """
    def values(name: str) -> pd.Series:
        column = frame[name]
        return column if rows is None else column.iloc[rows]

    index = frame.index if rows is None else frame.index[rows]
    numbers = np.empty((len(index), len(columns.numeric)), dtype=np.float64, order="F")
    for position, name in enumerate(columns.numeric):
        numbers[:, position] = _numbers(values(name))
    text = pd.DataFrame({c: _text(values(c)) for c in columns.categorical}, index=index)
    return pd.concat([text, pd.DataFrame(numbers, index=index, columns=list(columns.numeric),
                                         copy=False)], axis=1)


def _text(column: pd.Series) -> pd.Series:
    return column.astype(object).where(column.notna(), np.nan)


def _numbers(column: pd.Series) -> np.ndarray:
    """A column as float64 (NaN when missing or not a number)."""
    if column.dtype == np.float64:
        return column.to_numpy()
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
