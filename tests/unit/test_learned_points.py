"""Learned points: a table a CRM admin can type in (few rules, one per signal, whole points
with the model's sign, whole thresholds from 0), that ranks like the model, round-trips
as a rules file, and reads as edits to the current table; and its pieces by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictive_scoring.config import AttributeRule, EventRule, RulesConfig, load_config
from predictive_scoring.data.dataset import load_events_dataset
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.features import FeatureSpec
from predictive_scoring.learned_points import (
    LearnSettings,
    comparison,
    learn_points,
    model_logodds,
    stage_shares,
    whole_stage_thresholds,
    write_rules,
)
from predictive_scoring.learned_points.candidates import (
    OTHER_DETAILS,
    CandidateSettings,
    categorical_candidates,
    details_by_type,
    event_candidates,
    is_own_event,
    numeric_candidates,
    round_number_in,
)
from predictive_scoring.learned_points.edits import pair_rules, table_edits
from predictive_scoring.learned_points.effects import (
    Probe,
    event_directions,
    key_probes,
    probe_rows,
    value_set_direction,
)
from predictive_scoring.learned_points.fit import design, fit, forward_select
from predictive_scoring.rules import score_points
from predictive_scoring.stages import Stage, stage_for_values
from predictive_scoring.train import TrainingPlan, examples_from_events, train_model
from tests.conftest import BASE, LIGHTGBM, SIMULATED
from tests.conftest import CLASSIC_RULES as RULES
from tests.learned_table import assert_a_crm_table


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A LightGBM model on 6,000 simulated leads and its learned points table."""
    root = tmp_path_factory.mktemp("sim")
    config = simulate_into(SIMULATED, 6_000, 21, root)
    dataset = load_events_dataset(config, Path("."))
    examples, rows, _ = examples_from_events(dataset, config, RULES, BASE.training)
    trained = train_model(examples, rows, TrainingPlan(config, LIGHTGBM, RULES, BASE))
    table = learn_points(trained.scorer, examples.frame, dataset.events, rows["train"],
                         examples.label)
    return {"examples": examples, "rows": rows, "scorer": trained.scorer, "table": table,
            "events": dataset.events}


def test_the_table_is_one_a_crm_admin_can_type_in(learned: dict) -> None:
    rules = learned["table"].rules
    assert_a_crm_table(rules, max_rules=25)
    assert rules.event_rules and rules.attribute_rules
    assert all(rule.description for rule in [*rules.event_rules, *rules.attribute_rules])


@pytest.fixture(scope="module")
def small(learned: dict) -> object:
    """The same model's table with at most 6 rules, the company's sends never admitted."""
    examples, rows = learned["examples"], learned["rows"]
    return learn_points(learned["scorer"], examples.frame, learned["events"], rows["train"],
                        examples.label, LearnSettings(max_rules=6, own_event_min_auc_gain=1.0))


def test_a_smaller_limit_gives_a_smaller_table(learned: dict, small: object) -> None:
    assert_a_crm_table(small.rules, max_rules=6)
    assert 0 < small.fidelity < learned["table"].fidelity


def test_learned_points_rank_like_the_model_and_beat_the_hand_set_points(learned: dict
                                                                       ) -> None:
    examples, test = learned["examples"], learned["rows"]["test"]
    table = comparison(learned["scorer"], learned["table"], examples.frame.iloc[test],
                       learned["events"], examples.label[test], examples.rule_points[test],
                       len(test) // 5)
    auc = table["roc_auc"]
    assert auc["learned points"] >= auc["model"] - 0.02
    assert auc["learned points"] > auc["hand-set points"] + 0.02


def test_no_rule_points_against_a_clear_effect_of_the_model(learned: dict) -> None:
    """Giving test leads one more of a rule's events, or a value the rule counts rather
    than the most common other value, moves the model's log-odds the rule's way (effects
    under 0.05 log-odds are too small to have a direction)."""
    scorer, events = learned["scorer"], learned["events"]
    leads = learned["examples"].frame.iloc[learned["rows"]["test"][:300]].reset_index(
        drop=True)
    own = events.loc[events["lead_id"].isin(leads["lead_id"])]

    def logodds(frame: pd.DataFrame, with_events: pd.DataFrame) -> np.ndarray:
        return model_logodds(scorer, scorer.features(frame, scorer.encode(frame, with_events)))

    before = logodds(leads, own)
    checked = 0
    for rule in learned["table"].rules.event_rules:
        details = [rule.detail] if isinstance(rule.detail, str) else rule.detail
        if details is None:
            continue  # a type whatever its detail: no one event stands for it
        extra = pd.DataFrame({"lead_id": leads["lead_id"],
                              "timestamp": leads["as_of"] - pd.Timedelta(hours=1),
                              "event_type": rule.event_type, "detail": details[0]})
        effect = (logodds(leads, pd.concat([own, extra], ignore_index=True)) - before).mean()
        checked += 1
        assert abs(effect) < 0.05 or np.sign(effect) == np.sign(rule.points), rule
    for rule in learned["table"].rules.attribute_rules:
        if rule.op not in ("eq", "in"):
            continue
        counted = [rule.value] if rule.op == "eq" else rule.value
        others = leads[rule.field].dropna()
        other = others[~others.astype(str).isin(map(str, counted))].mode().iloc[0]
        effect = (logodds(leads.assign(**{rule.field: counted[0]}), own)
                  - logodds(leads.assign(**{rule.field: other}), own)).mean()
        checked += 1
        assert abs(effect) < 0.05 or np.sign(effect) == np.sign(rule.points), rule
    assert checked >= 10


def test_the_rules_file_round_trips_and_scores_as_the_engine_does(learned: dict,
                                                                  tmp_path: Path) -> None:
    rules = learned["table"].rules
    path = write_rules(rules, tmp_path / "rules" / "learned.yaml", "learned in a test")
    assert path.read_text().startswith("# learned in a test\nname: learned_points\n")
    reloaded = load_config(path, RulesConfig)
    assert reloaded == rules
    frame = learned["examples"].frame.iloc[learned["rows"]["test"]]
    np.testing.assert_array_equal(score_points(reloaded, frame, learned["events"]).points,
                                  score_points(rules, frame, learned["events"]).points)


def test_stage_shares_match_the_model_on_training_rows(learned: dict) -> None:
    scorer, rows, examples = learned["scorer"], learned["rows"], learned["examples"]
    train = examples.frame.iloc[rows["train"]]
    model_stages = stage_for_values(
        scorer.probability(scorer.features(train, scorer.encode(train, learned["events"]))),
        scorer.stage_thresholds)
    rules = learned["table"].rules
    learned_stages = score_points(rules, train, learned["events"]).stage
    model_shares = stage_shares(model_stages, scorer.stage_thresholds)
    learned_shares = stage_shares(learned_stages, scorer.stage_thresholds)
    assert list(rules.stage_thresholds) == list(model_shares)
    for stage, share in model_shares.items():
        assert learned_shares[stage] == pytest.approx(share, abs=0.03), stage


def test_the_company_s_own_sends_enter_only_when_they_rank_leads_better(learned: dict,
                                                                       small: object) -> None:
    assert set(learned["table"].own_events) == {"email_send"}
    assert small.own_events == {"email_send": False}
    assert all(rule.event_type != "email_send" for rule in small.rules.event_rules)
    kept = [r for r in learned["table"].rules.event_rules if r.event_type == "email_send"]
    assert all("sent by the company itself" in r.description for r in kept)
    assert [is_own_event(t, None) for t in ("email_send", "EMAIL_SENT", "Email delivered",
                                            "email_open", "webinar_registration",
                                            "resend_request")] == [True, True, True, False,
                                                                   False, False]


def test_edits_pair_the_current_rules_and_keep_their_names(learned: dict) -> None:
    rules, current = learned["table"].rules, learned["scorer"].rules
    edits = table_edits(current, rules)
    learned_names = {r.name for r in [*rules.event_rules, *rules.attribute_rules]}
    current_names = {r.name for r in [*current.event_rules, *current.attribute_rules]}
    shown = edits.groupby("change")["rule"].apply(set)
    assert shown.get("removed", set()) <= current_names - learned_names
    assert shown.get("added", set()) == learned_names - current_names
    assert shown.get("changed", set()) | shown.get("kept", set()) == \
        learned_names & current_names
    assert len(edits) == len(learned_names | current_names)


# ------------------------------------------------------------------ the pieces, by hand
def test_thresholds_are_whole_increasing_from_zero_and_give_each_stage_its_share() -> None:
    points = np.repeat(np.arange(10), 10).astype(float)  # 100 rows, 10 per total
    shares = {Stage.SUBSCRIBER: 0.3, Stage.LEAD: 0.4, Stage.MQL: 0.0, Stage.SQL: 0.3}
    thresholds, start = whole_stage_thresholds(points, shares)
    assert start == 0
    assert thresholds == {Stage.SUBSCRIBER: 0, Stage.LEAD: 3, Stage.MQL: 7, Stage.SQL: 8}
    got = stage_shares(stage_for_values(points, thresholds), thresholds)
    assert got == pytest.approx({Stage.SUBSCRIBER: 0.3, Stage.LEAD: 0.4, Stage.MQL: 0.1,
                                 Stage.SQL: 0.2})  # the empty stage takes one total


def test_negative_totals_shift_the_scale_by_starting_points() -> None:
    points = np.repeat(np.arange(-30, 10), 5) + 0.25  # 200 rows from -29.75 to 9.25
    shares = {Stage.SUBSCRIBER: 0.5, Stage.LEAD: 0.25, Stage.MQL: 0.25}
    thresholds, start = whole_stage_thresholds(points, shares)
    assert start % 5 == 0 and start > 0
    bars = list(thresholds.values())
    assert bars[0] == 0 and bars == sorted(bars) and all(b == int(b) for b in bars)
    stages = stage_for_values(points + start, thresholds)
    assert stage_shares(stages, thresholds) == pytest.approx(
        {Stage.SUBSCRIBER: 0.5, Stage.LEAD: 0.25, Stage.MQL: 0.25})


def test_round_numbers_split_values_as_the_quantile_cuts_do() -> None:
    assert round_number_in(36, 37) == 37
    assert round_number_in(30, 37) == 35
    assert round_number_in(99, 130) == 100
    assert round_number_in(0.02812, 0.02833) == 0.0283
    assert round_number_in(-5, -2) == -2
    with pytest.raises(ValueError, match="empty interval"):
        round_number_in(3, 3)


def test_numeric_ranges_never_share_a_value_and_cover_the_values_they_name() -> None:
    rng = np.random.default_rng(3)
    values = pd.Series(np.r_[rng.exponential(0.03, 995), [np.nan] * 5])
    candidates = numeric_candidates("rate", values, CandidateSettings(numeric_bins=5))
    assert {c.rule.op for c in candidates} == {"lt", "gte", "between", "is_null"}
    frame = pd.DataFrame({"rate": values})
    rules = [c.rule for c in candidates]
    hits = score_points(RulesConfig(name="c", stage_thresholds={}, attribute_rules=rules),
                        frame, None).per_rule.astype(bool)
    for i, a in enumerate(candidates):
        for j, b in enumerate(candidates):
            if i < j and not a.atoms & b.atoms:  # disjoint bins: no row in both
                assert not (hits[:, i] & hits[:, j]).any(), (a.rule, b.rule)
    whole = [c for c in candidates if c.rule.op != "is_null" and len(c.atoms) == 4]
    assert all(hits[:, rules.index(c.rule)].sum() > 0 for c in whole)


def test_categorical_sets_group_values_the_model_treats_alike() -> None:
    values = pd.Series(["a"] * 40 + ["b"] * 30 + ["c"] * 20 + ["d"] * 9 + ["rare"] + [None] * 5)
    contribution = values.map({"a": 0.5, "b": -1.0, "c": 0.4, "d": -0.9, "rare": 3.0}
                              ).fillna(0).to_numpy(float)
    sets = {frozenset(c.rule.value if c.rule.op == "in" else [c.rule.value])
            for c in categorical_candidates("x", values, contribution,
                                            CandidateSettings(min_share=0.02))
            if c.rule.op != "is_null"}
    assert frozenset({"b", "d"}) in sets and frozenset({"a", "c"}) in sets
    assert frozenset({"a", "b"}) not in sets  # not neighbours in the model's order
    assert all("rare" not in s for s in sets) and len(max(sets, key=len)) == 3


def test_the_selection_recovers_a_signed_sparse_law_and_keeps_rules_apart() -> None:
    from predictive_scoring.learned_points.candidates import Candidate

    rng = np.random.default_rng(0)
    flags = rng.integers(0, 2, size=(3_000, 4)).astype(float)
    counts = np.minimum(rng.poisson(2, size=(3_000, 1)), 3).astype(float)
    matrix = np.hstack([flags, counts, counts])  # the last two count the same thing
    target = 1.5 * flags[:, 0] - 0.8 * flags[:, 1] + 0.4 * counts[:, 0] \
        + rng.normal(0, 0.05, 3_000)
    direction = np.array([1, -1, 1, 1, 1, 1])
    candidates = [Candidate(AttributeRule(name=f"f{k}", field=f"f{k}", op="eq", value=1,
                                          points=1), f"f{k}", frozenset([1]), (f"f{k}",))
                  for k in range(4)]
    candidates += [Candidate(EventRule(name=f"e{k}", event_type="e", points=1), "e", None,
                             ("e",)) for k in range(2)]
    summary = design(matrix, target, np.ones(3_000), direction)
    chosen = forward_select(summary, candidates, np.ones(6, dtype=bool), 10, 1e-4)
    coefficients, _ = fit(summary, chosen)
    found = dict(zip(chosen, direction[chosen] * coefficients, strict=True))
    assert set(found) in ({0, 1, 4}, {0, 1, 5})  # one of the two overlapping event rules
    assert [found[0], found[1]] == pytest.approx([1.5, -0.8], abs=0.05)
    assert max(found.get(4, 0), found.get(5, 0)) == pytest.approx(0.4, abs=0.05)
    wrong_sign = forward_select(design(matrix, target, np.ones(3_000), -direction),
                                candidates, np.ones(6, dtype=bool), 10, 1e-4)
    assert 0 not in wrong_sign  # a rule never enters against its direction


def test_edits_say_kept_changed_added_and_removed() -> None:
    current = RulesConfig(name="now", stage_thresholds={Stage.LEAD: 0}, event_rules=[
        EventRule(name="demo", event_type="demo_request", points=16),
        EventRule(name="pricing", event_type="page_view", detail="pricing", points=10,
                  cap=30),
        EventRule(name="bounce", event_type="email_bounce", points=-10)],
        attribute_rules=[
        AttributeRule(name="senior", field="seniority", op="in",
                      value=["director", "vp", "c_level"], points=10),
        AttributeRule(name="tiny", field="employees", op="lt", value=10, points=-10),
        AttributeRule(name="student", field="seniority", op="eq", value="student",
                      points=-15)])
    learned = RulesConfig(name="learned", stage_thresholds={Stage.LEAD: 0}, event_rules=[
        EventRule(name="demo_request", event_type="demo_request", points=16),
        EventRule(name="pricing_page_visit", event_type="page_view", detail="pricing",
                  points=6, cap=6, half_life_days=7),
        EventRule(name="email_bounce", event_type="email_bounce", points=3)],
        attribute_rules=[
        AttributeRule(name="seniority_vp_or_c_level_or_director", field="seniority",
                      op="in", value=["vp", "c_level", "director", "manager"], points=7),
        AttributeRule(name="employees_under_37", field="employees", op="lt", value=37,
                      points=-7),
        AttributeRule(name="country_br", field="country", op="eq", value="br", points=-5)])
    edits = table_edits(current, learned).set_index("rule")
    assert edits["change"].to_dict() == {
        "demo": "kept", "pricing": "changed", "bounce": "changed", "senior": "changed",
        "tiny": "changed", "country_br": "added", "student": "removed"}
    assert edits.loc["pricing", "what changes"] == (
        "points +10 -> +6; cap (points) 30 -> 6; half-life (days) none -> 7")
    assert edits.loc["bounce", "what changes"] == "points -10 -> +3"
    assert edits.loc["tiny", "what changes"] == (
        "points -10 -> -7; condition employees < 10 -> employees < 37")
    assert edits.loc["student", "current points"] == "-15"
    assert edits.loc["student", "learned points"] == ""
    assert [p.change for p in pair_rules(current, current)] == ["kept"] * 6


def test_each_key_is_probed_with_its_most_frequent_event_and_weighed_by_its_share() -> None:
    spec = FeatureSpec(("page_view", "demo_request"), (("page_view", "pricing"),), (7,))
    events = pd.DataFrame({
        "event_type": ["page_view"] * 7 + ["demo_request"] * 2 + ["unlisted"],
        "detail": ["pricing"] * 3 + ["blog", "blog", "careers", None, None, None, "x"]})
    probes = key_probes(spec, events)
    assert probes == {("page_view", "pricing"): Probe("page_view", "pricing", 3 / 7),
                      ("page_view", None): Probe("page_view", "blog", 4 / 7),
                      ("demo_request", None): Probe("demo_request", None, 1.0)}
    candidates = event_candidates(spec, details_by_type(events), CandidateSettings(
        caps=(None,), half_lives_days=(None,)))
    keys = {c.atoms and next(iter(c.atoms)): c.keys for c in candidates
            if c.field == "page_view"}
    assert keys == {None: (("page_view", None), ("page_view", "pricing")),
                    OTHER_DETAILS: (("page_view", None),),
                    "pricing": (("page_view", "pricing"),)}
    effects = {("page_view", None): -0.02, ("page_view", "pricing"): 0.1,
               ("demo_request", None): 0.004}
    # the whole type: (4 * -0.02 + 3 * 0.1) / 7 = +0.031; a rule needs 0.01 by default
    assert list(event_directions(list(keys.values()), effects, probes)) == [1, -1, 1]
    assert list(event_directions(list(keys.values()), effects, probes, 0.05)) == [0, 0, 1]
    assert event_directions([(("demo_request", None),)], effects, probes)[0] == 0


def test_a_value_set_s_sign_is_the_model_s_change_from_the_most_common_other_value() -> None:
    logodds = {"software": 0.6, "finance": 0.4, "retail": -0.3, "education": -0.6,
               "health": 0.405}
    shares = {"software": 0.4, "finance": 0.2, "retail": 0.2, "education": 0.1,
              "health": 0.1}
    assert value_set_direction(["retail", "education"], "software", logodds, shares) == -1
    # better than the average lead, yet worse than the most common other value
    assert value_set_direction(["finance"], "software", logodds, shares) == -1
    assert value_set_direction(["software"], "finance", logodds, shares) == 1
    # one value clearly the other way: no direction; a change under the minimum: none
    assert value_set_direction(["software", "retail"], "finance", logodds, shares) == 0
    assert value_set_direction(["health"], "finance", logodds, shares) == 0


def test_effects_are_measured_on_one_snapshot_per_lead() -> None:
    frame = pd.DataFrame({"lead_id": np.repeat(np.arange(50), 4)})
    rows = probe_rows(frame, 30, 7)
    assert len(rows) == 30 and list(rows) == sorted(rows)
    assert frame["lead_id"].iloc[rows].is_unique
    assert frame["lead_id"].iloc[probe_rows(frame, 100, 7)].nunique() == 50
    np.testing.assert_array_equal(rows, probe_rows(frame, 30, 7))
    assert not np.array_equal(rows, probe_rows(frame, 30, 8))


def test_to_points_scale_caps_and_names(learned: dict) -> None:
    from predictive_scoring.learned_points import to_rules
    from predictive_scoring.learned_points.candidates import Candidate

    chosen = [Candidate(EventRule(name="c", event_type="demo_request", points=1, cap=3,
                                  half_life_days=30), "demo_request", None, ()),
              Candidate(AttributeRule(name="c", field="seniority", op="eq", value="vp",
                                      points=1), "seniority", frozenset(["vp"]), ()),
              Candidate(AttributeRule(name="c", field="employees", op="lt", value=5,
                                      points=1), "employees", frozenset([0]), ())]
    table = to_rules(chosen, np.array([math.log(2), -0.5 * math.log(2), 0.01]), 10.0)
    demo, = table.event_rules
    assert (demo.name, demo.points, demo.cap) == ("demo_request", 10, 30)
    assert demo.description == ("+10 for each demo request, up to 3 demo requests (+30 at "
                                "most); its points halve every 30 days")
    assert [(r.name, r.points, r.description) for r in table.attribute_rules] == [
        ("seniority_vp", -5, "Seniority is vp: -5")]  # 0.01 log-odds rounds to 0 points
