"""Scoring raw leads given as plain Python values: the API's fast path, shared with batch.

An HTTP request holds a lead's attributes (a mapping, as the CRM sends them) and its
recent events (times, types and details). :class:`OnlineScorer` turns one lead, or a
small batch, into the model's input matrix with numpy only: categorical attributes are
coded by a dict lookup on the categories the model's fast path reads, numbers become
floats, and the behaviour features come from :func:`~predictive_scoring.features.featurise`,
the same function training and batch scoring call. The model kind's row predictor
(:meth:`~predictive_scoring.models.kinds.base.ModelKind.fast_predictor`; for LightGBM the
booster, one row through its single-row path) then gives the raw probability, the
scorer's :class:`~predictive_scoring.models.scorer.Calibrator` the calibrated one, and
:func:`~predictive_scoring.rules.points_from_arrays` the rules' points, exactly as
:meth:`LeadScorer.score <predictive_scoring.models.scorer.LeadScorer.score>` does for a
DataFrame (the tests hold the two to identical scores).

There is no pandas on this path: a one-row DataFrame costs 4-8 ms before the model even
runs, while the whole of this path costs a fraction of a millisecond for one lead. A
model kind without a row predictor (the logistic regression) has its rows go through
its sklearn pipeline as a small DataFrame built from the same values (a few
milliseconds per call).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring.config import NumericRange, ranges_from_metadata
from predictive_scoring.errors import LeadInputError
from predictive_scoring.features import NS_PER_DAY, SnapshotEvents, featurise
from predictive_scoring.models.columns import as_model_numbers, model_frame
from predictive_scoring.models.kinds.base import RowPredictor
from predictive_scoring.models.scorer import LeadScorer, score_0_100
from predictive_scoring.rules import PointsResult, PreparedRules, points_from_arrays
from predictive_scoring.stages import stage_for_values

TIME_FIELDS = ("created_at", "as_of")
NUMBER_TEXT = (r"^[ \t\n\r]*(?:[+-]?(?:[0-9]{1,200}(?:\.[0-9]{0,200})?|\.[0-9]{1,200})"
               r"(?:[eE][+-]?[0-9]{1,2})?)?[ \t\n\r]*$")
"""A number sent as text (CRMs export numbers so): decimal, at most two exponent digits,
so always finite; blank is missing. ASCII classes only, so a JSON Schema ``pattern``
(ECMA-262) and Python read it alike (the API documents it)."""
_NUMBER_TEXT = re.compile(NUMBER_TEXT)
LARGEST_FLOAT = sys.float_info.max
CATEGORY_NUMBERS = (-(2**63), 2**64 - 1)
"""A number sent for a categorical attribute must be a 64-bit integer's value (a code or
an id): a larger one cannot be answered back in JSON."""


@dataclass(frozen=True)
class RawLead:
    """One lead as an API request gives it.

    Attributes:
        lead_id: The CRM's id (any text).
        attributes: Field -> value (text, number, bool or None); fields the scorer does
            not read are ignored, fields it reads and that are absent count as missing.
        created_at: Creation time, int ns since the epoch (UTC); events shape only.
        as_of: Moment to score at, int ns since the epoch (UTC); events shape only.
        event_times: Time of each recent event, int ns since the epoch (UTC).
        event_types: Type of each event (open strings: the CRM's activity names).
        event_details: Detail of each event (for page views the page), or None.
    """

    lead_id: str
    attributes: Mapping[str, Any]
    created_at: int | None = None
    as_of: int | None = None
    event_times: Sequence[int] = ()
    event_types: Sequence[str] = ()
    event_details: Sequence[str | None] = ()


@dataclass(frozen=True)
class OnlineScores:
    """Scores of a few leads, in the order given.

    Attributes:
        lead_ids: The leads' ids.
        model_output: The classifier's raw probability (before calibration).
        probability: Calibrated conversion probability.
        score: ``probability`` in percent, rounded (0-100).
        suggested_stage: Stage from the model's probability thresholds.
        points: The rules' points, stages and per-rule trail.
        matrix: The classifier's input rows (with a row predictor, its matrix:
            categorical codes then numbers, in ``scorer.columns.all`` order); explanations
            read it (``explain.contributions_from_matrix``).
        features: Model input by field (categoricals as sent, numbers as read), for the
            values quoted in reasons (``explain.reasons``).
        ignored_fields: Per lead, the attributes given that the scorer does not read.
        age_beyond_training: Per lead, whether it is older than any lead the model was
            trained on (:meth:`LeadScorer.beyond_training`; False for a table).
    """

    lead_ids: list[str]
    model_output: np.ndarray
    probability: np.ndarray
    score: np.ndarray
    suggested_stage: np.ndarray
    points: PointsResult
    matrix: np.ndarray
    features: Mapping[str, np.ndarray] = field(default_factory=dict)
    ignored_fields: list[list[str]] = field(default_factory=list)
    age_beyond_training: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


class FeatureValues(Mapping[str, np.ndarray]):
    """Model input by field over the scored rows: categoricals as sent (None when
    missing), numbers sliced from the model input. Both are read on access: reasons read
    a few of the ~200 fields, and scoring without reasons reads none."""

    def __init__(self, leads: Sequence[RawLead], categorical: Sequence[str],
                 model_input: np.ndarray, positions: Mapping[str, int]) -> None:
        self._leads = leads
        self._categorical = frozenset(categorical)
        self._read: dict[str, np.ndarray] = {}
        self._model_input = model_input
        self._positions = positions

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._categorical:
            return self._model_input[:, self._positions[name]]
        if name not in self._read:
            self._read[name] = _objects((_category_value(lead.attributes.get(name))
                                         for lead in self._leads), len(self._leads))
        return self._read[name]

    @property
    def model_input(self) -> np.ndarray:
        """The rows as the scoring built them, columns in ``scorer.columns.all`` order
        (numbers as read; categoricals as the row predictor's codes, NaN without one)."""
        return self._model_input

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


class OnlineScorer:
    """A :class:`LeadScorer` prepared for scoring raw leads without pandas.

    Build it once per loaded model (it asks the model's kind for its row predictor and
    reads the categories that predictor codes); it holds no state that changes while
    scoring, so threads may share it.

    Args:
        scorer: The trained scorer (from a bundle).
        num_threads: Threads the row predictor uses per call; one is fastest for a few
            rows on a busy machine and leaves the other cores to the other requests.

    Attributes:
        predictor: The model kind's row predictor, or None (rows go through the pipeline).
    """

    def __init__(self, scorer: LeadScorer, num_threads: int = 1) -> None:
        self.scorer = scorer
        self.num_threads = num_threads
        columns = scorer.columns
        behaviour = scorer.feature_spec.feature_names if scorer.feature_spec else []
        self._numeric_attributes = tuple(c for c in columns.numeric if c not in behaviour)
        position = {name: i for i, name in enumerate(columns.all)}
        self._positions = position
        self._numeric_positions = _index([position[c] for c in self._numeric_attributes])
        self._behaviour_positions = _index([position[c] for c in behaviour])
        self._reads = frozenset(scorer.raw_attributes())
        self.ranges: dict[str, NumericRange] = ranges_from_metadata(scorer.metadata)
        self._rules = PreparedRules(scorer.rules)
        numeric = {c: j for j, c in enumerate(self._numeric_attributes)}
        self._rule_fields = tuple((field, numeric.get(field)) for field in dict.fromkeys(
            rule.field for rule in scorer.rules.attribute_rules))
        self.predictor: RowPredictor | None = scorer.kind.fast_predictor(
            scorer.pipeline, columns, num_threads)
        # per categorical column, category -> the predictor's code
        self._coding = (tuple(zip(columns.categorical,
                                  _category_codes(self.predictor.categories), strict=True))
                        if self.predictor is not None else ())

    @property
    def fast(self) -> bool:
        """Whether scoring goes straight to the model kind's row predictor (no pandas)."""
        return self.predictor is not None

    def check(self, lead: RawLead) -> None:
        """Refuse a lead the scorer cannot read.

        Raises:
            LeadInputError: A numeric attribute is not a finite number or is outside its
                range, a categorical one is a list, a mapping or a number beyond 64 bits,
                or (events shape) ``created_at`` / ``as_of`` is missing or the lead was
                created after ``as_of``.
        """
        for column in self._numeric_attributes:
            number = _number(lead.attributes.get(column), column)
            allowed = self.ranges.get(column)
            if allowed is not None and allowed.outside(number):
                raise LeadInputError(column, f"is {number:g}; it {allowed.describe()}")
        for column in self.scorer.columns.categorical:
            _single_value(lead.attributes.get(column), column)
        if self.scorer.shape == "events":
            for name in TIME_FIELDS:
                if getattr(lead, name) is None:
                    raise LeadInputError(name, "is required by this model (it scores leads "
                                         "with their events as of a moment)")
            if lead.created_at > lead.as_of:
                raise LeadInputError("created_at", "is after as_of: the lead did not exist "
                                     "yet at the moment to score")

    def score(self, leads: Sequence[RawLead], *, checked: bool = False) -> OnlineScores:
        """Score leads, checking each first unless ``checked``.

        Args:
            leads: The leads.
            checked: Every lead already passed :meth:`check` (a batch checks its leads
                one by one to set the bad ones aside, then scores the rest).

        Returns:
            Scores in the order given.

        Raises:
            LeadInputError: A lead fails :meth:`check` (check them first to score the
                others of a batch).
        """
        if not checked:
            for lead in leads:
                self.check(lead)
        events = self._encoded_events(leads)
        numbers = self._numbers(leads)
        model_input = self._matrix(leads, numbers, events)
        features = self._feature_values(leads, model_input)
        if self.predictor is None:  # what pipeline.predict_proba does, keeping its input
            frame = model_frame(pd.DataFrame(dict(features)), self.scorer.columns)
            matrix = np.asarray(self.scorer.pipeline[:-1].transform(frame), dtype=np.float64)
            raw = self.scorer.pipeline[-1].predict_proba(matrix)[:, 1]
        else:
            matrix = model_input
            raw = self.predictor.predict(matrix)
        probability = self.scorer.calibrator(raw)
        return OnlineScores(
            lead_ids=[lead.lead_id for lead in leads],
            model_output=raw,
            probability=probability,
            score=score_0_100(probability),
            suggested_stage=stage_for_values(probability, self.scorer.stage_thresholds),
            points=points_from_arrays(self.scorer.rules, self._rule_columns(leads, numbers),
                                      len(leads), events,
                                      prepared=self._rules),
            matrix=matrix,
            features=features,
            ignored_fields=[[name for name in lead.attributes if name not in self._reads]
                            for lead in leads],
            age_beyond_training=self._beyond_training(leads),
        )

    def _beyond_training(self, leads: Sequence[RawLead]) -> np.ndarray:
        """Whether each lead is older than any lead the model was trained on."""
        if self.scorer.shape != "events":
            return np.zeros(len(leads), dtype=bool)
        ages = np.fromiter(((lead.as_of - lead.created_at) / NS_PER_DAY for lead in leads),
                           np.float64, len(leads))
        return self.scorer.beyond_training(ages)

    # ------------------------------------------------------------------ pieces
    def _encoded_events(self, leads: Sequence[RawLead]) -> SnapshotEvents | None:
        if self.scorer.shape != "events":
            return None
        counts = [len(lead.event_times) for lead in leads]
        total = sum(counts)
        return SnapshotEvents(
            snapshot_lead=np.arange(len(leads), dtype=np.int64),
            snapshot_as_of=np.fromiter((lead.as_of for lead in leads), np.int64, len(leads)),
            event_lead=np.repeat(np.arange(len(leads), dtype=np.int64), counts),
            event_time=np.fromiter(chain.from_iterable(lead.event_times for lead in leads),
                                   np.int64, total),
            event_types=_objects(chain.from_iterable(lead.event_types for lead in leads),
                                 total),
            event_details=_objects(chain.from_iterable(lead.event_details for lead in leads),
                                   total),
        )

    def _numbers(self, leads: Sequence[RawLead]) -> np.ndarray:
        """Numeric attributes, shape ``(leads, numeric attributes)``."""
        out = np.empty((len(leads), len(self._numeric_attributes)), dtype=np.float64)
        for i, lead in enumerate(leads):
            for j, column in enumerate(self._numeric_attributes):
                out[i, j] = _number(lead.attributes.get(column), column)
        return out

    def _matrix(self, leads: Sequence[RawLead], numbers: np.ndarray,
                events: SnapshotEvents | None) -> np.ndarray:
        """Model input rows; categoricals as the row predictor's codes (NaN without one).

        The values are the model's float32 ones (:data:`MODEL_DTYPE`, as a batch's model
        input holds them), in a float64 array (the row predictor's input)."""
        columns = self.scorer.columns
        matrix = np.full((len(leads), len(columns.all)), np.nan, dtype=np.float64)
        if self._coding:
            matrix[:, :len(columns.categorical)] = [
                [_code(codes, lead.attributes.get(column)) for column, codes in self._coding]
                for lead in leads]
        matrix[:, self._numeric_positions] = numbers
        if events is not None and self.scorer.feature_spec is not None:
            created = np.fromiter((lead.created_at for lead in leads), np.int64, len(leads))
            tenure = (events.snapshot_as_of - created) / NS_PER_DAY
            matrix[:, self._behaviour_positions] = featurise(self.scorer.feature_spec, events,
                                                             tenure)
        return as_model_numbers(matrix).astype(np.float64)

    def _feature_values(self, leads: Sequence[RawLead],
                        model_input: np.ndarray) -> FeatureValues:
        """Model input by field: categoricals as sent (None when missing), numbers."""
        return FeatureValues(leads, self.scorer.columns.categorical, model_input,
                             self._positions)

    def _rule_columns(self, leads: Sequence[RawLead],
                      numbers: np.ndarray) -> dict[str, np.ndarray]:
        """Each rule field's values; numeric model attributes as the numbers read
        (as batch scoring reads them), other fields as sent."""
        return {field: (numbers[:, j] if j is not None else
                        _objects((lead.attributes.get(field) for lead in leads), len(leads)))
                for field, j in self._rule_fields}


def _category_codes(categories: tuple[Sequence[Any], ...]) -> tuple[dict[Any, float], ...]:
    """Per categorical column, category -> its code (its position among ``categories``).

    Numbers are also keyed by their text (a CRM may send ``5`` for the category ``"5"``);
    the missing-value category is left out, so missing and unknown values both become
    NaN, as ``OrdinalEncoder(handle_unknown="use_encoded_value")`` gives.
    """
    tables = []
    for column in categories:
        table: dict[Any, float] = {}
        for code, category in enumerate(column):
            if _category_value(category) is not None:
                table[category] = float(code)
        tables.append(table)
    return tuple(tables)


def _code(codes: Mapping[Any, float], value: Any) -> float:
    code = codes.get(value)  # a known category as sent (the table holds no missing ones)
    if code is not None:
        return code
    value = _category_value(value)
    if value is None:
        return math.nan
    code = codes.get(value)
    if code is None and not isinstance(value, str):
        code = codes.get(_text(value))
    return math.nan if code is None else code


def _category_value(value: Any) -> Any:
    """A categorical cell: None when missing (None, NaN, blank text)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})
_NUMBERS = frozenset({int, float})


def _single_value(value: Any, column: str) -> None:
    if type(value) in _NUMBERS and (  # NaN passes: it is missing
            value < CATEGORY_NUMBERS[0] or value > CATEGORY_NUMBERS[1]):
        raise LeadInputError(column, f"is the number {_shown(value)}, beyond 64 bits; send "
                             "a category as text")
    if type(value) in _SCALARS:  # what JSON gives, without the slower abstract checks
        return
    if isinstance(value, Mapping | list | tuple):
        raise LeadInputError(column, f"must be a single value, not a "
                             f"{'mapping' if isinstance(value, Mapping) else 'list'}")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any, column: str) -> float:
    """A numeric attribute as a finite float (NaN when missing), as batch scoring reads it.

    Text must be a decimal number (:data:`NUMBER_TEXT`): ``"nan"``, ``"Infinity"`` or
    ``"1e999"`` are refused, as are integers beyond the float range.
    """
    if value is None:
        return math.nan
    if isinstance(value, float):
        if math.isinf(value):
            raise LeadInputError(column, f"is not a finite number: {_shown(value)}")
        return float(value)  # NaN: missing, as in a file
    if isinstance(value, int) and not isinstance(value, bool):
        if -LARGEST_FLOAT <= value <= LARGEST_FLOAT:  # exact: no rounding in the comparison
            return float(value)
        raise LeadInputError(column, f"is {_shown(value)}, beyond the range of numbers "
                             f"(about ±{LARGEST_FLOAT:.1e})")
    if isinstance(value, str):
        if not _NUMBER_TEXT.fullmatch(value):
            raise LeadInputError(column, f"is not a finite number in decimal notation: "
                                 f"{_shown(value)}")
        return float(value) if value.strip(" \t\n\r") else math.nan
    raise LeadInputError(column, f"is not a number: {_shown(value)}")


def _shown(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 200:  # repr has a digit limit
        return f"an integer of about {math.ceil(value.bit_length() * math.log10(2))} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _index(positions: list[int]) -> slice | np.ndarray:
    """Columns as a slice when they are consecutive (a cheaper assignment), else an array."""
    if positions and positions == list(range(positions[0], positions[0] + len(positions))):
        return slice(positions[0], positions[0] + len(positions))
    return np.array(positions, dtype=np.int64)


def _objects(values: Any, size: int) -> np.ndarray:
    out = np.empty(size, dtype=object)
    out[:] = list(values) if size else []
    return out
