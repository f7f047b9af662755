"""What reading and validation report: problems, per-file checks and the error that
carries them.

A problem names the file, the row (1-based data row; 0 for the file or its header), the
column, the value as read and the reason. Every row read is either kept or quarantined
with its problems; callers decide whether problems stop the run
(:class:`DataValidationError`) or go to a quarantine file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROW = "_row"
"""Each row's 1-based number in its file (the header is not a row)."""
PROBLEM_COLUMNS = ["file", "row", "column", "value", "reason"]
SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class TableCheck:
    """What validation made of one file.

    Attributes:
        file: The file's path as configured.
        kept: Rows that passed, in contract column names, plus ``_row``.
        quarantined: Rows that failed, as read, plus ``_row`` and ``_problems``.
        problems: One row per problem: file, row, column, value, reason.
    """

    file: str
    kept: pd.DataFrame
    quarantined: pd.DataFrame
    problems: pd.DataFrame

    @property
    def n_read(self) -> int:
        """Rows read from the file."""
        return len(self.kept) + len(self.quarantined)


class DataValidationError(ValueError):
    """Input that cannot be used, with every problem found (the first ones shown)."""

    def __init__(self, problems: pd.DataFrame, headline: str = "invalid input data"):
        self.problems = problems
        super().__init__(describe_problems(problems, headline))


def describe_problems(problems: pd.DataFrame, headline: str) -> str:
    """A readable list of the first problems and how many there are in all.

    One problem about a whole file or its header (row 0) reads as one line:
    ``headline: file[, column 'name']: reason``.
    """
    if len(problems) == 1 and problems["row"].iloc[0] == 0:
        only = problems.iloc[0]
        column = f", column '{only['column']}'" if only["column"] else ""
        return f"{headline}: {only['file']}{column}: {only['reason']}"
    lines = [f"{headline}: {len(problems)} problem(s)"]
    for p in problems.head(SHOWN_PROBLEMS).itertuples(index=False):
        where = [str(p.file), f"row {p.row}" if p.row > 0 else "header"]
        if p.column:
            where.append(f"column '{p.column}'")
        if p.row > 0 or p.value:
            where.append(f"value {p.value!r}")
        lines.append(f"  {', '.join(where)}: {p.reason}")
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(problems) - SHOWN_PROBLEMS} more")
    return "\n".join(lines)


def problem_frame(file: str, rows: np.ndarray, column: str, values: object,
                  reasons: object) -> pd.DataFrame:
    """Problems of some rows of one file (``values`` and ``reasons``: one each or one per row)."""
    values = values.fillna("") if isinstance(values, pd.Series) else values
    frame = pd.DataFrame({"file": file, "row": np.asarray(rows, dtype=np.int64),
                          "column": column, "value": values, "reason": reasons},
                         columns=PROBLEM_COLUMNS)
    return frame.astype({"value": "string"})


def no_problems() -> pd.DataFrame:
    """An empty problem list with the columns' types."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "string")
                         for c in PROBLEM_COLUMNS})


def file_error(path: str | Path, reason: str, column: str = "",
               headline: str = "cannot read input") -> DataValidationError:
    """An error about a whole file or its header (row 0)."""
    problem = pd.DataFrame([[str(path), 0, column, "", reason]], columns=PROBLEM_COLUMNS)
    return DataValidationError(problem, headline)
