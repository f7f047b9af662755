"""Times and numbers read from Arrow columns, the way pandas reads them, at Arrow's speed.

Values are converted by Arrow's vectorised casts. Arrow stops a cast at the first value it
cannot read, so a failed cast is split until its failing parts are small, and those go
to pandas' parsers, which accept a superset of the same forms with the same results:
what is kept is what pandas alone would keep.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from predictive_scoring.config import ReadOptions

NS = pa.timestamp("ns")
NS_UTC = pa.timestamp("ns", tz="UTC")
NAT = np.iinfo(np.int64).min
"""numpy's not-a-time, as an integer."""
LEAF_ROWS = 4096
"""Below this many values a failed Arrow cast hands its values to pandas at once."""
_OFFSET_AT_END = re.compile(
    r"[T\s]\d{1,2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
"""A time of day followed by a UTC offset (a date alone, such as 2025-03-04, has none)."""
_NAIVE_ONLY = re.compile(r"%[zZfpbBaAcxX]")
"""Format directives a round trip through Arrow's strftime cannot confirm."""


def chunked(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """An array as a chunked array (what a table's column is)."""
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


def as_text(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Values as text as the pandas reader wrote them (integers as digits, others as
    pandas' ``astype("string")`` does); text stays as it is (``string`` or
    ``large_string``, which pandas writes to Parquet: no copy)."""
    values = chunked(values)
    kind = values.type
    if pa.types.is_dictionary(kind):
        return as_text(values.cast(kind.value_type))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return values
    if pa.types.is_integer(kind) or pa.types.is_null(kind):
        return values.cast(pa.string())
    text = values.to_pandas().astype("string")
    return pa.chunked_array([pa.array(text, type=pa.string())], pa.string())


def coerce(values: pa.ChunkedArray, to: pa.DataType,
           by_pandas: Callable[[pd.Series], pa.Array]) -> pa.ChunkedArray:
    """Cast text with what does not parse as null.

    Arrow's cast stops at the first value it cannot read, so a failed cast is split in
    halves until the failing parts are small; those go to ``by_pandas`` (text as a pandas
    Series -> the parsed values as an Arrow array of type ``to``).
    """
    try:
        return pc.cast(values, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if len(values) <= LEAF_ROWS:
        return pa.chunked_array([by_pandas(values.to_pandas().astype("string"))], to)
    half = len(values) // 2
    parts = [coerce(values.slice(0, half), to, by_pandas),
             coerce(values.slice(half), to, by_pandas)]
    return pa.chunked_array([c for part in parts for c in part.chunks], to)


def parse_numbers(values: pa.Array | pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Numbers as float64, and which values were written but are not numbers.

    Numeric columns (Parquet) are taken as they are; text is read as ``pd.to_numeric``
    reads it, and a value it reads as NaN ("nan") counts as not a number.
    """
    values = chunked(values)
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = values.cast(pa.float64())
        return numbers, pa.chunked_array([pa.array(np.zeros(len(values), bool))])
    text = as_text(values)
    numbers = coerce(text, pa.float64(), _numbers_by_pandas)
    unreadable = pc.and_(pc.is_valid(text), pc.is_nan(numbers).fill_null(True))
    return numbers, unreadable


def _numbers_by_pandas(text: pd.Series) -> pa.Array:
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    return pa.array(numbers.to_numpy(), pa.float64(), mask=numbers.isna().to_numpy())


def parse_times(values: pa.Array | pa.ChunkedArray, read: ReadOptions) -> pa.ChunkedArray:
    """Times as UTC instants (``timestamp[ns, UTC]``); what cannot be read becomes null.

    Values with an offset (``Z``, ``+02:00``) are converted to UTC; values without one
    are taken in ``read.timezone``, read with ``read.timestamp_format`` when set (else
    ISO 8601). Wall-clock times a daylight-saving change makes ambiguous (the repeated
    hour in autumn) are read as the first of the two instants, and times it skips
    (spring) are moved forward to the first valid instant: CRM exports without offsets
    hold both, and an hour's doubt beats losing the row. Typed timestamps (Parquet) are
    converted the same way: with a zone to UTC, without one in ``read.timezone``.
    """
    values = chunked(values)
    kind = values.type
    if pa.types.is_timestamp(kind):
        try:
            return (values.cast(NS_UTC) if kind.tz is not None
                    else _localised(values.cast(NS), read.timezone))
        except pa.ArrowInvalid:  # beyond the nanosecond range: read as text below
            pass
    text = pc.utf8_trim_whitespace(as_text(values))
    if read.timestamp_format:
        return _formatted(text, read)
    return _iso(text, read)


def _localised(naive: pa.ChunkedArray, timezone: str) -> pa.ChunkedArray:
    if timezone == "UTC":
        return naive.cast(NS_UTC)
    try:
        return pc.assume_timezone(naive, timezone=timezone, ambiguous="earliest",
                                  nonexistent="latest").cast(NS_UTC)
    except pa.ArrowInvalid as exc:  # the config knew the zone; this system's database not
        raise ValueError(f"read.timezone {timezone!r} is not in the time zone database "
                         f"pyarrow reads ({str(exc).strip()}); install the system's tzdata "
                         "package or name the zone as that database does") from None


def _iso(text: pa.ChunkedArray, read: ReadOptions) -> pa.ChunkedArray:
    """ISO 8601: one cast when every value has an offset (or none has), else per kind."""
    for attempt in (lambda: pc.cast(text, NS_UTC),
                    lambda: _localised(pc.cast(text, NS), read.timezone)):
        try:
            return attempt()
        except pa.ArrowInvalid:
            pass
    has_offset = pc.match_substring_regex(text, _OFFSET_AT_END.pattern, ignore_case=True)
    none = pa.scalar(None, text.type)
    aware = coerce(pc.if_else(has_offset, text, none), NS_UTC,
                   lambda t: _times_by_pandas(t, read, aware=True))
    naive = coerce(pc.if_else(has_offset, none, text), NS,
                   lambda t: _times_by_pandas(t, read, aware=False))
    return pc.if_else(has_offset, aware, _localised(naive, read.timezone))


def _formatted(text: pa.ChunkedArray, read: ReadOptions) -> pa.ChunkedArray:
    """``read.timestamp_format``: Arrow's strptime, each result confirmed by writing it
    back in the format (strptime rolls 30 February over to March); the rest by pandas."""
    fmt = read.timestamp_format
    if _NAIVE_ONLY.search(fmt):
        return _all_by_pandas(text, read)
    parsed = pc.strptime(text, format=fmt, unit="ns", error_is_null=True)
    written = pc.strftime(parsed.cast(pa.timestamp("s")), format=fmt)
    unconfirmed = pc.invert(pc.fill_null(pc.equal(written, text), False))
    at = np.flatnonzero(pc.and_(unconfirmed, pc.is_valid(text)).to_numpy(zero_copy_only=False))
    instants = _localised(pc.if_else(unconfirmed, pa.scalar(None, NS), parsed), read.timezone)
    if len(at) == 0:
        return instants
    stamps = instants.cast(pa.int64()).fill_null(NAT).to_numpy().view("datetime64[ns]").copy()
    stamps[at] = _all_by_pandas(text.take(at), read).to_numpy(zero_copy_only=False)
    return pa.chunked_array([pa.array(stamps, NS, mask=np.isnat(stamps)).cast(NS_UTC)])


def _all_by_pandas(text: pa.ChunkedArray, read: ReadOptions) -> pa.ChunkedArray:
    """pandas' reading of every value, as the reader before Arrow did it."""
    series = text.to_pandas().astype("string")
    has_offset = series.str.contains(_OFFSET_AT_END, na=False)
    aware = _times_by_pandas(series.where(has_offset), read, aware=True)
    naive = _localised(chunked(_times_by_pandas(series.where(~has_offset), read, aware=False)),
                       read.timezone)
    return pc.if_else(pa.array(has_offset.to_numpy()), chunked(aware), naive)


def _times_by_pandas(text: pd.Series, read: ReadOptions, aware: bool) -> pa.Array:
    """pandas' reading of times: UTC instants (``aware``) or naive wall-clock times."""
    fmt = read.timestamp_format or "ISO8601"
    parsed = pd.to_datetime(text, format=fmt, utc=aware, errors="coerce")
    if not aware and isinstance(parsed.dtype, pd.DatetimeTZDtype):  # %z in the format
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    if aware:
        parsed = parsed.dt.tz_localize(None)
    stamps = _nanoseconds(parsed.to_numpy())
    array = pa.array(stamps, NS, mask=np.isnat(stamps))
    return array.cast(NS_UTC) if aware else array


def _nanoseconds(stamps: np.ndarray) -> np.ndarray:
    """datetime64 of any unit as nanoseconds; times beyond their range (before 1677-09-22,
    from 2262-04-11 on) become NaT rather than wrapping around."""
    low, high = (np.datetime64(day, "D").astype(stamps.dtype) for day in ("1677-09-22",
                                                                          "2262-04-11"))
    inside = ~np.isnat(stamps) & (stamps >= low) & (stamps < high)
    return np.where(inside, stamps, np.datetime64("NaT")).astype("datetime64[ns]")


def parse_timestamps(values: pd.Series, read: ReadOptions) -> pd.Series:
    """:func:`parse_times` of a pandas Series: tz-aware UTC, unparseable values NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        array = pa.array(values.dt.tz_convert("UTC"))
    else:
        try:
            array = pa.Array.from_pandas(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: read them as text
            array = pa.Array.from_pandas(values.astype("string"))
    parsed = parse_times(array, read).to_pandas()
    parsed.index, parsed.name = values.index, values.name
    return parsed.astype("datetime64[ns, UTC]")
