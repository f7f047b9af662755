import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predictive_scoring.config import Attributes, FeatureConfig, SnapshotConfig
from predictive_scoring.data.dataset import EventsDataset
from predictive_scoring.data.snapshots import build_snapshots
from predictive_scoring.features import (
    NS_PER_DAY,
    OTHER_KEY,
    FeatureSpec,
    SnapshotEvents,
    behaviour_features,
    featurise,
    fit_feature_spec,
    lookup_codes,
    point_in_time,
    snapshot_events,
    to_ns,
)
from predictive_scoring.models.columns import (
    behaviour_block,
    feature_columns,
    model_frame,
    numbers_block,
)

CONFIG = FeatureConfig(windows_days=[7, 30], min_key_count=1)
T0 = pd.Timestamp("2025-01-01T00:00:00Z")


def day(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=n)


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    events = pd.DataFrame({
        "lead_id": ["a", "a", "b", "a", "a"],
        "timestamp": [day(1), day(4), day(2), day(19), day(25)],
        "event_type": ["page_view", "page_view", "email_open", "demo_request", "webinar"],
        "detail": ["pricing", "blog", None, None, None],
    })
    snapshots = pd.DataFrame({"lead_id": ["a", "b", "a"],
                              "as_of": [day(5), day(5), day(20)],
                              "created_at": [T0, T0, T0]})
    return snapshots, events


def test_hand_computed_features() -> None:
    snapshots, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), CONFIG)
    assert spec.key_names == ("demo_request", "email_open", "page_view", "webinar", OTHER_KEY,
                              "page_view.blog", "page_view.pricing")
    f = behaviour_features(spec, snapshots, events)
    assert list(f.columns[:6]) == ["tenure_days", "n_demo_request_7d", "n_demo_request_30d",
                                   "n_demo_request_all", "days_since_demo_request",
                                   "n_email_open_7d"]
    assert f.loc[0, "tenure_days"] == 5
    # Both page views are on pages with their own key: none is left for "other pages".
    assert f.loc[0, "n_page_view.pricing_7d"] == 1 and f.loc[0, "n_page_view.blog_7d"] == 1
    assert f.loc[0, "n_page_view_all"] == 0 and np.isnan(f.loc[0, "days_since_page_view"])
    assert f.loc[0, "days_since_page_view.blog"] == pytest.approx(1.0)
    assert f.loc[0, "days_since_page_view.pricing"] == pytest.approx(4.0)
    assert np.isnan(f.loc[0, "days_since_demo_request"])
    assert f.loc[1, "n_email_open_7d"] == 1 and f.loc[1, "n_page_view.pricing_all"] == 0
    # as_of day 20: the webinar on day 25 is in the future and never counted.
    assert f.loc[2, "n_webinar_all"] == 0 and np.isnan(f.loc[2, "days_since_webinar"])
    assert f.loc[2, "n_demo_request_7d"] == 1 and f.loc[2, "n_page_view.blog_7d"] == 0
    assert f.loc[2, "n_page_view.blog_30d"] == 1 and f.loc[2, "n_page_view.pricing_30d"] == 1


def test_every_matrix_column_holds_what_its_row_of_the_table_says() -> None:
    """The table alone names and places the columns: each value is recomputed here from
    its row (kind, window, key) and the raw events, with no reference to positions."""
    rng = np.random.default_rng(4)
    n = 400
    events = pd.DataFrame({
        "lead_id": rng.choice(["a", "b", "c", "d"], n),
        "timestamp": T0 + pd.to_timedelta(rng.uniform(0, 60, n), unit="D"),
        "event_type": rng.choice(["page_view", "email_open", "demo_request", "sms"], n,
                                 p=[0.5, 0.25, 0.2, 0.05]),
        "detail": rng.choice(["pricing", "blog", "jobs", None], n, p=[0.3, 0.3, 0.1, 0.3])})
    snapshots = pd.DataFrame({"lead_id": ["a", "b", "c", "d", "a"],
                              "as_of": [day(40), day(45), day(50), day(61), day(20)],
                              "created_at": [T0] * 5})
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]),
                            CONFIG.model_copy(update={"min_key_count": 40}))
    assert spec.feature_names == [column.name for column in spec.columns]
    assert "sms" not in spec.event_types and spec.detail_keys  # some pooled, some paired
    matrix = behaviour_features(spec, snapshots, events)
    paired = {(t, d) for t, d in spec.detail_keys}
    for row, snapshot in snapshots.iterrows():
        seen = events.loc[(events["lead_id"] == snapshot["lead_id"])
                          & (events["timestamp"] < snapshot["as_of"])]
        age = (snapshot["as_of"] - seen["timestamp"]).dt.total_seconds() / 86_400
        keys = [(t, d) if (t, d) in paired else (t if t in spec.event_types else OTHER_KEY,
                                                 None)
                for t, d in zip(seen["event_type"], seen["detail"], strict=True)]
        for column in spec.columns:
            assert spec.column(column.name) is column
            value = matrix.loc[row, column.name]
            if column.kind == "tenure":
                assert value == (snapshot["as_of"] - T0).days
                continue
            mine = np.array([k == column.key for k in keys], dtype=bool)
            if column.kind == "since":
                expected = age[mine].min() if mine.any() else np.nan
                np.testing.assert_allclose(value, expected, rtol=1e-12)
            else:
                inside = mine & (age < column.window).to_numpy() if column.window else mine
                assert value == inside.sum(), column
    assert spec.column("industry") is None


def test_a_pickled_spec_carries_its_vocabulary_only() -> None:
    snapshots, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), CONFIG)
    assert spec.placement and spec.columns  # the cached table is built...
    state = spec.__getstate__()
    assert set(state) == {"event_types", "detail_keys", "windows_days"}  # ...not pickled
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and again.feature_names == spec.feature_names
    pd.testing.assert_frame_equal(behaviour_features(again, snapshots, events),
                                  behaviour_features(spec, snapshots, events))


def test_a_table_that_leaves_a_column_unplaced_is_refused() -> None:
    class Gapped(FeatureSpec):
        @property
        def columns(self) -> tuple:  # the last column dropped, the first one twice
            table = FeatureSpec.columns.func(self)
            return (*table[:-1], table[0])

    spec = Gapped(("page_view",), (), (7,))
    with pytest.raises(ValueError, match="does not place every column once"):
        _ = spec.placement


def test_a_page_without_its_own_key_counts_as_an_other_page_visit() -> None:
    snapshots, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), CONFIG)
    unlisted = events.assign(detail=events["detail"].replace("blog", "careers"))
    f = behaviour_features(spec, snapshots, unlisted)
    assert f.loc[0, "n_page_view_all"] == 1 and f.loc[0, "n_page_view.blog_all"] == 0
    assert f.loc[0, "days_since_page_view"] == pytest.approx(1.0)
    assert f.loc[0, "n_page_view.pricing_all"] == 1  # listed pages keep their own key


def test_rare_and_unknown_types_pool_into_other() -> None:
    config = CONFIG.model_copy(update={"min_key_count": 2})
    snapshots, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), config)
    assert spec.event_types == ("page_view",)
    assert spec.detail_keys == ()
    unseen = events.assign(event_type=events["event_type"].replace("email_open", "sms_reply"))
    f = behaviour_features(spec, snapshots, unseen)
    assert f.loc[1, f"n_{OTHER_KEY}_all"] == 1
    assert f.loc[2, f"n_{OTHER_KEY}_all"] == 1  # the demo request, pooled


@pytest.mark.parametrize("dtype", ["category", "string[pyarrow]"])
def test_coded_text_columns_give_the_same_features(dtype: str) -> None:
    snapshots, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), CONFIG)
    coded = events.assign(lead_id=events["lead_id"].astype(dtype),
                          event_type=events["event_type"].astype(dtype),
                          detail=events["detail"].astype(dtype))
    pd.testing.assert_frame_equal(behaviour_features(spec, snapshots, coded),
                                  behaviour_features(spec, snapshots, events))


def test_lookup_codes_maps_categories_unknowns_and_missing() -> None:
    values = pd.Categorical(["b", None, "zz", "a", "b"])
    assert lookup_codes(("a", "b"), values).tolist() == [1, -1, -1, 0, 1]
    assert lookup_codes(("a", "b"), np.asarray(values, dtype=object)).tolist() == [1, -1, -1,
                                                                                   0, 1]


def test_detail_event_types_limit_detail_columns() -> None:
    config = CONFIG.model_copy(update={"detail_event_types": ["email_open"]})
    _, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), config)
    assert spec.detail_keys == ()


def test_an_empty_detail_type_list_means_no_detail_columns_and_none_means_every_type(
        ) -> None:
    _, events = frames()
    types, details = list(events["event_type"]), list(events["detail"])
    every = fit_feature_spec(types, details, CONFIG.model_copy(
        update={"detail_event_types": None}))
    assert every.detail_keys  # the frames have details worth a column
    assert fit_feature_spec(types, details, CONFIG.model_copy(
        update={"detail_event_types": []})).detail_keys == ()


def test_feature_names_are_safe_for_model_libraries() -> None:
    spec = fit_feature_spec(["page_view"], ['Pricing: "Enterprise", {EU}'], CONFIG)
    assert all(not set(name) & set(':"{},[]') for name in spec.feature_names)


def test_missing_or_naive_timestamps_are_refused() -> None:
    snapshots, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), CONFIG)
    missing = snapshots.assign(as_of=snapshots["as_of"].where(snapshots.index != 1))
    with pytest.raises(ValueError, match=r"snapshots.as_of is missing in row\(s\) \[1\]"):
        behaviour_features(spec, missing, events)
    naive = events.assign(timestamp=events["timestamp"].dt.tz_localize(None))
    with pytest.raises(ValueError, match=r"events\.timestamp must hold tz-aware"):
        behaviour_features(spec, snapshots, naive)


def test_point_in_time_pairs_are_strictly_before() -> None:
    pit = point_in_time(np.array([0, 0]), np.array([10, 20]), np.array([0, 0, 0, 1]),
                        np.array([10, 5, 19, 1]))
    # as_of 10 sees only the event at 5 (the one at exactly 10 is not before it);
    # as_of 20 sees 5, 10 and 19, in time order; lead 1's event is never read.
    assert list(pit.snapshot) == [0, 1, 1, 1] and list(pit.event) == [1, 1, 0, 2]
    assert pit.age_days == pytest.approx(np.array([5, 15, 10, 1]) / NS_PER_DAY)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40)), max_size=40),
       st.lists(st.integers(1, 45), min_size=1, max_size=6))
def test_one_snapshot_per_lead_pairs_like_the_general_search(
        events: list[tuple[int, int]], as_of: list[int]) -> None:
    """Lead i's only snapshot at position i takes a shortcut: it pairs exactly as the
    search does when the same leads are coded from 1 (events of leads without a
    snapshot included)."""
    lead = np.array([e[0] for e in events], dtype=np.int64)
    time = np.array([e[1] for e in events], dtype=np.int64)
    n = len(as_of)
    shortcut = point_in_time(np.arange(n), np.array(as_of), lead, time)
    searched = point_in_time(np.arange(1, n + 1), np.array(as_of), lead + 1, time)
    np.testing.assert_array_equal(shortcut.snapshot, searched.snapshot)
    np.testing.assert_array_equal(shortcut.event, searched.event)
    np.testing.assert_array_equal(shortcut.age_days, searched.age_days)


def test_single_lead_array_path_matches_batch() -> None:
    snapshots, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), CONFIG)
    batch = behaviour_features(spec, snapshots, events)
    lead = events.loc[events["lead_id"] == "a"]
    data = SnapshotEvents(np.zeros(1, dtype=np.int64), to_ns(pd.Series([day(20)])),
                          np.zeros(len(lead), dtype=np.int64), to_ns(lead["timestamp"]),
                          lead["event_type"].to_numpy(object), lead["detail"].to_numpy(object))
    single = featurise(spec, data, np.array([20.0]))
    np.testing.assert_array_equal(single[0], batch.loc[2].to_numpy())


def test_features_written_into_the_model_block_are_the_model_frame_of_them() -> None:
    """Scoring writes the behaviour features straight into the model input's number block
    (stale values there are overwritten); the frame is the one built from columns."""
    snapshots, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), CONFIG)
    columns = feature_columns(Attributes(categorical=["industry"], numeric=["employees"]), spec)
    leads = snapshots.assign(industry=["retail", None, "retail"], employees=[10, None, 3])
    by_columns = model_frame(pd.concat([leads, behaviour_features(spec, snapshots, events)],
                                       axis=1), columns)
    numbers = numbers_block(len(leads), columns)
    numbers.fill(7.0)  # what a reused block could hold: every cell must be written
    data = snapshot_events(snapshots, events)
    tenure = (data.snapshot_as_of - to_ns(snapshots["created_at"])) / NS_PER_DAY
    written = featurise(spec, data, tenure, out=behaviour_block(numbers, columns))
    assert np.shares_memory(written, numbers)
    pd.testing.assert_frame_equal(model_frame(leads, columns, numbers=numbers), by_columns)
    with pytest.raises(ValueError, match="column by column"):
        featurise(spec, data, tenure, out=np.zeros((len(leads), len(spec.feature_names))))


def test_the_model_reads_the_features_and_numbers_as_float32_of_the_float64_values() -> None:
    """The model's input holds float32 numbers: the features written into its block are
    the float64 features rounded to float32 (no other difference), and so are the
    numeric attributes (as a batch, the API and a Dask worker give them to the model)."""
    snapshots, events = frames()
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), CONFIG)
    data = snapshot_events(snapshots, events)
    tenure = (data.snapshot_as_of - to_ns(snapshots["created_at"])) / NS_PER_DAY + 1 / 3
    wide = featurise(spec, data, tenure)
    narrow = featurise(spec, data, tenure, out=np.empty(wide.shape, np.float32, order="F"))
    assert wide.dtype == np.float64 and narrow.dtype == np.float32
    assert not np.array_equal(wide, narrow.astype(np.float64), equal_nan=True)  # a third
    np.testing.assert_array_equal(narrow, wide.astype(np.float32))
    columns = feature_columns(Attributes(categorical=[], numeric=["revenue"]), spec)
    leads = pd.concat([snapshots.assign(revenue=[1e9 + 1, None, 0.1]),
                       pd.DataFrame(wide, columns=spec.feature_names)], axis=1)
    frame = model_frame(leads, columns)
    assert (frame.dtypes == np.float32).all()
    np.testing.assert_array_equal(frame.to_numpy(),
                                  leads[list(columns.numeric)].to_numpy(np.float32))


# ---------------------------------------------------------------- property tests
TYPES = ["page_view", "email_open", "demo_request", "form"]
DETAILS = [None, "pricing", "blog"]


@st.composite
def histories(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    n_leads = draw(st.integers(1, 4))
    leads = [f"L{i}" for i in range(n_leads)]
    n_events = draw(st.integers(0, 40))
    events = pd.DataFrame({
        "lead_id": draw(st.lists(st.sampled_from(leads), min_size=n_events, max_size=n_events)),
        "timestamp": [day(x) for x in draw(st.lists(
            st.floats(0, 120, allow_nan=False), min_size=n_events, max_size=n_events))],
        "event_type": draw(st.lists(st.sampled_from(TYPES), min_size=n_events,
                                    max_size=n_events)),
        "detail": draw(st.lists(st.sampled_from(DETAILS), min_size=n_events,
                                max_size=n_events)),
    })
    n_snapshots = draw(st.integers(1, 6))
    snapshots = pd.DataFrame({
        "lead_id": draw(st.lists(st.sampled_from(leads), min_size=n_snapshots,
                                 max_size=n_snapshots)),
        "as_of": [day(x) for x in draw(st.lists(st.floats(0, 120, allow_nan=False),
                                                min_size=n_snapshots, max_size=n_snapshots))],
        "created_at": T0,
    })
    cutoff = draw(st.floats(0, 120, allow_nan=False))
    return snapshots, events, cutoff


SPEC = fit_feature_spec(TYPES * 2, [None, "pricing", "blog", None] * 2, CONFIG)


@settings(max_examples=60, deadline=None)
@given(histories())
def test_every_event_before_as_of_counts_under_exactly_one_key(
    history: tuple[pd.DataFrame, pd.DataFrame, float],
) -> None:
    snapshots, events, _ = history
    f = behaviour_features(SPEC, snapshots, events)
    all_time = f[[f"n_{key}_all" for key in SPEC.key_names]].sum(axis=1)
    when = pd.to_datetime(events["timestamp"], utc=True)  # an empty frame's column is object
    for index, row in snapshots.iterrows():
        mine = (events["lead_id"] == row["lead_id"]) & (when < row["as_of"])
        assert all_time[index] == mine.sum()


@settings(max_examples=60, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_events_at_or_after_as_of_never_change_features(
    history: tuple[pd.DataFrame, pd.DataFrame, float], rng: object
) -> None:
    snapshots, events, cutoff = history
    future = events.assign(timestamp=[day(cutoff + rng.uniform(0, 50)) for _ in events.index])
    future = future.assign(lead_id=snapshots["lead_id"].iloc[0]) if len(future) else future
    before = behaviour_features(SPEC, snapshots, events)
    after = behaviour_features(SPEC, snapshots, pd.concat([events, future], ignore_index=True))
    unaffected = snapshots["as_of"] <= day(cutoff)
    pd.testing.assert_frame_equal(before.loc[unaffected], after.loc[unaffected])


@settings(max_examples=60, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_row_order_changes_nothing(
    history: tuple[pd.DataFrame, pd.DataFrame, float], rng: object
) -> None:
    snapshots, events, _ = history
    expected = behaviour_features(SPEC, snapshots, events)
    event_order = list(events.index)
    snapshot_order = list(snapshots.index)
    rng.shuffle(event_order)
    rng.shuffle(snapshot_order)
    shuffled = behaviour_features(SPEC, snapshots.loc[snapshot_order], events.loc[event_order])
    pd.testing.assert_frame_equal(shuffled.loc[expected.index], expected)


@settings(max_examples=40, deadline=None)
@given(histories())
def test_each_snapshot_alone_equals_its_batch_row(
    history: tuple[pd.DataFrame, pd.DataFrame, float],
) -> None:
    snapshots, events, _ = history
    batch = behaviour_features(SPEC, snapshots, events)
    for index in snapshots.index:
        alone = behaviour_features(SPEC, snapshots.loc[[index]], events)
        pd.testing.assert_frame_equal(alone, batch.loc[[index]])


@settings(max_examples=40, deadline=None)
@given(histories(), st.sampled_from(["lead", "mql", "customer", "lost"]))
def test_stage_changes_after_as_of_change_no_snapshot_or_feature(
    history: tuple[pd.DataFrame, pd.DataFrame, float], stage: str
) -> None:
    snapshots, events, cutoff = history
    leads = pd.DataFrame({"lead_id": sorted(set(snapshots["lead_id"]) | set(events["lead_id"])),
                          "created_at": T0})
    empty = pd.DataFrame({"lead_id": pd.Series(dtype="string"),
                          "stage": pd.Series(dtype="string"),
                          "timestamp": pd.Series(dtype="datetime64[ns, UTC]")})
    later = pd.DataFrame({"lead_id": leads["lead_id"], "stage": stage,
                          "timestamp": day(cutoff)})
    config = SnapshotConfig(days_after_creation=[0, 10, 40, 80], horizon_days=30)
    end = day(400)
    before = build_snapshots(EventsDataset(leads, events, empty, {}), config, end).frame
    after = build_snapshots(EventsDataset(leads, events, later, {}), config, end).frame
    kept_before = before.loc[before["as_of"] <= day(cutoff)].drop(columns="label")
    kept_after = after.loc[after["as_of"] <= day(cutoff)].drop(columns="label")
    pd.testing.assert_frame_equal(kept_before.reset_index(drop=True),
                                  kept_after.reset_index(drop=True))
    pd.testing.assert_frame_equal(
        behaviour_features(SPEC, kept_before, events).reset_index(drop=True),
        behaviour_features(SPEC, kept_after, events).reset_index(drop=True))
