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
    """The model's input: categoricals as object text (NaN when missing), numbers float.

    Args:
        frame: Rows holding (at least) the model's columns.
        columns: The model's input columns.
        rows: Positions of the rows to take (all when None): taken column by column, so
            a slice of a large frame is built without a copy of the frame's rows first.
    """
    def values(name: str) -> pd.Series:
        column = frame[name]
        return column if rows is None else column.iloc[rows]

    data = {c: _text(values(c)) for c in columns.categorical}
    data |= {c: pd.to_numeric(values(c), errors="coerce").astype("float64")
             for c in columns.numeric}
    index = frame.index if rows is None else frame.index[rows]
    return pd.DataFrame(data, index=index, columns=columns.all)


def _text(column: pd.Series) -> pd.Series:
    return column.astype(object).where(column.notna(), np.nan)
