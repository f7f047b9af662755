"""Reading CSV and Parquet files into Arrow tables (times and numbers: :mod:`.values`).

Files are read once with pyarrow: Parquet as typed, CSV with every column as text (so a
value is reported as it was written). Each row gets its 1-based number in ``_row``. A
CSV row with fewer or more fields than the header is not dropped: it stays in its place,
its fields padded or cut to the header, with the reason in ``_malformed`` and its text in
``_malformed_text``, for validation to quarantine. Problems with a file as a whole (not
found, empty, not UTF-8, a repeated column name, a separator other than ``read.sep``) are
raised as one :class:`~predictive_scoring.data.problems.DataValidationError`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from predictive_scoring.config import ReadOptions
from predictive_scoring.data.problems import ROW, file_error

MALFORMED = "_malformed"
"""Why a CSV row's fields do not fit the header (null for rows that fit)."""
MALFORMED_TEXT = "_malformed_text"
"""Such a row's text, as written."""
HIDDEN = (ROW, MALFORMED, MALFORMED_TEXT)
PARQUET_SUFFIXES = (".parquet", ".pq")
SEPARATORS = (",", ";", "\t", "|")
_CSV_BLOCK_BYTES = 16 << 20
_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")


# ------------------------------------------------------------------ files
def is_parquet(path: Path) -> bool:
    """Whether the path is read as Parquet (``.parquet`` / ``.pq``: a file or a folder)."""
    return path.suffix.lower() in PARQUET_SUFFIXES


def read_table(path: Path, read: ReadOptions, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a file (or a folder of Parquet files) and number its rows.

    Args:
        path: A CSV file, or a Parquet file or folder.
        read: Separator for CSV.
        columns: Only these columns (by their names in the file, stripped), when present.

    Returns:
        The rows in file order: CSV columns as text, Parquet as typed, names stripped,
        with ``_row`` (and ``_malformed`` / ``_malformed_text`` when a CSV row does not
        fit the header).

    Raises:
        DataValidationError: The file is missing, empty, unreadable, or its header is
            unusable (the message names the file and what to change).
    """
    _require_file(path)
    if is_parquet(path):
        return _numbered(_read_parquet(path, columns))
    names = csv_header(path, read)
    found: list[str] = []
    table = _read_csv(path, read, names, columns, found.append)
    if not found:
        return _numbered(table)
    malformed = malformed_rows(path, read, names, columns)
    if malformed.num_rows != len(found):
        raise file_error(path, f"{len(found)} rows do not fit the header, but they could not "
                         "be told apart from the others (a quote that opens a value and never "
                         "closes?); check the file's quoting")
    return _with_malformed(_numbered(table), malformed)


def _require_file(path: Path) -> None:
    if not path.exists():
        raise file_error(path, "file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise file_error(path, "the file is empty (not even a header line)")


def _read_parquet(path: Path, columns: Sequence[str] | None) -> pa.Table:
    names = column_names(path, ReadOptions())
    _require_distinct(path, [n.strip() for n in names])
    try:
        wanted = None if columns is None else [n for n in names if n.strip() in columns]
        table = pq.read_table(path, columns=wanted)
    except (pa.ArrowException, OSError) as exc:
        raise file_error(path, f"cannot read it as Parquet: {_first_line(exc)}") from None
    table = _stripped(table)
    _require_distinct(path, table.column_names)
    if columns is not None:
        table = table.select([n for n in table.column_names if n in columns])
    return table


def csv_header(path: Path, read: ReadOptions) -> list[str]:
    """The CSV header's column names as written (as Arrow parses them).

    Raises:
        DataValidationError: No header, a column name given twice, or one column that
            holds another separator (the file is not separated by ``read.sep``).
    """
    try:
        with pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=1 << 20),
                             parse_options=_parse_options(read, lambda _: "skip")) as reader:
            names = reader.schema.names
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise file_error(path, "the file is empty (not even a header line)") from None
        raise file_error(path, f"cannot read the header: {_first_line(exc)}") from None
    _require_distinct(path, [n.strip() for n in names])
    _require_separator(path, names, read.sep)
    return names


def column_names(path: Path, read: ReadOptions) -> list[str]:
    """The columns of a file as written (a Parquet folder: of its first file)."""
    _require_file(path)
    if not is_parquet(path):
        return csv_header(path, read)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise file_error(path, "no Parquet files in this folder")
    try:
        return pq.read_schema(files[0]).names
    except (pa.ArrowException, OSError) as exc:
        raise file_error(files[0], f"cannot read it as Parquet: {_first_line(exc)}") from None


def _require_distinct(path: Path, names: Sequence[str]) -> None:
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        seen.setdefault(name, []).append(position)
    repeated = {name: at for name, at in seen.items() if len(at) > 1}
    if repeated:
        name, at = next(iter(repeated.items()))
        raise file_error(path, f"named {len(at)} times in the header (columns "
                         f"{', '.join(map(str, at))}); give every column its own name",
                         column=name)


def _require_separator(path: Path, names: Sequence[str], sep: str) -> None:
    if len(names) != 1:
        return
    other = next((s for s in SEPARATORS if s != sep and s in names[0]), None)
    if other is not None:
        shown = {"\t": "\\t"}.get(other, other)
        raise file_error(path, f"the header is one column, {names[0]!r}: the file looks "
                         f"separated by {shown!r}, not {sep!r}; set read.sep: {shown!r} in "
                         f"the dataset config (for `score`: --sep {shown!r})")


def _parse_options(read: ReadOptions, on_bad_row: Callable) -> pa_csv.ParseOptions:
    # Quoted values may hold line breaks (notes, subjects); pandas read them too.
    return pa_csv.ParseOptions(delimiter=read.sep, newlines_in_values=True,
                               invalid_row_handler=on_bad_row)


def _convert_options(names: Sequence[str],
                     columns: Sequence[str] | None) -> pa_csv.ConvertOptions:
    wanted = None if columns is None else [n for n in names if n.strip() in columns]
    # Only an empty field is missing: "NA", "null" or "none" can be real values.
    return pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                 include_columns=wanted, strings_can_be_null=True,
                                 null_values=[""], quoted_strings_can_be_null=True)


def _read_csv(path: Path, read: ReadOptions, names: Sequence[str],
              columns: Sequence[str] | None, on_bad_row: Callable) -> pa.Table:
    def skip(row: pa_csv.InvalidRow) -> str:
        on_bad_row(row.text)
        return "skip"

    try:
        table = pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(
                                    block_size=_CSV_BLOCK_BYTES),
                                parse_options=_parse_options(read, skip),
                                convert_options=_convert_options(names, columns))
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc) from None
    return table.rename_columns([n.strip() for n in table.column_names])


def _csv_error(path: Path, exc: pa.ArrowInvalid) -> Exception:
    if "invalid UTF8" in str(exc):
        return file_error(path, _not_utf8(path))
    return file_error(path, f"cannot read it as CSV: {_first_line(exc)}")


def _not_utf8(path: Path) -> str:
    """Where the first byte that is not UTF-8 text is (line numbers count the header)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return (f"line {number} is not UTF-8 text (byte 0x{line[exc.start]:02x} at "
                        f"character {exc.start + 1}); save the file as UTF-8")
    return "the file is not UTF-8 text; save it as UTF-8"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _numbered(table: pa.Table, first: int = 1) -> pa.Table:
    rows = np.arange(first, first + table.num_rows, dtype=np.int64)
    return table.append_column(ROW, pa.array(rows))


# ------------------------------------------------------------------ malformed rows
def malformed_rows(path: Path, read: ReadOptions, names: Sequence[str] | None = None,
                   columns: Sequence[str] | None = None) -> pa.Table:
    """The CSV rows whose field count differs from the header's, found by a second pass.

    Arrow skips such rows without saying where they were, so Python's csv module (the
    same quoting rules) walks the file to give each its row number. Blank lines are not
    rows, as for Arrow.

    Returns:
        One row per malformed row: its fields padded or cut to the header (text), its
        ``_row``, the reason in ``_malformed`` and its text in ``_malformed_text``.
    """
    names = list(names if names is not None else csv_header(path, read))
    found: list[tuple[int, list[str]]] = []
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        records = (fields for fields in csv.reader(handle, delimiter=read.sep) if fields)
        next(records, None)
        for number, fields in enumerate(records, start=1):
            if len(fields) != len(names):
                found.append((number, fields))
    kept = [(i, n.strip()) for i, n in enumerate(names)
            if columns is None or n.strip() in columns]
    data = {name: pa.array([_field(f, i) for _, f in found], pa.string()) for i, name in kept}
    data[ROW] = pa.array([n for n, _ in found], pa.int64())
    data[MALFORMED] = pa.array([f"{len(f)} fields where the header has {len(names)} (a "
                                "truncated or shifted row)" for _, f in found], pa.string())
    data[MALFORMED_TEXT] = pa.array([read.sep.join(f) for _, f in found], pa.string())
    return pa.table(data)


def _field(fields: list[str], index: int) -> str | None:
    return fields[index] if index < len(fields) and fields[index] != "" else None


def _with_malformed(table: pa.Table, malformed: pa.Table) -> pa.Table:
    """Kept rows renumbered around the malformed ones, and those put back in place."""
    return _merge_rows(table.drop_columns([ROW]), _renumbered(malformed, 0, table.num_rows),
                       malformed, np.ones(malformed.num_rows, dtype=bool))


def _renumbered(malformed: pa.Table, done: int, n_rows: int) -> np.ndarray:
    """Row numbers of the kept rows ``done + 1 .. done + n_rows`` (counted without the
    malformed rows) once the malformed rows are counted again."""
    bad_rows = malformed[ROW].to_numpy()
    shifted = bad_rows - np.arange(len(bad_rows))
    ordinal = np.arange(done + 1, done + n_rows + 1, dtype=np.int64)
    return ordinal + np.searchsorted(shifted, ordinal, side="right")


# ------------------------------------------------------------------ batches
def iter_batches(path: Path, read: ReadOptions, batch_rows: int,
                 malformed: pa.Table | None = None) -> Iterator[pa.Table]:
    """The file's rows in order, as tables of about ``batch_rows`` rows (memory stays
    bounded), numbered and with malformed CSV rows in place as :func:`read_table` gives.

    Args:
        path: A CSV file, or a Parquet file or folder.
        read: Separator for CSV.
        batch_rows: Rows per table (the last may be shorter).
        malformed: The file's :func:`malformed_rows` when already known (a CSV file is
            otherwise read once more to find them).
    """
    _require_file(path)
    if is_parquet(path):
        yield from _numbered_batches(_parquet_batches(path, batch_rows), batch_rows)
        return
    names = csv_header(path, read)
    if malformed is None:
        found: list[str] = []
        _read_csv(path, read, names, [names[0].strip()], found.append)
        malformed = malformed_rows(path, read, names) if found else None
    batches = _csv_batches(path, read, names)
    if malformed is None or malformed.num_rows == 0:
        yield from _numbered_batches(batches, batch_rows)
        return
    yield from _batches_with_malformed(batches, batch_rows, malformed)


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    for file in files:
        try:
            yield from pq.ParquetFile(file).iter_batches(batch_size=batch_rows)
        except (pa.ArrowException, OSError) as exc:
            raise file_error(file, f"cannot read it as Parquet: {_first_line(exc)}") from None


def _csv_batches(path: Path, read: ReadOptions,
                 names: Sequence[str]) -> Iterator[pa.RecordBatch]:
    try:
        with pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
                             parse_options=_parse_options(read, lambda _: "skip"),
                             convert_options=_convert_options(names, None)) as reader:
            yield from reader
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc) from None


def _grouped(batches: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += batch.num_rows
        if size >= batch_rows:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _stripped(table: pa.Table) -> pa.Table:
    table = table.drop_columns([n for n in table.column_names if _PANDAS_INDEX.match(n)])
    return table.rename_columns([n.strip() for n in table.column_names])


def _numbered_batches(batches: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pa.Table]:
    first = 1
    for table in _grouped(batches, batch_rows):
        yield _numbered(_stripped(table), first)
        first += table.num_rows


def _batches_with_malformed(batches: Iterator[pa.RecordBatch], batch_rows: int,
                            malformed: pa.Table) -> Iterator[pa.Table]:
    bad_rows = malformed[ROW].to_numpy()
    done = last_row = 0
    for table in _grouped(batches, batch_rows):
        table = _stripped(table)
        rows = _renumbered(malformed, done, table.num_rows)
        done += table.num_rows
        upto = rows[-1] if len(rows) else last_row
        yield _merge_rows(table, rows, malformed, (bad_rows > last_row) & (bad_rows <= upto))
        last_row = upto
    rest = bad_rows > last_row
    if rest.any():
        empty = malformed.select([n for n in malformed.column_names if n not in HIDDEN])
        yield _merge_rows(empty.slice(0, 0), np.array([], np.int64), malformed, rest)


def _merge_rows(table: pa.Table, rows: np.ndarray, malformed: pa.Table,
                take: np.ndarray) -> pa.Table:
    table = table.append_column(ROW, pa.array(rows, pa.int64()))
    table = table.append_column(MALFORMED, pa.nulls(table.num_rows, pa.string()))
    table = table.append_column(MALFORMED_TEXT, pa.nulls(table.num_rows, pa.string()))
    if not take.any():
        return table
    merged = pa.concat_tables([table, malformed.filter(pa.array(take)).select(
        table.column_names)])
    return merged.take(pc.sort_indices(merged[ROW]))
