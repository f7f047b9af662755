"""The model bundle: a trained :class:`LeadScorer` as one MLflow pyfunc model that scores
raw leads, its input contract (raw leads with their events) and its signature.

Bundles are serialised with cloudpickle by reference to this package, so they load
wherever ``predictive-scoring`` is installed; like any pickle, load them only from a
registry or folder you trust.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import (
    AnyType,
    Array,
    ColSpec,
    DataType,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
)

from predictive_scoring.explain import score_explained
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.tracking.store import quiet_mlflow

BUNDLE_PATH = "model"
EVENTS_COLUMN = "events"
DISTRIBUTION = "predictive-scoring"
# Not declared by the project, but a bundle unpickles with the cloudpickle that pickled it.
SERIALISATION_REQUIREMENTS = ("cloudpickle",)


class LeadScoringModel(mlflow.pyfunc.PythonModel):
    """The pyfunc face of a :class:`LeadScorer`: raw leads in, scores out.

    Attributes:
        scorer: The scorer; ``loaded.unwrap_python_model().scorer`` skips the pyfunc
            input checks on a hot path.
    """

    def __init__(self, scorer: LeadScorer) -> None:
        self.scorer = scorer

    def load_context(self, context: Any) -> None:
        """Refuse a bundle trained on another version's features (see
        :meth:`LeadScorer.check_layout`) when it is loaded, not when it scores."""
        self.scorer.check_layout()

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Score raw leads.

        Args:
            context: Unused (the scorer carries everything).
            model_input: One row per lead: ``lead_id`` and attribute columns; events
                shape also ``created_at``, ``as_of`` (ISO text or timestamps, read as
                UTC) and ``events``, a list of ``{"timestamp", "event_type",
                "detail"}`` dicts per lead (empty or None when it has none).
            params: ``{"as_of": ...}`` gives the moment for rows without their own;
                ``{"reasons": k}`` adds fit vs engagement (grade, level, quadrant) and,
                for k > 0, the top k reasons up and down as sentences (0: fit vs
                engagement only; absent: scores only).

        Returns:
            The scorer's output, one row per input row in the same order.

        Raises:
            ValueError: ``reasons`` is not a whole number >= 0.
        """
        params = params or {}
        leads, events = raw_leads(model_input, self.scorer.shape, params.get("as_of") or None)
        reasons = _reasons_param(params.get("reasons"))
        scores = (self.scorer.score(leads, events) if reasons is None
                  else score_explained(self.scorer, leads, events, reasons))
        return scores.assign(lead_id=model_input["lead_id"].to_numpy())


def _reasons_param(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer() or number < 0:
        raise ValueError(f"params['reasons'] must be a whole number >= 0 (reasons per lead "
                         f"each way), not {value!r}")
    return int(number)


def raw_leads(model_input: pd.DataFrame, shape: str,
              as_of: str | pd.Timestamp | None = None) -> tuple[pd.DataFrame,
                                                                pd.DataFrame | None]:
    """Split a bundle's input into the scorer's leads and events frames.

    Rows are keyed by position, not ``lead_id``, so a lead sent twice (say at two
    moments) keeps its own events in each row.

    Args:
        model_input: See :meth:`LeadScoringModel.predict`.
        shape: ``table`` or ``events``.
        as_of: Scoring moment for rows whose ``as_of`` is missing.

    Returns:
        Leads (``lead_id`` replaced by the row position; events shape: tz-aware UTC
        ``created_at`` and ``as_of``) and the events frame (None for the table shape).

    Raises:
        ValueError: A required column or timestamp is missing or unreadable, naming the
            column and the rows.
    """
    _require(model_input, ["lead_id"] if shape == "table" else ["lead_id", "created_at"])
    leads = model_input.drop(columns=[EVENTS_COLUMN], errors="ignore").assign(
        lead_id=np.arange(len(model_input)))
    if shape == "table":
        return leads, None
    moments = (model_input["as_of"].astype(object) if "as_of" in model_input
               else pd.Series(None, index=model_input.index, dtype=object))
    if as_of is not None:
        moments = moments.where(moments.notna(), as_of)
    leads = leads.assign(created_at=_utc(model_input["created_at"], "created_at"),
                         as_of=_utc(moments, "as_of"))
    return leads, _events_frame(model_input.get(EVENTS_COLUMN, []))


def _require(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"model input lacks column(s) {missing}; it has {list(frame.columns)}")


def _utc(values: pd.Series | list[Any], column: str,
         rows: tuple[int, ...] | None = None) -> pd.Series:
    """Timestamps read as UTC; the message names the input rows missing or unreadable ones."""
    series = pd.Series(values, dtype=object)
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        shown = [f"row {rows[i] if rows else i}: {series.iloc[i]!r}" for i in bad[:5]]
        hint = " (or pass params={'as_of': ...})" if column == "as_of" else ""
        raise ValueError(f"{column} is missing or not an ISO 8601 timestamp in "
                         f"{len(bad)} place(s), e.g. {'; '.join(shown)}{hint}")
    return parsed


def _events_frame(cells: Iterable[Any]) -> pd.DataFrame:
    """The contract events frame from per-row lists of event dicts (row position as lead)."""
    rows = [(position, event.get("timestamp"), event.get("event_type"), event.get("detail"))
            for position, cell in enumerate(cells) if _has_events(cell)
            for event in cell]
    positions, timestamps, event_types, details = zip(*rows, strict=True) if rows else ([],) * 4
    missing_type = [row for row, kind in zip(positions, event_types, strict=True) if not kind]
    if missing_type:
        raise ValueError(f"events without an event_type in row(s) {missing_type[:10]}")
    return pd.DataFrame({
        "lead_id": np.asarray(positions, dtype=np.int64),
        "timestamp": _utc(list(timestamps), "events.timestamp", positions),
        "event_type": pd.Series(event_types, dtype=object),
        "detail": pd.Series(details, dtype=object),
    })


def _has_events(cell: Any) -> bool:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return False
    if not all(isinstance(event, Mapping) for event in cell):
        raise ValueError(f"each events cell must be a list of dicts with timestamp, "
                         f"event_type and detail; got {cell!r:.200}")
    return True


def raw_input_columns(scorer: LeadScorer) -> list[str]:
    """The raw columns the bundle reads: ids, times, events, attributes and rule fields."""
    times = ["created_at", "as_of", EVENTS_COLUMN] if scorer.shape == "events" else []
    return list(dict.fromkeys(["lead_id", *times, *scorer.raw_attributes()]))


def bundle_signature(scorer: LeadScorer, input_example: pd.DataFrame) -> ModelSignature:
    """The bundle's signature: raw-lead columns in, the scorer's output out.

    Input columns are typed ``any`` and only the ids (and ``created_at`` for events)
    are required: an inferred strict schema would refuse valid raw leads (a float where
    the example had ints, timestamps where it had text, None for no events), while the
    scorer already reads each column the one way it needs.
    """
    output = LeadScoringModel(scorer).predict(None, input_example)
    required = {"lead_id", "created_at"} if scorer.shape == "events" else {"lead_id"}
    event = Object([Property("timestamp", AnyType()), Property("event_type", DataType.string),
                    Property("detail", AnyType(), required=False)])
    inputs = Schema([ColSpec(Array(event) if name == EVENTS_COLUMN else AnyType(), name,
                             required=name in required)
                     for name in raw_input_columns(scorer)])
    reasons = ParamSpec("reasons", DataType.long, None)
    params = ParamSchema([ParamSpec("as_of", DataType.string, ""), reasons]
                         if scorer.shape == "events" else [reasons])
    with warnings.catch_warnings():
        # The integer score column never holds missing values; MLflow's hint says it might.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        outputs = infer_signature(model_output=output).outputs
    return ModelSignature(inputs, outputs, params)


def bundle_requirements() -> list[str]:
    """This distribution and its runtime requirements, pinned to the installed versions.

    Raises:
        RuntimeError: The project is not installed (a bundle could not load elsewhere).
    """
    try:
        declared = importlib.metadata.requires(DISTRIBUTION) or []
        names = [_requirement_name(r) for r in declared if "extra ==" not in r]
        names = [DISTRIBUTION, *names, *SERIALISATION_REQUIREMENTS]
        return [f"{name}=={importlib.metadata.version(name)}" for name in names]
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError(f"{exc.name} is not installed; run `pip install -e .` in the "
                           "project so the bundle can name its requirements") from None


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[;( ]", requirement, maxsplit=1)[0]


def log_bundle(scorer: LeadScorer, input_example: pd.DataFrame,
               registered_name: str | None) -> ModelInfo:
    """Log the scorer as one pyfunc bundle in the active run, and register it if asked.

    Args:
        scorer: The trained scorer.
        input_example: A few raw leads as :meth:`LeadScoringModel.predict` takes them.
        registered_name: Registered model to add a version to, or None.

    Returns:
        MLflow's model info (``model_uri``; ``registered_model_version`` if registered).

    Raises:
        RuntimeError: No run is active (wrap the call in :func:`start_run`).
    """
    quiet_mlflow()
    if mlflow.active_run() is None:
        raise RuntimeError("log_bundle needs an active run: call it inside "
                           "`with start_run(experiment, run_name):`")
    return mlflow.pyfunc.log_model(
        name=BUNDLE_PATH, python_model=LeadScoringModel(scorer), input_example=input_example,
        signature=bundle_signature(scorer, input_example),
        pip_requirements=bundle_requirements(), registered_model_name=registered_name)


