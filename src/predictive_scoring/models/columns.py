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


def model_frame(frame: pd.DataFrame, columns: FeatureColumns) -> pd.DataFrame:
    """The model's input: categoricals as object text (NaN when missing), numbers float."""
    data = {c: frame[c].astype(object).where(frame[c].notna(), np.nan)
            for c in columns.categorical}
    data |= {c: pd.to_numeric(frame[c], errors="coerce").astype("float64")
             for c in columns.numeric}
    return pd.DataFrame(data, index=frame.index, columns=columns.all)
