import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from predictive_scoring.config import (
    AttributeRule,
    EventRule,
    RulesConfig,
    load_config,
)
from predictive_scoring.rules import (
    PointsResult,
    PointsScorer,
    PreparedRules,
    attribute_rule_points,
    check_rule_fields,
    points_from_arrays,
    score_points,
)

REPO = Path(__file__).parents[2]
CLASSIC_PATH = REPO / "configs" / "rules" / "classic_points.yaml"
T0 = pd.Timestamp("2025-03-01T00:00:00Z")
THRESHOLDS = {"subscriber": 1, "lead": 6, "mql": 16, "sql": 50, "opportunity": 60}


def day(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=n)


def rules_of(events: Sequence[EventRule] = (), attributes: Sequence[AttributeRule] = ()
             ) -> RulesConfig:
    return RulesConfig(name="test_rules", event_rules=list(events),
                       attribute_rules=list(attributes), stage_thresholds=THRESHOLDS)


def events_frame(rows: list[tuple[str, pd.Timestamp, str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["lead_id", "timestamp", "event_type", "detail"])


def leads_frame(lead_ids: list[str], as_of: list[pd.Timestamp], **columns: list) -> pd.DataFrame:
    return pd.DataFrame({"lead_id": lead_ids, "as_of": as_of, **columns})


def event_points(rule: EventRule, events: pd.DataFrame, leads: pd.DataFrame) -> np.ndarray:
    return score_points(rules_of([rule]), leads, events).per_rule[:, 0]


# ------------------------------------------------------------------------ event rules
def test_points_add_up_until_the_cap() -> None:
    rule = EventRule(name="open", event_type="email_open", points=2, cap=10)
    events = events_frame([("a", day(1), "email_open", None)] * 3
                          + [("b", day(1), "email_open", None)] * 7)
    leads = leads_frame(["a", "b"], [day(10), day(10)])
    assert event_points(rule, events, leads).tolist() == [6.0, 10.0]


def test_negative_rules_are_capped_in_magnitude() -> None:
    rule = EventRule(name="unsub", event_type="email_unsubscribe", points=-20, cap=30)
    events = events_frame([("a", day(1), "email_unsubscribe", None)]
                          + [("b", day(d), "email_unsubscribe", None) for d in (1, 2, 3)])
    leads = leads_frame(["a", "b"], [day(10), day(10)])
    assert event_points(rule, events, leads).tolist() == [-20.0, -30.0]


def test_an_event_one_half_life_old_gives_half_the_points() -> None:
    rule = EventRule(name="visit", event_type="page_view", points=15, half_life_days=30)
    events = events_frame([("a", day(0), "page_view", "contact"),
                           ("b", day(-30), "page_view", "contact"),
                           ("c", day(15), "page_view", "contact")])
    leads = leads_frame(["a", "b", "c"], [day(30)] * 3)
    expected = [7.5, 15 / 4, 15 * 2 ** -0.5]
    assert event_points(rule, events, leads) == pytest.approx(expected, rel=1e-12)


def test_the_cap_applies_to_the_decayed_total() -> None:
    rule = EventRule(name="visit", event_type="page_view", points=10, cap=12,
                     half_life_days=10)
    events = events_frame([("a", day(0), "page_view", None)] * 3)  # 3 x 5 = 15 -> 12
    leads = leads_frame(["a"], [day(10)])
    assert event_points(rule, events, leads).tolist() == [12.0]


@pytest.mark.parametrize(("detail", "expected"), [
    (None, 4.0),  # any detail, and events without one
    ("pricing", 1.0),
    (["pricing", "contact"], 2.0),
    (["careers"], 0.0),
])
def test_detail_filters(detail: str | list[str] | None, expected: float) -> None:
    rule = EventRule(name="visit", event_type="page_view", detail=detail, points=1)
    events = events_frame([("a", day(1), "page_view", "pricing"),
                           ("a", day(1), "page_view", "contact"),
                           ("a", day(1), "page_view", "blog"),
                           ("a", day(1), "page_view", None),
                           ("a", day(1), "email_open", "pricing")])
    assert event_points(rule, events, leads_frame(["a"], [day(5)])).tolist() == [expected]


def test_events_without_a_detail_column_match_only_rules_without_a_detail() -> None:
    events = events_frame([("a", day(1), "page_view", "pricing")]).drop(columns="detail")
    rules = rules_of([EventRule(name="any", event_type="page_view", points=1),
                      EventRule(name="pricing", event_type="page_view", detail="pricing",
                                points=1)])
    result = score_points(rules, leads_frame(["a"], [day(5)]), events)
    assert result.per_rule.tolist() == [[1.0, 0.0]]


def test_events_at_or_after_as_of_never_count() -> None:
    rule = EventRule(name="demo", event_type="demo_request", points=16)
    events = events_frame([("a", day(5), "demo_request", None),
                           ("b", day(5) + pd.Timedelta(microseconds=1), "demo_request", None),
                           ("c", day(5) - pd.Timedelta(microseconds=1), "demo_request", None)])
    leads = leads_frame(["a", "b", "c"], [day(5)] * 3)
    assert event_points(rule, events, leads).tolist() == [0.0, 0.0, 16.0]


def test_events_of_other_leads_are_ignored() -> None:
    rule = EventRule(name="demo", event_type="demo_request", points=16)
    events = events_frame([("a", day(1), "demo_request", None),
                           ("zz_not_scored", day(1), "demo_request", None)])
    leads = leads_frame(["b", "a"], [day(5), day(5)])
    assert event_points(rule, events, leads).tolist() == [0.0, 16.0]


def test_several_snapshots_of_one_lead() -> None:
    rule = EventRule(name="open", event_type="email_open", points=2)
    events = events_frame([("a", day(d), "email_open", None) for d in (3, 1, 7)]
                          + [("b", day(2), "email_open", None)])
    leads = leads_frame(["a", "b", "a", "a"], [day(8), day(8), day(1), day(4)])
    assert event_points(rule, events, leads).tolist() == [6.0, 2.0, 0.0, 4.0]


def test_table_data_gives_event_rules_zero() -> None:
    rules = rules_of([EventRule(name="demo", event_type="demo_request", points=16)],
                     [AttributeRule(name="big", field="employees", op="gte", value=100,
                                    points=5)])
    result = score_points(rules, pd.DataFrame({"employees": [500, 10]}), None)
    assert result.rule_names == ("demo", "big")
    assert result.per_rule.tolist() == [[0.0, 5.0], [0.0, 0.0]]


def test_as_of_must_be_tz_aware() -> None:
    rules = rules_of([EventRule(name="demo", event_type="demo_request", points=16)])
    events = events_frame([("a", day(1), "demo_request", None)])
    leads = leads_frame(["a"], [pd.Timestamp("2025-03-05")])
    with pytest.raises(ValueError, match=r"snapshots\.as_of must hold tz-aware timestamps"):
        score_points(rules, leads, events)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['as_of'\]"):
        score_points(rules, leads.drop(columns="as_of"), events)


# ------------------------------------------------------------------- attribute rules
VALUES = np.array([5, 10, 25, None], dtype=object)


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", 10, [0, 1, 0, 0]),
    ("ne", 10, [1, 0, 1, 0]),  # a missing value is not "not 10": it is unknown
    ("in", [5, 25], [1, 0, 1, 0]),
    ("gt", 10, [0, 0, 1, 0]),
    ("gte", 10, [0, 1, 1, 0]),
    ("lt", 10, [1, 0, 0, 0]),
    ("lte", 10, [1, 1, 0, 0]),
    ("between", [5, 10], [1, 1, 0, 0]),  # inclusive at both ends
    ("between", [30, 40], [0, 0, 0, 0]),
    ("contains", "2", [0, 0, 1, 0]),
    ("is_null", None, [0, 0, 0, 1]),
])
def test_each_operator(op: str, value: object, expected: list[int]) -> None:
    rule = AttributeRule(name="r", field="f", op=op, value=value, points=3)
    points = attribute_rule_points([rule], {"f": VALUES}, len(VALUES))
    assert points[:, 0].tolist() == [3.0 * e for e in expected]


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", "Software", [1, 0, 0, 0, 0]),  # exact, case-sensitive
    ("ne", "Software", [0, 1, 1, 1, 0]),
    ("in", ["Retail", "Mining"], [0, 1, 0, 0, 0]),
    ("contains", "SOFT", [1, 0, 1, 0, 0]),  # case-insensitive substring
    ("gt", "Retail", [1, 0, 1, 0, 0]),  # text bounds compare text
    ("gt", 3, [0, 0, 0, 0, 0]),  # text that is no number cannot be compared to one
    ("is_null", None, [0, 0, 0, 0, 1]),
])
def test_operators_on_text(op: str, value: object, expected: list[int]) -> None:
    column = pd.Series(["Software", "Retail", "software house", "Banking", None],
                       dtype="string")
    rule = AttributeRule(name="r", field="industry", op=op, value=value, points=1)
    points = attribute_rule_points([rule], {"industry": column}, len(column))
    assert points[:, 0].tolist() == expected


def test_numbers_written_as_text_compare_as_numbers() -> None:
    employees = pd.Series(["12", " 7 ", "1e3", "10.0", "ten", ""], dtype="string")
    rules = [AttributeRule(name="small", field="employees", op="lt", value=10, points=1),
             AttributeRule(name="ten", field="employees", op="eq", value=10, points=1),
             AttributeRule(name="ten_text", field="employees", op="eq", value="10", points=1),
             AttributeRule(name="mid", field="employees", op="between", value=["8", 20],
                           points=1)]
    points = attribute_rule_points(rules, {"employees": employees}, len(employees))
    assert points.T.tolist() == [[0, 1, 0, 0, 0, 0],
                                 [0, 0, 0, 1, 0, 0],
                                 [0, 0, 0, 1, 0, 0],
                                 [1, 0, 0, 1, 0, 0]]


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, pd.NaT, "", "   "])
def test_a_missing_value_fails_every_comparison_but_is_null(missing: object) -> None:
    column = np.array([missing], dtype=object)
    rules = [AttributeRule(name=f"r{i}", field="f", op=op, value=value, points=1)
             for i, (op, value) in enumerate([
                 ("eq", "x"), ("ne", "x"), ("ne", 3), ("in", ["x", 1]), ("gt", 0),
                 ("gte", -1e9), ("lt", 1e9), ("lte", 0), ("between", [-1e9, 1e9]),
                 ("contains", ""), ("gt", "a"), ("eq", False)])]
    rules.append(AttributeRule(name="null", field="f", op="is_null", points=-5))
    points = attribute_rule_points(rules, {"f": column}, 1)
    assert points[0].tolist() == [0.0] * (len(rules) - 1) + [-5.0]


def test_booleans_and_their_text_spellings() -> None:
    rule = AttributeRule(name="opted_in", field="f", op="eq", value=True, points=1)
    column = np.array([True, False, "TRUE", "false", 1, 0, None], dtype=object)
    points = attribute_rule_points([rule], {"f": column}, len(column))
    assert points[:, 0].tolist() == [1, 0, 1, 0, 1, 0, 0]
    bools = attribute_rule_points([rule], {"f": pd.Series([True, False, None],
                                                          dtype="boolean")}, 3)
    assert bools[:, 0].tolist() == [1, 0, 0]


def test_values_that_cannot_be_compared_are_not_matched() -> None:
    column = np.array([{"a": 1}, [1, 2], object(), pd.Timestamp("2025-01-01", tz="UTC"), 7],
                      dtype=object)
    rules = [AttributeRule(name=op, field="f", op=op, value=value, points=1)
             for op, value in [("gt", 5), ("eq", 7), ("contains", "2025"), ("lt", "2026-01")]]
    points = attribute_rule_points(rules, {"f": column}, len(column))
    assert points.T.tolist() == [[0, 0, 0, 0, 1],
                                 [0, 0, 0, 0, 1],
                                 [0, 0, 0, 1, 0],
                                 [0, 0, 0, 1, 0]]  # ISO time as text orders like time


def test_one_lead_from_a_dict_of_arrays() -> None:
    rules = [AttributeRule(name="senior", field="seniority", op="in",
                           value=["director", "vp"], points=10),
             AttributeRule(name="tiny", field="employees", op="lt", value=10, points=-10)]
    one_lead = {"seniority": np.array(["vp"]), "employees": np.array([4])}
    assert attribute_rule_points(rules, one_lead, 1).tolist() == [[10.0, -10.0]]


@settings(max_examples=8, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-20, 20), st.floats(-20, 20),
                          st.sampled_from(["7", "12.5", "x", "Vp", "", "NaN"])),
                min_size=512, max_size=560))
def test_long_columns_score_like_single_cells(cells: list[object]) -> None:
    rules = [AttributeRule(name=f"r{i}", field="f", op=op, value=value, points=1)
             for i, (op, value) in enumerate([
                 ("gte", 7), ("eq", "x"), ("contains", "v"), ("is_null", None),
                 ("between", [0, "12.5"]), ("ne", 7)])]
    column = np.array(cells, dtype=object)
    whole = attribute_rule_points(rules, {"f": column}, len(cells))
    one_by_one = np.vstack([attribute_rule_points(rules, {"f": column[i:i + 1]}, 1)
                            for i in range(len(cells))])
    np.testing.assert_array_equal(whole, one_by_one)


REMEMBERED_RULES = [
    AttributeRule(name="senior", field="f", op="in", value=["vp", "1", True], points=10),
    AttributeRule(name="one", field="f", op="eq", value=1, points=3),
    AttributeRule(name="true_text", field="f", op="eq", value="True", points=20),
    AttributeRule(name="small", field="f", op="lt", value=10, points=-4),
    AttributeRule(name="text_after_m", field="f", op="gt", value="m", points=2),
    AttributeRule(name="says_vp", field="f", op="contains", value="VP", points=1),
    AttributeRule(name="f_unknown", field="f", op="is_null", points=-5),
    AttributeRule(name="big", field="g", op="gte", value=100, points=7),
    AttributeRule(name="g_unknown", field="g", op="is_null", points=-1),
]
CELLS = st.one_of(st.none(), st.booleans(), st.integers(-3, 30), st.floats(allow_nan=True),
                  st.sampled_from(["1", "1.0", "True", "vp", "SVP sales", "zeta", "", " 7 ",
                                   "NaN"]),
                  st.lists(st.integers(0, 2), max_size=2))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(CELLS, st.floats(allow_nan=True)), min_size=1, max_size=30))
@example([(1, 0.0), (True, 0.0), (1.0, 0.0), ("1", 0.0), (math.nan, math.nan), (None, 1.0)])
def test_remembered_points_of_one_row_are_the_points_computed_afresh(
        rows: list[tuple[object, float]]) -> None:
    rules = rules_of(attributes=REMEMBERED_RULES)
    remembered = PreparedRules(rules, max_values=6)  # small: forgetting happens too
    for f, g in rows * 2:  # each value again: remembered (or forgotten and recomputed)
        columns = {"f": _one_cell(f), "g": np.array([g])}
        np.testing.assert_array_equal(
            remembered.attribute_points(columns, 1),
            attribute_rule_points(REMEMBERED_RULES, columns, 1),
            err_msg=f"f={f!r} ({type(f).__name__}), g={g!r}")


def _one_cell(value: object) -> np.ndarray:
    column = np.empty(1, dtype=object)
    column[0] = value
    return column


def test_remembered_points_of_several_rows_and_their_errors() -> None:
    rules = rules_of(attributes=REMEMBERED_RULES)
    columns = {"f": np.array(["vp", None, 4], dtype=object), "g": np.array([1.0, 200, np.nan])}
    np.testing.assert_array_equal(PreparedRules(rules).attribute_points(columns, 3),
                                  attribute_rule_points(REMEMBERED_RULES, columns, 3))
    with pytest.raises(ValueError, match="reads column 'g'"):
        PreparedRules(rules).attribute_points({"f": columns["f"][:1]}, 1)


def test_points_from_arrays_refuses_rules_prepared_for_other_rules() -> None:
    rules = rules_of(attributes=REMEMBERED_RULES)
    other = rules_of(attributes=REMEMBERED_RULES[:1]).model_copy(update={"name": "other"})
    columns = {"f": np.array(["vp"], dtype=object), "g": np.array([3.0])}
    result = points_from_arrays(rules, columns, 1, None, prepared=PreparedRules(rules))
    assert result.per_rule.tolist() == points_from_arrays(rules, columns, 1, None).per_rule.tolist()
    with pytest.raises(ValueError, match="built for 'other', not for 'test_rules'"):
        points_from_arrays(rules, columns, 1, None, prepared=PreparedRules(other))


def test_a_column_of_the_wrong_length_is_an_error() -> None:
    rule = AttributeRule(name="r", field="f", op="eq", value=1, points=1)
    with pytest.raises(ValueError, match=r"column 'f' has shape \(2,\).*\(3,\)"):
        attribute_rule_points([rule], {"f": np.array([1, 2])}, 3)


def test_the_caller_frame_is_not_changed() -> None:
    leads = pd.DataFrame({"lead_id": ["a"], "as_of": [day(5)], "employees": ["12"]})
    before = leads.copy()
    rules = rules_of([EventRule(name="demo", event_type="demo_request", points=16)],
                     [AttributeRule(name="big", field="employees", op="gt", value=10,
                                    points=5)])
    score_points(rules, leads, events_frame([("a", day(1), "demo_request", None)]))
    pd.testing.assert_frame_equal(leads, before)


# ---------------------------------------------------------------------- field checks
def test_missing_field_names_source_rule_field_and_columns() -> None:
    rules = rules_of(attributes=[
        AttributeRule(name="senior_buyer", field="seniority", op="eq", value="vp", points=10),
        AttributeRule(name="size", field="employees", op="gt", value=10, points=1)])
    with pytest.raises(ValueError) as error:
        check_rule_fields(rules, ["lead_id", "Seniority", "employees"], "rules/crm.yaml")
    message = str(error.value)
    assert message.startswith("rules/crm.yaml (rules 'test_rules')")
    assert "rule 'senior_buyer': field 'seniority'" in message
    assert "did you mean 'Seniority'" in message
    assert "['lead_id', 'Seniority', 'employees']" in message
    assert "'size'" not in message
    check_rule_fields(rules, ["seniority", "employees"], "rules/crm.yaml")


def test_score_points_checks_fields_first() -> None:
    rules = rules_of(attributes=[AttributeRule(name="x", field="industry", op="eq",
                                               value="a", points=1)])
    with pytest.raises(ValueError, match="rule 'x': field 'industry' is not a column"):
        score_points(rules, pd.DataFrame({"lead_id": ["a"]}), None)


# --------------------------------------------------------------------- the trail
def test_result_rejects_points_that_are_not_the_trail_sum() -> None:
    with pytest.raises(ValueError, match=r"points must equal per_rule\.sum"):
        PointsResult(np.array([1.0]), np.array(["lead"], dtype=object), ("a",),
                     np.array([[2.0]]))


def test_fired_and_fired_text() -> None:
    per_rule = np.array([[16.0, 3.96, -15.0, 0.0], [0.0, 0.04, 0.0, 0.0],
                         [0.0, 0.0, 0.0, 0.0], [2.5, 0.0, 0.0, -0.0]])
    rules = rules_of()
    result = PointsResult.from_trail(per_rule, ["demo_request", "email_open", "student",
                                                "other"], rules)
    assert result.fired() == [[("demo_request", 16.0), ("email_open", 3.96),
                               ("student", -15.0)], [("email_open", 0.04)], [],
                              [("demo_request", 2.5)]]
    assert result.fired_text() == ["demo_request +16; email_open +4.0; student -15", "", "",
                                   "demo_request +2.5"]


EVENT_TYPES = ["email_open", "page_view", "demo_request"]
DETAILS = [None, "pricing", "contact"]

event_rules = st.builds(
    EventRule,
    name=st.just("r"),
    event_type=st.sampled_from(EVENT_TYPES),
    detail=st.one_of(st.none(), st.sampled_from(DETAILS[1:]),
                     st.lists(st.sampled_from(DETAILS[1:]), min_size=1, max_size=2)),
    points=st.sampled_from([-20.0, -2.5, 1.0, 2.0, 15.0]),
    cap=st.one_of(st.none(), st.sampled_from([5.0, 12.0, 30.0])),
    half_life_days=st.one_of(st.none(), st.sampled_from([1.0, 7.0, 30.0])),
)
random_events = st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 40),
                                   st.sampled_from(EVENT_TYPES), st.sampled_from(DETAILS)),
                         max_size=40)
snapshots = st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 45)), min_size=1,
                     max_size=6)


def reference_points(rule: EventRule, events: list[tuple], lead: str, as_of: int) -> float:
    """The rule by hand: one event at a time, as the YAML reads."""
    wanted = [rule.detail] if isinstance(rule.detail, str) else rule.detail
    total = 0.0
    for event_lead, event_day, event_type, detail in events:
        if (event_lead != lead or event_day >= as_of or event_type != rule.event_type
                or (wanted is not None and detail not in wanted)):
            continue
        decay = 0.5 ** ((as_of - event_day) / rule.half_life_days) if rule.half_life_days else 1
        total += rule.points * decay
    return total if rule.cap is None else max(-abs(rule.cap), min(abs(rule.cap), total))


@settings(max_examples=60, deadline=None)
@given(st.lists(event_rules, min_size=1, max_size=4), random_events, snapshots)
def test_total_is_the_trail_and_the_trail_is_each_rule(
    rules: list[EventRule], events: list[tuple], snaps: list[tuple[str, int]]
) -> None:
    rules = [rule.model_copy(update={"name": f"rule_{i}"}) for i, rule in enumerate(rules)]
    frame = events_frame([(lead, day(d), kind, detail) for lead, d, kind, detail in events])
    leads = leads_frame([lead for lead, _ in snaps], [day(d) for _, d in snaps])
    result = score_points(rules_of(rules), leads, frame)
    expected = [[reference_points(rule, events, lead, d) for rule in rules]
                for lead, d in snaps]
    np.testing.assert_allclose(result.per_rule, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(result.points, result.per_rule.sum(axis=1))
    for row, fired, text in zip(result.per_rule, result.fired(), result.fired_text(),
                                strict=True):
        assert [name for name, _ in fired] == [n for n, p in zip(result.rule_names, row,
                                                                  strict=True) if p != 0]
        shown = [part.split(" ")[0] for part in text.split("; ") if part]
        assert shown == [name for name, points in fired if round(points, 1) != 0]


# ------------------------------------------------------------- the classic scale
@pytest.fixture(scope="module")
def classic() -> RulesConfig:
    return load_config(CLASSIC_PATH, RulesConfig)


NEUTRAL = {"seniority": "manager", "industry": "retail", "employees": 200}
AS_OF = day(60)
CLASSIC_LEADS = {
    # name: (attributes, [(event_type, detail, days before as_of)], points, stage)
    "nothing": ({}, [], 0, "subscriber"),
    "newsletter_only": ({}, [("newsletter_signup", None, 3)], 5, "subscriber"),
    "two_signups_capped": ({}, [("newsletter_signup", None, 3)] * 2, 5, "subscriber"),
    "download": ({}, [("content_download", None, 40)], 8, "lead"),
    # contact visit exactly one half-life (30 days) old: 15 / 2
    "demo_and_contact_visit": ({}, [("demo_request", None, 2), ("page_view", "contact", 30)],
                               16 + 7.5, "mql"),
    # twelve opens one half-life old: 12 x 1 point, capped at 10
    "many_old_opens": ({}, [("email_open", None, 30)] * 12, 10, "lead"),
    "demo_contact_capped_webinars": (
        {}, [("demo_request", None, 1), ("contact_request", None, 1)]
        + [("webinar_attendance", None, 5)] * 3, 16 + 16 + 20, "sql"),
    "senior_buyer_in_software": (
        {"seniority": "vp", "industry": "software"},
        [("demo_request", None, 1), ("contact_request", None, 1),
         ("webinar_attendance", None, 5), ("content_download", None, 9)],
        16 + 16 + 10 + 8 + 10 + 5, "opportunity"),
    "student_at_tiny_company": ({"seniority": "student", "employees": 4},
                                [("demo_request", None, 1)], 16 - 15 - 10, "subscriber"),
    "unknown_size_unsubscribed": ({"employees": None},
                                  [("newsletter_signup", None, 9),
                                   ("email_unsubscribe", None, 1)], 5 - 20 - 5, "subscriber"),
    "event_on_as_of_ignored": ({}, [("demo_request", None, 0)], 0, "subscriber"),
}


def classic_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    names = list(CLASSIC_LEADS)
    attributes = [{**NEUTRAL, **CLASSIC_LEADS[n][0]} for n in names]
    leads = pd.DataFrame({"lead_id": names, "as_of": AS_OF,
                          **{c: [a[c] for a in attributes] for c in NEUTRAL}})
    events = events_frame([(name, AS_OF - pd.Timedelta(days=age), kind, detail)
                           for name in names for kind, detail, age in CLASSIC_LEADS[name][1]])
    return leads, events


def test_classic_scale_points_and_stages(classic: RulesConfig) -> None:
    leads, events = classic_frames()
    result = score_points(classic, leads, events)
    assert result.points == pytest.approx([v[2] for v in CLASSIC_LEADS.values()], rel=1e-12)
    assert list(result.stage) == [v[3] for v in CLASSIC_LEADS.values()]


def test_classic_scale_trail(classic: RulesConfig) -> None:
    leads, events = classic_frames()
    text = dict(zip(CLASSIC_LEADS, score_points(classic, leads, events).fired_text(),
                    strict=True))
    assert text["nothing"] == ""
    assert text["demo_and_contact_visit"] == "contact_page_visit +7.5; demo_request +16"
    assert text["student_at_tiny_company"] == ("demo_request +16; student -15; "
                                               "very_small_company -10")
    assert text["unknown_size_unsubscribed"] == ("newsletter_signup +5; email_unsubscribe -20; "
                                                 "missing_company_size -5")


# ---------------------------------------------------------------------- scikit-learn
XY_RULES = RulesConfig(
    name="xy_rules",
    event_rules=[EventRule(name="demo", event_type="demo_request", points=16)],
    attribute_rules=[
        AttributeRule(name="big_x0", field="x0", op="gt", value=0.5, points=10),
        AttributeRule(name="mid_x1", field="x1", op="between", value=[0.2, 0.6], points=-5),
        AttributeRule(name="no_x0", field="x0", op="is_null", points=-3)],
    stage_thresholds={"subscriber": -100, "lead": 0, "mql": 5})


def expected_failed_checks(estimator: PointsScorer) -> dict[str, str]:
    if estimator.rules is None:
        return {}
    return {"check_fit2d_1feature": "rules read x1, which one-feature data does not have"}


@parametrize_with_checks([PointsScorer(), PointsScorer(XY_RULES)],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator: PointsScorer, check) -> None:
    check(estimator)


# Not yielded by parametrize_with_checks for third-party estimators; the points scorer must
# still behave in DataFrame pipelines (column names, set_output, get_feature_names_out).
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # the checks mix
@pytest.mark.filterwarnings("ignore:X has feature names")  # frames and arrays on purpose
@pytest.mark.parametrize("check", [
    estimator_checks.check_dataframe_column_names_consistency,
    estimator_checks.check_set_output_transform_pandas,
    estimator_checks.check_global_output_transform_pandas,
    estimator_checks.check_transformer_get_feature_names_out_pandas,
    estimator_checks.check_requires_y_none,
])
def test_sklearn_dataframe_checks(check: Callable[[str, PointsScorer], None]) -> None:
    check("PointsScorer", PointsScorer())


def test_scorer_records_and_enforces_column_names() -> None:
    frame = pd.DataFrame({"x1": [0.3, 0.9], "x0": [0.9, 0.1]})
    scorer = PointsScorer(XY_RULES).fit(frame)
    assert list(scorer.feature_names_in_) == ["x1", "x0"] and scorer.n_features_in_ == 2
    assert scorer.transform(frame)[:, 0].tolist() == [10 - 5, 0]  # by name, not position
    with pytest.raises(ValueError, match="same order"):
        scorer.transform(frame[["x0", "x1"]])


def test_scorer_on_arrays_and_frames_matches_score_points() -> None:
    X = np.array([[0.9, 0.3], [0.1, 0.9], [np.nan, 0.5]])
    scorer = PointsScorer(XY_RULES).fit(X)
    assert scorer.transform(X).tolist() == [[10 - 5], [0], [-5 - 3]]
    assert scorer.predict_stage(X).tolist() == ["mql", "lead", "subscriber"]
    frame = pd.DataFrame(X, columns=["x0", "x1"])
    table = score_points(XY_RULES, frame, None)
    np.testing.assert_array_equal(PointsScorer(XY_RULES).fit_transform(frame)[:, 0],
                                  table.points)
    assert scorer.points_result(X).fired_text()[0] == "big_x0 +10; mid_x1 -5"


def test_scorer_reads_mixed_frames_by_column_name() -> None:
    rules = rules_of(attributes=[
        AttributeRule(name="senior", field="title", op="contains", value="director",
                      points=10),
        AttributeRule(name="big", field="employees", op="gte", value=100, points=5)])
    frame = pd.DataFrame({"title": pd.Series(["Sales Director", "Intern", None],
                                             dtype="string"),
                          "country": ["FR", "DE", "US"],
                          "employees": ["250", "12", None]})
    scorer = PointsScorer(rules).fit(frame)
    assert scorer.transform(frame)[:, 0].tolist() == [15, 0, 0]
    assert list(scorer.get_feature_names_out()) == ["rule_points"]
    as_frame = PointsScorer(rules).set_output(transform="pandas").fit_transform(frame)
    assert list(as_frame.columns) == ["rule_points"] and as_frame.index.equals(frame.index)
    pipeline_part = ColumnTransformer([("points", PointsScorer(rules), ["title",
                                                                        "employees"])])
    assert pipeline_part.fit_transform(frame)[:, 0].tolist() == [15, 0, 0]


def test_scorer_without_rules_scores_zero_and_has_no_stages() -> None:
    X = np.arange(6.0).reshape(3, 2)
    scorer = PointsScorer().fit(X)
    assert scorer.transform(X).tolist() == [[0.0]] * 3
    with pytest.raises(ValueError, match="no stage thresholds"):
        scorer.predict_stage(X)


def test_scorer_fit_names_the_missing_column() -> None:
    with pytest.raises(ValueError, match=r"(?s)PointsScorer \(rules 'xy_rules'\).*'x1'.*"
                                         r"Columns present: \['x0'\]"):
        PointsScorer(XY_RULES).fit(np.zeros((3, 1)))
    assert PointsScorer(XY_RULES).fit(np.zeros((3, 2))).n_features_in_ == 2


# ------------------------------------------------------------------ starting points
def test_starting_points_open_every_leads_trail_on_every_path() -> None:
    rules = rules_of(attributes=[AttributeRule(name="vp", field="f", op="eq", value="vp",
                                               points=7)]).model_copy(
        update={"starting_points": 45})
    leads = leads_frame(["a", "b"], [T0, T0], f=["vp", "intern"])
    scored = score_points(rules, leads, None)
    assert scored.points.tolist() == [52.0, 45.0]
    assert scored.rule_names == ("starting_points", "vp")
    assert scored.fired_text() == ["starting_points +45; vp +7", "starting_points +45"]
    assert scored.stage.tolist() == ["sql", "mql"]  # the totals with their start: 50 <= 52
    one = points_from_arrays(rules, {"f": np.array(["vp"], dtype=object)}, 1, None,
                             prepared=PreparedRules(rules))
    assert one.per_rule.tolist() == [[45.0, 7.0]]
    table = PointsScorer(rules).fit(pd.DataFrame({"f": ["intern"]}))
    assert table.transform(pd.DataFrame({"f": ["vp"]})).tolist() == [[52.0]]


def test_a_rule_may_not_take_the_starting_points_name() -> None:
    taken = rules_of(attributes=[AttributeRule(name="starting_points", field="f",
                                               op="is_null", points=1)]).model_dump()
    assert RulesConfig.model_validate(taken).starting_points == 0
    with pytest.raises(ValueError, match=r"repeated: \['starting_points'\]"):
        RulesConfig.model_validate({**taken, "starting_points": 5})
