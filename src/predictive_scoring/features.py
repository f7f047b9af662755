"""Point-in-time behaviour features: the ONE code path for training, scoring and the API.

Everything here is a pure function of one group of leads' rows, encoded as numpy arrays:
no pandas on the hot path, no Python loop per lead, so the same function featurises
10M events in one call, one Dask partition, or one lead inside an HTTP request in a few
microseconds. Only events with ``timestamp < as_of`` are ever read (no look-ahead).

Per snapshot ``(lead, as_of)`` and per *key* (an event type, or an ``(event type,
detail)`` pair such as ``page_view.pricing``) the features are counts in each window
(``windows_days``, e.g. 7 / 30 / 90 days, plus all time) and the days since the last
such event (NaN when there was none), plus the lead's tenure.

Every event counts under exactly one key: its ``(type, detail)`` pair when the pair is
in the vocabulary, else its type (so ``n_page_view_*`` counts the *other* page visits),
else ``__other__``. No feature adds keys up: a total of all activity would let visits
that say nothing about buying (a job seeker's careers pages) move the score through the
totals that buyers' activity drives.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from predictive_scoring.config import FeatureConfig

NS_PER_DAY = 86_400 * 10**9
OTHER_KEY = "__other__"


ColumnKind = Literal["tenure", "count", "since"]


@dataclass(frozen=True)
class BehaviourColumn:
    """One behaviour feature: what it measures, over which window, of which key.

    Attributes:
        name: The column's name (``tenure_days``, ``n_page_view.pricing_7d``,
            ``days_since_email_open``...).
        kind: ``tenure`` (days from the lead's creation to as_of), ``count`` (the key's
            events in the window) or ``since`` (days since the key's last event; NaN when
            there was none).
        window: Count window in days; None for all time (and for tenure and since).
        key: The ``(event type, detail)`` counted; detail None for a type's own key, and
            ``(__other__, None)`` for the types without a key of their own. None for tenure.
        key_index: The key's position in ``FeatureSpec.keys`` (-1 for tenure).
        others: The key is a type's own key while some of the type's details have keys
            of their own, so it counts that type's *other* events.
    """

    name: str
    kind: ColumnKind
    window: int | None = None
    key: tuple[str, str | None] | None = None
    key_index: int = -1
    others: bool = False


Placement = slice | np.ndarray
"""Columns of the feature matrix: a slice when they are evenly spaced (a cheaper write)."""


@dataclass(frozen=True)
class FeatureSpec:
    """The fitted vocabulary of behaviour keys plus the window settings, and the one table
    of behaviour columns (:attr:`columns`) that feature names, the matrix's layout and
    the explanation sentences all read.

    Attributes:
        event_types: Event types with their own columns; the rest pool into ``__other__``.
        detail_keys: ``(event_type, detail)`` pairs with their own columns.
        windows_days: Count windows in days (all-time counts are always added).
    """

    event_types: tuple[str, ...]
    detail_keys: tuple[tuple[str, str], ...]
    windows_days: tuple[int, ...]

    def __getstate__(self) -> dict[str, object]:
        """Only the vocabulary is pickled (into bundles, to Dask workers); the table and
        the lookups below are rebuilt from it by the code that reads them."""
        return {name: getattr(self, name) for name in ("event_types", "detail_keys",
                                                       "windows_days")}

    # The table and lookups are cached: one API request would otherwise rebuild them (a
    # regex per key) on every call, which cost more than the features themselves.
    @functools.cached_property
    def keys(self) -> tuple[tuple[str, str | None], ...]:
        """Every key, in column order: the event types (``__other__`` last of them), then
        the ``(type, detail)`` pairs."""
        types = ((t, None) for t in (*self.event_types, OTHER_KEY))
        return (*types, *self.detail_keys)

    @functools.cached_property
    def key_names(self) -> tuple[str, ...]:
        """Column stems of :attr:`keys` (``page_view``, ``page_view.pricing``)."""
        return tuple(_column_safe(t if d is None else f"{t}.{d}") for t, d in self.keys)

    @functools.cached_property
    def columns(self) -> tuple[BehaviourColumn, ...]:
        """The behaviour columns, in the feature matrix's order: tenure, then per key its
        counts in each window and all time, and the days since its last event."""
        paired = {t for t, _ in self.detail_keys}
        columns = [BehaviourColumn("tenure_days", "tenure")]
        for index, (key, stem) in enumerate(zip(self.keys, self.key_names, strict=True)):
            others = key[1] is None and key[0] in paired
            columns += [BehaviourColumn(f"n_{stem}_{_window_name(window)}", "count", window,
                                        key, index, others)
                        for window in (*self.windows_days, None)]
            columns.append(BehaviourColumn(f"days_since_{stem}", "since", None, key, index,
                                           others))
        return tuple(columns)

    @property
    def feature_names(self) -> list[str]:
        """Names of the columns :func:`behaviour_matrix` returns, in order."""
        return list(self._names)

    def column(self, name: str) -> BehaviourColumn | None:
        """The behaviour column called ``name``, or None when no column is."""
        return self._by_name.get(name)

    @functools.cached_property
    def _names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @functools.cached_property
    def _by_name(self) -> dict[str, BehaviourColumn]:
        return {column.name: column for column in self.columns}

    @functools.cached_property
    def placement(self) -> tuple[Placement, tuple[Placement, ...], Placement]:
        """Where :func:`behaviour_matrix` writes each measure, read from :attr:`columns`:
        the tenure column, per count window (``windows_days``, then all time) the column
        of each key (in :attr:`keys` order), and each key's days-since column.

        Raises:
            ValueError: Some column is not placed, or placed twice (a table this function
                cannot fill).
        """
        def at(kind: ColumnKind, window: int | None = None) -> Placement:
            positions = np.full(len(self.keys), -1, dtype=np.int64)
            for position, column in enumerate(self.columns):
                if column.kind == kind and column.window == window:
                    positions[column.key_index] = position
            return _placement(positions)

        tenure = [i for i, c in enumerate(self.columns) if c.kind == "tenure"]
        counts = tuple(at("count", window) for window in (*self.windows_days, None))
        placed = np.concatenate([tenure, *(_placed_columns(p, len(self.columns))
                                           for p in (*counts, at("since")))])
        if len(tenure) != 1 or sorted(placed.tolist()) != list(range(len(self.columns))):
            raise ValueError("the behaviour columns' table does not place every column once")
        return _placement(np.asarray(tenure)), counts, at("since")

    @functools.cached_property
    def _detail_tables(self) -> tuple[tuple[str, ...], np.ndarray]:
        """The detail vocabulary and the (type code, detail code) -> pair key table."""
        n_types = len(self.event_types)
        detail_vocab = tuple(sorted({d for _, d in self.detail_keys}))
        pair_table = np.full((n_types + 1, len(detail_vocab) + 1), -1, dtype=np.int64)
        for offset, (event_type, detail) in enumerate(self.detail_keys, start=n_types + 1):
            pair_table[self.event_types.index(event_type), detail_vocab.index(detail)] = offset
        return detail_vocab, pair_table

    def encode(self, event_types: np.ndarray | pd.Categorical,
               details: np.ndarray | pd.Categorical) -> np.ndarray:
        """The one key index of each event (a position in ``key_names``).

        A ``(type, detail)`` pair in the vocabulary counts under the pair; any other
        event of a known type under its type; an unknown type under ``__other__``.
        """
        n_types = len(self.event_types)
        detail_vocab, pair_table = self._detail_tables
        type_index = lookup_codes(self.event_types, event_types)
        type_code = np.where(type_index >= 0, type_index, n_types)
        pair_code = pair_table[type_code, lookup_codes(detail_vocab, details)]
        return np.where(pair_code >= 0, pair_code, type_code)


def lookup_codes(vocabulary: tuple[str, ...],
                 values: np.ndarray | pd.Categorical) -> np.ndarray:
    """Position of each value in ``vocabulary``, -1 where absent (NA included).

    A categorical is looked up once per category, then mapped through its codes.
    """
    if isinstance(values, pd.Categorical):
        table = lookup_codes(vocabulary, np.asarray(values.categories, dtype=object))
        return np.append(table, -1)[values.codes]  # code -1 (NA) picks the appended -1
    values = np.asarray(values, dtype=object)
    if len(values) < 512:  # a dict beats building a hash index for one lead's events
        positions = _positions_of(vocabulary)
        return np.fromiter((positions.get(v, -1) for v in values), np.int64, len(values))
    return pd.Index(vocabulary, dtype=object).get_indexer(pd.Index(values, dtype=object))


@functools.lru_cache(maxsize=64)
def _positions_of(vocabulary: tuple[str, ...]) -> dict[str, int]:
    """Value -> position, built once per vocabulary (an API request looks up a few
    events in vocabularies of a hundred keys)."""
    return {v: i for i, v in enumerate(vocabulary)}


def fit_feature_spec(
    event_types: Sequence[str], details: Sequence[object] | None, config: FeatureConfig
) -> FeatureSpec:
    """Learn the key vocabulary from training events.

    Args:
        event_types: Event type of every training event.
        details: Detail of every training event (None or NA where it has none), or None
            when the dataset has no detail column.
        config: The dataset's feature settings.

    Returns:
        A spec keeping every key seen at least ``min_key_count`` times.
    """
    return spec_from_counts(*key_counts(event_types, details, config), config)


def key_counts(
    event_types: Sequence[str], details: Sequence[object] | None, config: FeatureConfig
) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """How often each event type and each ``(type, detail)`` pair occurs.

    Counts of disjoint groups of events add up to the counts of all of them, so each
    partition of a large dataset can count its own events (see distributed.py).

    Returns:
        Counts per event type and per ``(event type, detail)`` pair with a detail.
    """
    type_counts = Counter(event_types)
    pair_counts: Counter[tuple[str, str]] = Counter()
    if details is not None:
        # None: every type with details; an empty list: no type (not every type).
        allowed = set(type_counts if config.detail_event_types is None
                      else config.detail_event_types)
        pair_counts.update(
            (t, d) for t, d in zip(event_types, details, strict=True)
            if isinstance(d, str) and d and t in allowed
        )
    return type_counts, pair_counts


def spec_from_counts(type_counts: Counter[str], pair_counts: Counter[tuple[str, str]],
                     config: FeatureConfig) -> FeatureSpec:
    """The spec keeping every key counted at least ``min_key_count`` times."""
    minimum = config.min_key_count
    types = tuple(sorted(t for t, n in type_counts.items() if n >= minimum))
    pairs = tuple(sorted(p for p, n in pair_counts.items() if n >= minimum))
    return FeatureSpec(types, pairs, tuple(sorted(config.windows_days)))


@dataclass(frozen=True)
class PointInTime:
    """Each (snapshot, event) pair with the event strictly before the snapshot's as_of.

    Pairs are ordered by snapshot, then by event time within a snapshot.

    Attributes:
        snapshot: Index of the snapshot of each pair.
        event: Index of the event of each pair (into the arrays given).
        age_days: ``as_of - timestamp`` in days (always > 0).
    """

    snapshot: np.ndarray
    event: np.ndarray
    age_days: np.ndarray


def point_in_time(
    snapshot_lead: np.ndarray,
    snapshot_as_of: np.ndarray,
    event_lead: np.ndarray,
    event_time: np.ndarray,
) -> PointInTime:
    """Pair every snapshot with its lead's events that happened before its ``as_of``.

    Args:
        snapshot_lead: Integer lead code of each snapshot.
        snapshot_as_of: ``as_of`` of each snapshot, int64 nanoseconds since the epoch.
        event_lead: Integer lead code of each event (same coding as ``snapshot_lead``).
        event_time: Event timestamps, int64 nanoseconds since the epoch.

    Returns:
        The pairs; events of leads without a snapshot are never read.
    """
    order = _lead_time_order(event_lead, event_time)  # None: already in order
    sorted_lead = event_lead if order is None else event_lead[order]
    if _coded_by_position(snapshot_lead):
        snapshot, event = _own_snapshot(sorted_lead, order, len(snapshot_lead))
    else:
        start = np.searchsorted(sorted_lead, snapshot_lead, side="left")
        stop = np.searchsorted(sorted_lead, snapshot_lead, side="right")
        lengths = stop - start
        snapshot = np.repeat(np.arange(len(snapshot_lead)), lengths)
        first = np.repeat(start - np.cumsum(lengths) + lengths, lengths)
        position = first + np.arange(len(snapshot))
        event = position if order is None else order[position]
    if event is None:  # every event, in its own place: pairs are read in place
        delta = snapshot_as_of[snapshot] - event_time
        kept = np.flatnonzero(delta > 0)
        return PointInTime(snapshot[kept], kept, delta[kept] / NS_PER_DAY)
    delta = snapshot_as_of[snapshot] - event_time[event]
    before = delta > 0
    return PointInTime(snapshot[before], event[before], delta[before] / NS_PER_DAY)


def _coded_by_position(snapshot_lead: np.ndarray) -> bool:
    """Whether snapshot i is the only snapshot of lead i (scoring: one moment per lead)."""
    n = len(snapshot_lead)
    return n > 0 and snapshot_lead[0] == 0 and snapshot_lead[-1] == n - 1 and bool(
        n == 1 or (np.diff(snapshot_lead) == 1).all())


def _own_snapshot(sorted_lead: np.ndarray, order: np.ndarray | None, n_snapshots: int
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Pairs when lead i's snapshot is snapshot i: each event's snapshot is its lead, so
    no search is needed (events of other lead codes are left out). The events are
    ``order`` (None: every event, in place)."""
    if len(sorted_lead) and not (sorted_lead[0] >= 0 and sorted_lead[-1] < n_snapshots):
        keep = (sorted_lead >= 0) & (sorted_lead < n_snapshots)
        return sorted_lead[keep], np.flatnonzero(keep) if order is None else order[keep]
    return sorted_lead, order


_SORT_OUTRIGHT = 64
"""Up to this many events are sorted without first checking whether they are in order."""


def _lead_time_order(event_lead: np.ndarray, event_time: np.ndarray) -> np.ndarray | None:
    """Indexes that sort events by lead, then time; None when they already are.

    A few events (one lead of an API request) are simply sorted: one call, where checking
    the order takes eight. Both give the same stable order.
    """
    if len(event_lead) <= _SORT_OUTRIGHT:
        return np.lexsort((event_time, event_lead))
    lead_step = np.diff(event_lead)
    in_order = (lead_step > 0) | ((lead_step == 0) & (np.diff(event_time) >= 0))
    if in_order.all():
        return None
    return np.lexsort((event_time, event_lead))


def behaviour_matrix(
    spec: FeatureSpec,
    pit: PointInTime,
    n_snapshots: int,
    tenure_days: np.ndarray,
    pair_key: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The behaviour feature matrix, columns in ``spec.feature_names`` order.

    Args:
        spec: The fitted vocabulary and windows.
        pit: Point-in-time pairs from :func:`point_in_time`.
        n_snapshots: Number of snapshots (rows of the result).
        tenure_days: Days from each lead's creation to the snapshot's as_of.
        pair_key: Key index of each pair's event (:meth:`FeatureSpec.encode`).
        out: Where to write the matrix (its values are overwritten): a float64 or
            float32 array of the result's shape stored column by column, such as some
            columns of the model's input block
            (:func:`predictive_scoring.models.columns.numbers_block`, float32), so the
            features are written once, where the model reads them. None: a new float64
            array. A float32 ``out`` holds the float64 result rounded to float32.

    Returns:
        Array of shape ``(n_snapshots, len(spec.feature_names))``, stored column by
        column (Fortran order: a DataFrame of it holds each column in one piece): ``out``
        when given.

    Raises:
        ValueError: ``out`` has another shape or dtype, or is not stored column by column.
    """
    width = len(spec.columns)
    tenure_at, counts_at, since_at = spec.placement
    # Each pair adds to its cells in place (the matrix seen flat, column after column):
    # no array per key and window is built, so the cost follows the pairs, not the cells.
    if out is None:
        out = np.zeros((n_snapshots, width), dtype=np.float64, order="F")
    else:
        if (out.shape != (n_snapshots, width) or out.dtype not in (np.float64, np.float32)
                or not out.flags.f_contiguous):
            raise ValueError(f"out must be a float64 or float32 array of shape "
                             f"{(n_snapshots, width)} stored column by column, not "
                             f"{out.dtype} {out.shape}")
        out.fill(0.0)
    flat = out.reshape(-1, order="F")  # a view: out is stored column by column
    key = pair_key
    out[:, tenure_at] = tenure_days[:, None]
    for window, at in zip((*spec.windows_days, None), counts_at, strict=True):
        inside = slice(None) if window is None else pit.age_days < window
        np.add.at(flat, _cells(at, width, n_snapshots, key[inside], pit.snapshot[inside]), 1.0)
    out[:, since_at] = np.inf
    # the least of the rounded ages is the rounded least age (rounding keeps the order)
    np.minimum.at(flat, _cells(since_at, width, n_snapshots, key, pit.snapshot),
                  pit.age_days.astype(out.dtype, copy=False))
    since = out[:, since_at]
    out[:, since_at] = np.where(np.isinf(since), np.nan, since)
    return out


def _cells(at: Placement, width: int, n_snapshots: int, key: np.ndarray,
           snapshot: np.ndarray) -> np.ndarray:
    """Flat positions (column-major) of the cells of (key, snapshot) pairs in the columns
    ``at`` (one per key)."""
    return _placed_columns(at, width)[key] * n_snapshots + snapshot


def _window_name(window: int | None) -> str:
    return "all" if window is None else f"{window}d"


def _placement(positions: np.ndarray) -> Placement:
    """Column positions as a slice when they are evenly spaced, else as an array."""
    steps = np.diff(positions)
    if len(positions) and positions.min() >= 0 and (
            len(positions) == 1 or (steps[0] > 0 and (steps == steps[0]).all())):
        step = int(steps[0]) if len(positions) > 1 else 1
        return slice(int(positions[0]), int(positions[-1]) + 1, step)
    return positions


def _placed_columns(placement: Placement, width: int) -> np.ndarray:
    if isinstance(placement, slice):
        return np.arange(width)[placement]
    return placement


def _column_safe(key: str) -> str:
    # Model libraries reject JSON punctuation in feature names; CRM values carry anything.
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", key)


# ------------------------------------------------------------------ pandas at the edge
def to_ns(timestamps: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC timestamps as int64 nanoseconds since the epoch."""
    values = pd.DatetimeIndex(timestamps)
    return values.as_unit("ns").asi8


@dataclass(frozen=True)
class SnapshotEvents:
    """Snapshots and their leads' events as arrays: the input of every point-in-time job.

    Attributes:
        snapshot_lead: Integer lead code per snapshot.
        snapshot_as_of: as_of per snapshot, int64 ns since the epoch.
        event_lead: Integer lead code per event (same coding).
        event_time: Event time per event, int64 ns since the epoch.
        event_types: Event type per event (object array of strings, or a categorical:
            batches are coded once, so lookups run per category, not per event).
        event_details: Detail per event (strings, or None/NA; or a categorical).
    """

    snapshot_lead: np.ndarray
    snapshot_as_of: np.ndarray
    event_lead: np.ndarray
    event_time: np.ndarray
    event_types: np.ndarray | pd.Categorical
    event_details: np.ndarray | pd.Categorical

    @functools.cached_property
    def pit(self) -> PointInTime:
        """The snapshot-event pairs with each event before its snapshot's as_of."""
        return point_in_time(self.snapshot_lead, self.snapshot_as_of, self.event_lead,
                             self.event_time)


def snapshot_events(snapshots: pd.DataFrame, events: pd.DataFrame) -> SnapshotEvents:
    """Encode contract frames for the point-in-time functions.

    Args:
        snapshots: ``lead_id`` and ``as_of`` (tz-aware UTC), one row per snapshot.
        events: Contract events (``lead_id``, ``timestamp`` tz-aware UTC, ``event_type``,
            optionally ``detail``); events of leads without a snapshot are left out.

    Raises:
        ValueError: A column is missing, not tz-aware, or a timestamp is missing.
    """
    _require_columns(snapshots, ["lead_id", "as_of"], "snapshots")
    _require_columns(events, ["lead_id", "timestamp", "event_type"], "events")
    lead_codes, leads = pd.factorize(snapshots["lead_id"])
    event_lead = _positions(leads, events["lead_id"])
    known = event_lead >= 0
    if known.all():  # every event is a snapshot's lead's: nothing to leave out (no copies)
        known = slice(None)
    types = _categorical(events["event_type"])[known]
    details = (_categorical(events["detail"])[known] if "detail" in events
               else np.full(len(types), None, dtype=object))
    return SnapshotEvents(lead_codes.astype(np.int64), utc_ns(snapshots["as_of"], "snapshots"),
                          event_lead[known].astype(np.int64, copy=False),
                          utc_ns(events["timestamp"], "events")[known], types, details)


def _positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Position in ``index`` of each value, -1 where absent (per category when coded)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        table = np.append(index.get_indexer(values.cat.categories), -1)
        return table[values.cat.codes.to_numpy()]
    return index.get_indexer(values)


def _categorical(values: pd.Series) -> pd.Categorical:
    """Text coded once (free when it already is categorical); NA gets code -1."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.array
    codes, categories = pd.factorize(values)
    return pd.Categorical.from_codes(codes, categories=categories)


def _require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks column(s) {missing}; it has {list(frame.columns)}")


def utc_ns(values: pd.Series, what: str) -> np.ndarray:
    """Timestamps as int64 ns, refusing naive or missing values (they would wrap around).

    Raises:
        ValueError: Naming the frame, column and the first rows at fault.
    """
    if len(values) and not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"{what}.{values.name} must hold tz-aware timestamps (UTC), not "
                         f"{values.dtype}; parse it with pd.to_datetime(..., utc=True)")
    if values.isna().any():
        rows = np.flatnonzero(values.isna().to_numpy())[:10].tolist()
        raise ValueError(f"{what}.{values.name} is missing in row(s) {rows} (positions)")
    return to_ns(values)


def behaviour_features(
    spec: FeatureSpec,
    snapshots: pd.DataFrame,
    events: pd.DataFrame,
) -> pd.DataFrame:
    """Behaviour features of snapshots, from contract-shaped frames.

    Args:
        spec: The fitted vocabulary and windows.
        snapshots: ``lead_id``, ``as_of`` and ``created_at`` (tz-aware UTC), one row per
            snapshot, in any order.
        events: Contract events frame (``lead_id``, ``timestamp``, ``event_type`` and
            optionally ``detail``); rows of other leads or after as_of are ignored.

    Returns:
        One row per snapshot (same index and order), columns ``spec.feature_names``.
    """
    data = snapshot_events(snapshots, events)
    tenure = (data.snapshot_as_of - utc_ns(snapshots["created_at"], "snapshots")) / NS_PER_DAY
    return pd.DataFrame(featurise(spec, data, tenure), index=snapshots.index,
                        columns=spec.feature_names)


def featurise(spec: FeatureSpec, data: SnapshotEvents, tenure_days: np.ndarray,
              out: np.ndarray | None = None) -> np.ndarray:
    """Behaviour features from encoded arrays (the path a single API request takes).

    Args:
        spec: The fitted vocabulary and windows.
        data: Snapshots and events, encoded.
        tenure_days: Days from creation to as_of per snapshot.
        out: Where to write them (see :func:`behaviour_matrix`), or None.

    Returns:
        Array (float64, or ``out``), one row per snapshot, columns ``spec.feature_names``.
    """
    pit = data.pit  # only the events before a snapshot's as_of are encoded
    return behaviour_matrix(spec, pit, len(data.snapshot_lead), np.asarray(tenure_days, float),
                            spec.encode(take_events(data.event_types, pit.event),
                                        take_events(data.event_details, pit.event)), out)


def take_events(values: np.ndarray | pd.Categorical, positions: np.ndarray
           ) -> np.ndarray | pd.Categorical:
    """Some events' values, at ``positions`` (a categorical stays coded): the pairs'
    events, so that only events before an as_of are looked up."""
    if isinstance(values, pd.Categorical):
        return values.take(positions)
    return np.asarray(values, dtype=object)[positions]
