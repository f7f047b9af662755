"""The online drift window behind /metrics: it slides, and its index is the monitor's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from predictive_scoring.monitoring.drift import psi
from serving.drift import REFRESH_LEADS, OnlineDrift

REFERENCE = {"score": {"edges": [0.1, 0.2], "shares": [0.5, 0.3, 0.2]},
             "fields": [{"name": "industry", "kind": "categorical"},
                        {"name": "employees", "kind": "numeric"}]}


def test_the_window_keeps_the_last_leads_only() -> None:
    window = OnlineDrift(REFERENCE, None, window=4)
    window.observe([0.05, 0.05, 0.05, 0.05], ["?1"] * 4)  # all unknown, all in bin 0
    window.observe([0.15, 0.5], ["01", ".1"])  # pushes two of them out
    values = window.values()
    assert values["leads"] == 4
    # bins now: 0, 0, 1, 2; industry known in 3 of 4, unknown in 2 of those
    assert values["psi"] == pytest.approx(psi(np.array([2, 1, 1]), [0.5, 0.3, 0.2]))
    assert values["unknown_share"] == pytest.approx(2 / 3)


def test_refresh_is_due_every_so_many_leads_and_age_is_counted() -> None:
    trained = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    window = OnlineDrift(REFERENCE, trained)
    due = [window.observe([0.1], ["00"]) for _ in range(2 * REFRESH_LEADS)]
    assert sum(due) == 2
    assert window.values()["age_days"] == pytest.approx(10, abs=0.01)


def test_a_bundle_without_a_reference_reports_its_age_only() -> None:
    window = OnlineDrift(None, "2025-01-01T00:00:00+00:00")
    assert window.observe([0.5], [None]) is False
    values = window.values(datetime(2025, 1, 11, tzinfo=UTC))
    assert values == {"psi": None, "unknown_share": None, "leads": 0, "age_days": 10}
