"""The cheap online drift gauges on ``/metrics``: the scores of the last leads against the
training reference, their unknown categories, and the model's age.

Each worker keeps a rolling window of its last :data:`WINDOW` scored leads (a probability
bin and two counts per lead, updated in O(1)): ``scoring_score_psi`` is the population
stability index of the window's probabilities against the training leads' deciles (the
same index, bins and floor as ``predictive-scoring monitor``,
:func:`predictive_scoring.monitoring.drift.psi`), ``scoring_unknown_category_share`` the
share of the window's categorical values that training never saw, and
``scoring_model_age_days`` the days since the model was trained. The gauges are set when
``/metrics`` is read and every :data:`REFRESH_LEADS` leads (so that, under several
workers, every worker's series stays fresh). A model without a training reference
(trained before it existed) reports its age only.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from predictive_scoring.monitoring.drift import psi
from predictive_scoring.monitoring.reference import MISSING, UNKNOWN

WINDOW = 5000
REFRESH_LEADS = 256


class OnlineDrift:
    """A worker's rolling window of scored leads against a model's training reference.

    Args:
        reference: The bundle's training reference (None: no window, age only).
        trained_at: When the model was trained (ISO 8601), or None.
        window: Leads in the window.
    """

    def __init__(self, reference: Mapping[str, Any] | None, trained_at: str | None,
                 window: int = WINDOW) -> None:
        self.reference = reference
        self.trained_at = _moment(trained_at)
        self._lock = threading.Lock()
        self._window: deque[tuple[int, int, int]] = deque()
        self._size = window
        self._seen = 0
        if reference is not None:
            self._edges = list(reference["score"]["edges"])
            self._expected = list(reference["score"]["shares"])
            self._counts = [0] * len(self._expected)
            self._categorical = tuple(i for i, f in enumerate(reference["fields"])
                                      if f["kind"] == "categorical")
        self._unknown = self._present = 0

    def observe(self, probabilities: Sequence[float], bins: Sequence[str | None]) -> bool:
        """Add scored leads to the window.

        Returns:
            Whether the gauges are due a refresh (every :data:`REFRESH_LEADS` leads).
        """
        if self.reference is None:
            return False
        with self._lock:
            for probability, row in zip(probabilities, bins, strict=True):
                slot = bisect.bisect_right(self._edges, probability)
                unknown = present = 0
                if row is not None:
                    for i in self._categorical:
                        symbol = row[i]
                        if symbol != MISSING:
                            present += 1
                            unknown += symbol == UNKNOWN
                self._window.append((slot, unknown, present))
                self._counts[slot] += 1
                self._unknown += unknown
                self._present += present
                if len(self._window) > self._size:
                    old, old_unknown, old_present = self._window.popleft()
                    self._counts[old] -= 1
                    self._unknown -= old_unknown
                    self._present -= old_present
            before, self._seen = self._seen, self._seen + len(probabilities)
        return before // REFRESH_LEADS != self._seen // REFRESH_LEADS

    def values(self, now: datetime | None = None) -> dict[str, float | None]:
        """``psi``, ``unknown_share`` (None without a reference or an empty window),
        ``leads`` in the window and ``age_days`` (None without a training date)."""
        now = now or datetime.now(UTC)
        age = (now - self.trained_at).total_seconds() / 86400 if self.trained_at else None
        if self.reference is None:
            return {"psi": None, "unknown_share": None, "leads": 0, "age_days": age}
        with self._lock:
            counts, n = list(self._counts), len(self._window)
            unknown, present = self._unknown, self._present
        return {"psi": psi(counts, self._expected) if n else None,
                "unknown_share": unknown / present if present else None,
                "leads": n, "age_days": age}


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
