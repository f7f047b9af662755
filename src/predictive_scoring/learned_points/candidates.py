"""Candidate rules for a learned points table: one-point rules the selection picks from.

A *signal* is what one rule may count: an event type, an event type with one detail
(a page, a campaign kind), a type's other details, a set of values of a categorical
attribute, a range of a numeric attribute, or an attribute left empty. A signal comes
in *variants*: an event rule with or without a cap and a half-life from a small set;
an attribute's neighbouring values or ranges. Each candidate records which part of its
field it covers (its *atoms*), so the selection can keep the rules of one field apart:
no two rules of the table ever count the same event or the same value.

A lead with no event of a type, or with a value no rule names, gets 0 from that field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from predictive_scoring.config import AttributeRule, EventRule, NumberOrText
from predictive_scoring.features import FeatureSpec

OTHER_DETAILS = "__other_details__"
"""The atom of an event type's details that have no signal of their own."""
MISSING = "__missing__"
"""The atom of an empty attribute."""

OWN_EVENT_PATTERN = re.compile(r"(^|[^a-z])(send|sends|sent|deliver|delivered|delivery)"
                               r"([^a-z]|$)", re.IGNORECASE)
"""Event types the company itself causes (``email_send``, ``EMAIL_SENT``, ``Email
delivered``): by default they earn points only when they carry signal."""


@dataclass(frozen=True)
class Candidate:
    """A one-point rule the table may use, and what it covers.

    Attributes:
        rule: The rule with one point (an event rule's cap counts events).
        field: The event type or attribute column it reads.
        atoms: The parts of ``field`` it covers (event details, value positions, range
            bins, :data:`MISSING`); ``None`` covers the whole field.
        sources: The model input fields whose contributions say the model's direction
            for an attribute signal (the attribute); empty for an event signal, whose
            direction is measured by adding an event (:mod:`.effects`).
        own: An event the company sends itself.
        keys: The behaviour keys an event signal's events count under in the model's
            features (``(type, detail)``, detail None for the type's own key); empty for
            an attribute signal.
    """

    rule: EventRule | AttributeRule
    field: str
    atoms: frozenset[object] | None
    sources: tuple[str, ...]
    own: bool = False
    keys: tuple[tuple[str, str | None], ...] = ()

    def overlaps(self, other: Candidate) -> bool:
        """Whether both rules would count some of the same events or values."""
        if self.field != other.field or isinstance(self.rule, EventRule) != isinstance(
                other.rule, EventRule):
            return False
        if self.atoms is None or other.atoms is None:
            return True
        return bool(self.atoms & other.atoms)


@dataclass(frozen=True)
class CandidateSettings:
    """Which candidates are generated.

    Attributes:
        caps: Most events an event rule counts (None: no cap).
        half_lives_days: Half-lives an event rule may decay with (None: no decay).
        numeric_bins: Quantile bins per numeric attribute (ranges join neighbouring bins).
        max_set_values: Most values one categorical rule lists.
        min_share: A candidate must fire on at least this share of the rows.
        own_event_types: Event types the company sends itself; None: those whose name
            says so (:data:`OWN_EVENT_PATTERN`).
    """

    caps: tuple[int | None, ...] = (1, 3, 10, None)
    half_lives_days: tuple[int | None, ...] = (None, 7, 30, 90)
    numeric_bins: int = 10
    max_set_values: int = 8
    min_share: float = 0.005
    own_event_types: tuple[str, ...] | None = None


# ------------------------------------------------------------------------ events
def event_candidates(spec: FeatureSpec, details_seen: dict[str, list[str]],
                     settings: CandidateSettings) -> list[Candidate]:
    """Event signals: each type whatever its detail, each ``(type, detail)`` key of the
    model, and each type's other details, in every cap and half-life variant.

    Args:
        spec: The model's behaviour vocabulary.
        details_seen: Event type -> the details its training events carry.
        settings: Caps, half-lives and which types are the company's own.
    """
    paired: dict[str, list[str]] = {}
    for event_type, detail in spec.detail_keys:
        paired.setdefault(event_type, []).append(detail)
    signals = []
    for event_type in spec.event_types:
        own = is_own_event(event_type, settings.own_event_types)
        details = paired.get(event_type, [])
        signals.append((event_type, None, None,  # whatever the detail: the whole type
                        ((event_type, None), *((event_type, d) for d in details)), own))
        if details:
            rest = sorted(set(details_seen.get(event_type, ())) - set(details))
            if rest:
                signals.append((event_type, rest, frozenset([OTHER_DETAILS]),
                                ((event_type, None),), own))
            signals += [(event_type, detail, frozenset([detail]), ((event_type, detail),),
                         own) for detail in details]
    return [Candidate(EventRule(name=_variant_name(event_type, atoms, cap, half_life),
                                event_type=event_type, detail=detail, points=1, cap=cap,
                                half_life_days=half_life),
                      event_type, atoms, (), own, keys)
            for event_type, detail, atoms, keys, own in signals
            for half_life in settings.half_lives_days for cap in settings.caps]


def _variant_name(event_type: str, atoms: frozenset[object] | None, cap: int | None,
                  half_life: int | None) -> str:
    part = "any" if atoms is None else "|".join(sorted(map(str, atoms)))
    return f"{event_type}:{part}:cap={cap}:half_life={half_life}"


def is_own_event(event_type: str, own_event_types: Sequence[str] | None) -> bool:
    """Whether the company causes this event itself (a send, a delivery)."""
    if own_event_types is not None:
        return event_type in own_event_types
    return bool(OWN_EVENT_PATTERN.search(event_type.replace("_", " ")))


def details_by_type(events: pd.DataFrame) -> dict[str, list[str]]:
    """Event type -> the distinct non-empty details its events carry."""
    with_detail = events.loc[events["detail"].notna(), ["event_type", "detail"]]
    pairs = with_detail.drop_duplicates()
    return {str(t): sorted(str(d) for d in group["detail"])
            for t, group in pairs.groupby("event_type", observed=True)}


# -------------------------------------------------------------------- attributes
def categorical_candidates(column: str, values: pd.Series, contribution: np.ndarray,
                           settings: CandidateSettings) -> list[Candidate]:
    """Sets of a categorical attribute's values, and the attribute left empty.

    Values held by at least ``min_share`` of the rows are ordered by the model's mean
    contribution for them; a set is a run of neighbours in that order (so it groups
    values the model treats alike) of at most ``max_set_values`` values, short of all of
    them. Rarer values score 0.

    Args:
        column: The attribute.
        values: Its value per row.
        contribution: The model's contribution of the attribute per row (log-odds).
        settings: The rarity cut and the set size.
    """
    minimum = settings.min_share * len(values)
    present = values.notna().to_numpy()
    counts = values[present].value_counts()
    kept = counts[counts >= minimum]
    mean = pd.Series(contribution[present]).groupby(values[present].to_numpy()).mean()
    order = list(mean.reindex(kept.index).sort_values(kind="stable").index)
    candidates = [_value_set(column, order[run.start:run.stop])
                  for run in _runs(len(order), settings.max_set_values)]
    missing = len(values) - int(present.sum())
    if minimum <= missing <= len(values) - minimum:
        candidates.append(_missing(column))
    return candidates


def _runs(n: int, longest: int) -> list[range]:
    """Runs of neighbouring positions ``0..n-1``, at most ``longest`` long, short of all."""
    return [range(start, stop) for start in range(n)
            for stop in range(start + 1, min(n, start + longest) + 1) if stop - start < n]


def _value_set(column: str, values: list[object]) -> Candidate:
    plain = [plain_value(v) for v in values]
    rule = (AttributeRule(name=f"{column}={plain[0]}", field=column, op="eq", value=plain[0],
                          points=1) if len(plain) == 1 else
            AttributeRule(name=f"{column} in {plain}", field=column, op="in", value=plain,
                          points=1))
    return Candidate(rule, column, frozenset(map(str, values)), (column,))


def _missing(column: str) -> Candidate:
    return Candidate(AttributeRule(name=f"{column} missing", field=column, op="is_null",
                                   points=1), column, frozenset([MISSING]), (column,))


def numeric_candidates(column: str, values: pd.Series, settings: CandidateSettings
                       ) -> list[Candidate]:
    """Ranges of a numeric attribute, and the attribute left empty.

    The range cuts sit at the quantiles of the values (``numeric_bins`` bins), each moved
    to the roundest number that splits the values the same way; a range joins
    neighbouring bins, short of all of them. The lowest range reads ``lt``, the highest
    ``gte``, the others ``between`` (its upper bound below the next cut, so ranges never
    share a value).

    Args:
        column: The attribute.
        values: Its value per row.
        settings: Bins and the rarity cut.
    """
    minimum = settings.min_share * len(values)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(float)
    present = numbers[~np.isnan(numbers)]
    if present.size == 0:
        return []
    cuts = range_cuts(present, settings.numeric_bins)
    bins = np.searchsorted(cuts, present, side="right")
    held = np.bincount(bins, minlength=len(cuts) + 1)
    whole = bool(np.all(present == np.round(present)))
    candidates = []
    for run in _runs(len(cuts) + 1, len(cuts) + 1):
        if held[run.start:run.stop].sum() >= minimum:
            rule = _range_rule(column, cuts, run, present, whole)
            candidates.append(Candidate(rule, column, frozenset(run), (column,)))
    missing = len(numbers) - present.size
    if minimum <= missing <= len(numbers) - minimum:
        candidates.append(_missing(column))
    return candidates


def range_cuts(numbers: np.ndarray, bins: int) -> np.ndarray:
    """Increasing cuts between the quantile bins of ``numbers``, each the roundest number
    that splits them the same way (a cut ``c`` puts a value ``v`` above it when ``v >= c``).
    """
    distinct = np.unique(numbers)
    at = np.unique(np.quantile(numbers, np.arange(1, bins) / bins, method="lower"))
    at = at[at > distinct[0]]
    below = distinct[np.searchsorted(distinct, at) - 1]
    return np.array([round_number_in(low, high) for low, high in zip(below, at, strict=True)])


def round_number_in(low: float, high: float) -> float:
    """The roundest number in ``(low, high]``: fewest significant digits, then a multiple
    of 5 at that precision, then the one nearest ``high``."""
    if high <= low:
        raise ValueError(f"empty interval ({low}, {high}]")
    top = max(abs(low), abs(high))
    exponent = math.floor(math.log10(top)) if top > 0 else 0
    for digits in range(1, 17):
        step = 10.0 ** (exponent - digits + 1)
        first, last = math.floor(low / step) + 1, math.floor(high / step)
        if first <= last:
            fives = [k for k in range(last, max(first, last - 10) - 1, -1) if k % 5 == 0]
            k = fives[0] if fives else last
            return _clean(k * step)
    return high


def _clean(number: float) -> float:
    """``number`` without binary noise (``0.30000000000000004`` -> ``0.3``)."""
    return float(f"{number:.12g}")


def _range_rule(column: str, cuts: np.ndarray, run: range, numbers: np.ndarray,
                whole: bool) -> AttributeRule:
    low = None if run.start == 0 else plain_value(cuts[run.start - 1])
    if run.stop == len(cuts) + 1:
        return AttributeRule(name=f"{column}>={low}", field=column, op="gte", value=low,
                             points=1)
    high = cuts[run.stop - 1]
    if low is None:
        return AttributeRule(name=f"{column}<{plain_value(high)}", field=column, op="lt",
                             value=plain_value(high), points=1)
    upper = plain_value(high - 1 if whole and float(high).is_integer() else
                        _below(numbers, high))
    return AttributeRule(name=f"{column} in [{low}, {upper}]", field=column, op="between",
                         value=[low, upper], points=1)


def _below(numbers: np.ndarray, cut: float) -> float:
    """The roundest number at or above the largest value below ``cut`` and below ``cut``."""
    largest = float(numbers[numbers < cut].max())
    candidate = round_number_in(largest, cut)
    return candidate if candidate < cut else largest


def plain_value(value: object) -> NumberOrText:
    """A cell as the YAML scalar a rule compares with (whole floats as ints)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return int(value) if float(value).is_integer() else _clean(float(value))
    return str(value)
