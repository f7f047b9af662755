"""Window counts: one pass over the events gives every window's count, whatever order
the windows are listed in, and an event exactly a window's length old is outside it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from predictive_scoring.features import FeatureSpec, behaviour_features

T0 = pd.Timestamp("2025-01-01T00:00:00Z")


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(8)
    n = 300
    ages = np.concatenate([[7.0, 30.0, 90.0, 6.999], rng.uniform(0.01, 120, n - 4)])
    as_of = T0 + pd.Timedelta(days=200)
    events = pd.DataFrame({"lead_id": ["a"] * 4 + list(rng.choice(["a", "b", "c"], n - 4)),
                           "timestamp": as_of - pd.to_timedelta(ages, unit="D"),
                           "event_type": rng.choice(["page_view", "email_open"], n),
                           "detail": rng.choice(["pricing", None], n)})
    snapshots = pd.DataFrame({"lead_id": ["a", "b", "c", "a"],
                              "as_of": [as_of, as_of, as_of, as_of - pd.Timedelta(days=50)],
                              "created_at": [T0] * 4})
    return snapshots, events


def test_windows_in_any_order_count_the_same_and_boundaries_are_outside() -> None:
    snapshots, events = frames()
    keys = (("page_view", "pricing"),)
    listed = behaviour_features(FeatureSpec(("email_open", "page_view"), keys, (30, 7, 90)),
                                snapshots, events)
    ordered = behaviour_features(FeatureSpec(("email_open", "page_view"), keys, (7, 30, 90)),
                                 snapshots, events)
    assert set(listed.columns) == set(ordered.columns)
    pd.testing.assert_frame_equal(listed[ordered.columns], ordered)
    own = events.loc[events["lead_id"] == "a"]
    age = (snapshots["as_of"].iloc[0] - own["timestamp"]).dt.total_seconds() / 86_400
    key = np.where((own["event_type"] == "page_view") & (own["detail"] == "pricing"),
                   "page_view.pricing", own["event_type"])
    for window in (7, 30, 90):
        for name in ("email_open", "page_view", "page_view.pricing"):
            expected = int(((key == name) & (age < window).to_numpy()).sum())
            assert ordered.loc[0, f"n_{name}_{window}d"] == expected
            assert listed.loc[0, f"n_{name}_{window}d"] == expected
