"""The funnel simulator: contract, reproducibility, B2B realism and an exact oracle."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictive_scoring.config import DatasetConfig, load_config
from predictive_scoring.data import synthetic
from predictive_scoring.data.dataset import load_events_dataset
from predictive_scoring.data.snapshots import build_snapshots, data_end_of
from predictive_scoring.data.synthetic import (
    SimulatedFunnel,
    activity,
    funnel,
    law,
    oracle,
    simulate_funnel,
    write_funnel,
)
from predictive_scoring.stages import funnel_conversion, headline_rates

REPO = Path(__file__).resolve().parents[2]
SIMULATED = REPO / "configs" / "datasets" / "simulated.yaml"
SNAPSHOT_DAYS = (7, 30)
HORIZON = 90
CRM_TO_FUNNEL = {"subscriber": "subscriber", "lead": "lead",
                 "marketingqualifiedlead": "mql", "salesacceptedlead": "sal",
                 "salesqualifiedlead": "sql", "opportunity": "opportunity",
                 "customer": "customer", "closedlost": "lost"}


@pytest.fixture(scope="module")
def small() -> SimulatedFunnel:
    return simulate_funnel(3_000, 11, SNAPSHOT_DAYS, HORIZON)


@pytest.fixture(scope="module")
def large() -> SimulatedFunnel:
    """Enough leads (30k, ~60k snapshots) for calibration and funnel rates."""
    return simulate_funnel(30_000, 2024, SNAPSHOT_DAYS, HORIZON)


def _ages(funnel: SimulatedFunnel, frame: pd.DataFrame, column: str) -> pd.Series:
    created = frame["lead_id"].map(funnel.leads.set_index("lead_id")["created_at"])
    return (frame[column] - created) / pd.Timedelta(days=1)


def _had_event_before(funnel: SimulatedFunnel, event_type: str,
                      detail: str | None = None) -> pd.Series:
    """Per truth row: did the lead have such an event before as_of?"""
    events = funnel.events
    mask = events["event_type"] == event_type
    if detail is not None:
        mask &= events["detail"] == detail
    first = events.loc[mask].groupby("lead_id")["timestamp"].min()
    seen = funnel.truth["lead_id"].map(first)
    return (seen < funnel.truth["as_of"]).fillna(False).astype(bool)


# ------------------------------------------------------------------ reproducibility
def test_same_seed_gives_identical_frames_and_files(tmp_path: Path) -> None:
    first = simulate_funnel(800, 5, SNAPSHOT_DAYS, HORIZON)
    second = simulate_funnel(800, 5, SNAPSHOT_DAYS, HORIZON)
    for name in synthetic.TABLES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    for file_format in ("csv", "parquet"):
        a = write_funnel(first, tmp_path / f"a_{file_format}", file_format)
        b = write_funnel(second, tmp_path / f"b_{file_format}", file_format)
        assert [p.name for p in a.values()] == [f"{n}.{file_format}" for n in synthetic.TABLES]
        for name in synthetic.TABLES:
            assert a[name].read_bytes() == b[name].read_bytes(), (file_format, name)


def test_different_seeds_give_different_funnels() -> None:
    first = simulate_funnel(800, 5, SNAPSHOT_DAYS, HORIZON)
    other = simulate_funnel(800, 6, SNAPSHOT_DAYS, HORIZON)
    assert not first.leads.equals(other.leads)
    assert not first.events.equals(other.events)
    assert not first.truth["true_probability"].equals(other.truth["true_probability"])


def test_progress_reports_leads_finished_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(funnel, "BLOCK", 500)
    done: list[int] = []
    simulate_funnel(1_200, 1, SNAPSHOT_DAYS, HORIZON, progress=done.append)
    assert done == [500, 1_000, 1_200]


@pytest.mark.parametrize(("n_leads", "seed", "days", "horizon", "message"), [
    (0, 1, [7], 90, "n_leads"),
    (10, -1, [7], 90, "seed"),
    (10, 1, [], 90, "snapshot_days"),
    (10, 1, [-3], 90, "snapshot_days"),
    (10, 1, [7], 0, "horizon_days"),
])
def test_bad_arguments_say_which(n_leads: int, seed: int, days: Sequence[int], horizon: int,
                                 message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate_funnel(n_leads, seed, days, horizon)


def test_unknown_file_format_is_refused(small: SimulatedFunnel, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="csv"):
        write_funnel(small, tmp_path, "xlsx")  # type: ignore[arg-type]


# ------------------------------------------------------------------------ contract
def test_frames_follow_the_data_contract(small: SimulatedFunnel) -> None:
    expected = {
        "leads": ["lead_id", "created_at", "industry", "company_size", "employees", "country",
                  "seniority", "lead_source", "account_id", "buying_role"],
        "events": ["lead_id", "timestamp", "event_type", "detail"],
        "stage_changes": ["lead_id", "stage", "timestamp"],
        "truth": ["lead_id", "as_of", "days_after_creation", "true_probability", "converted"],
    }
    for name, columns in expected.items():
        frame = getattr(small, name)
        assert list(frame.columns) == columns
        for column in columns:
            if column in ("created_at", "timestamp", "as_of"):
                assert frame[column].dtype == "datetime64[ns, UTC]"
            elif column in ("lead_id", "industry", "event_type", "stage", "lead_source"):
                assert pd.api.types.is_string_dtype(frame[column])
    leads = small.leads
    assert leads["lead_id"].is_unique and leads["lead_id"].str.fullmatch(r"L\d{7}").all()
    assert leads["created_at"].is_monotonic_increasing
    assert leads["created_at"].min() >= law.START
    assert leads["created_at"].max() < law.START + pd.Timedelta(days=365)
    assert set(small.stage_changes["stage"]) <= set(CRM_TO_FUNNEL)


def test_company_size_buckets_employees(small: SimulatedFunnel) -> None:
    bounds = {"1-10": (1, 10), "11-50": (11, 50), "51-200": (51, 200),
              "201-1000": (201, 1000), "1001-5000": (1001, 5000), "5000+": (5001, 10**9)}
    low = small.leads["company_size"].map(lambda s: bounds[s][0])
    high = small.leads["company_size"].map(lambda s: bounds[s][1])
    assert small.leads["employees"].between(low, high).all()
    assert small.leads["company_size"].nunique() == 6


def test_events_are_sorted_and_never_before_their_lead(small: SimulatedFunnel) -> None:
    events = small.events
    order = events.sort_values(["lead_id", "timestamp"], kind="stable").index
    assert (order == events.index).all()
    ages = _ages(small, events, "timestamp")
    assert ages.min() >= 0
    assert ages.max() < max(SNAPSHOT_DAYS) + HORIZON + law.EXTRA_DAYS


def test_details_belong_to_their_event_types(small: SimulatedFunnel) -> None:
    details = small.events.groupby("event_type")["detail"].agg(
        lambda d: frozenset(d.dropna()))
    kinds = frozenset(law.CAMPAIGN_KINDS)
    assert details["email_send"] == kinds and details["email_click"] <= kinds
    assert details["page_view"] == {"pricing", "contact", "case_study", "blog", "careers",
                                    "product", "home"}
    assert details["content_download"] == {"ebook", "whitepaper", "datasheet"}
    assert details["demo_request"] == frozenset()


def test_events_per_lead_look_like_a_b2b_funnel(large: SimulatedFunnel) -> None:
    per_lead = len(large.events) / len(large.leads)
    assert 20 <= per_lead <= 40
    types = large.events["event_type"].value_counts(normalize=True)
    assert types["email_send"] > types["email_open"] > types["email_click"]
    bounced = large.events.loc[large.events["event_type"] == "email_bounce", "lead_id"]
    assert 0.02 < bounced.nunique() / len(large.leads) < 0.04


def test_no_mail_after_a_bounce_or_an_unsubscribe(small: SimulatedFunnel) -> None:
    events = small.events
    stops = events.loc[events["event_type"].isin(["email_bounce", "email_unsubscribe"])]
    stopped = stops.groupby("lead_id")["timestamp"].min()
    sends = events.loc[events["event_type"] == "email_send"]
    assert not (sends["timestamp"] > sends["lead_id"].map(stopped)).any()


# ------------------------------------------------------------------------ the CRM
def test_stage_timestamps_follow_the_funnel_order(small: SimulatedFunnel) -> None:
    changes = small.stage_changes
    rank = changes["stage"].map({name: i for i, name in enumerate(CRM_TO_FUNNEL)})
    ordered = changes.assign(rank=rank).sort_values(["lead_id", "rank"], kind="stable")
    steps = ordered.groupby("lead_id")["timestamp"].diff().dropna()
    assert (steps >= pd.Timedelta(0)).all()
    assert not ordered.duplicated(["lead_id", "stage"]).any()
    entry = ordered.groupby("lead_id").first()
    assert set(entry["stage"]) == {"subscriber", "lead"}
    created = small.leads.set_index("lead_id")["created_at"]
    assert (entry["timestamp"] == created.loc[entry.index]).all()
    assert entry.index.size == len(small.leads)


def test_customers_are_exactly_the_converted_snapshots(small: SimulatedFunnel) -> None:
    changes = small.stage_changes
    won = changes.loc[changes["stage"] == "customer"].set_index("lead_id")["timestamp"]
    assert won.index.is_unique
    truth = small.truth
    at = truth["lead_id"].map(won)
    horizon_end = truth["as_of"] + pd.Timedelta(days=HORIZON)
    expected = ((at >= truth["as_of"]) & (at < horizon_end)).fillna(False)
    assert (truth["converted"] == expected.astype(int)).all()
    assert not (at < truth["as_of"]).any()
    won_after_days = _ages(small, won.reset_index(), "timestamp")
    omitted = sum(int((won_after_days < day).sum()) for day in SNAPSHOT_DAYS)
    assert len(truth) == len(small.leads) * len(SNAPSHOT_DAYS) - omitted


def test_stage_rates_are_in_the_ranges_b2b_teams_report(large: SimulatedFunnel) -> None:
    changes = large.stage_changes.assign(stage=large.stage_changes["stage"].map(CRM_TO_FUNNEL))
    rates = headline_rates(funnel_conversion(changes, len(large.leads)))
    assert 0.15 <= rates["lead_to_mql"] <= 0.35
    assert 0.15 <= rates["mql_to_sql"] <= 0.40
    assert 0.15 <= rates["sql_to_won"] <= 0.35
    first = large.truth.loc[large.truth["days_after_creation"] == min(SNAPSHOT_DAYS)]
    assert 0.02 <= first["converted"].mean() <= 0.06


def test_csv_is_plain_with_iso_times_and_empty_missing_details(small: SimulatedFunnel,
                                                                tmp_path: Path) -> None:
    lines = write_funnel(small, tmp_path, "csv")["events"].read_text().splitlines()
    assert lines[0] == "lead_id,timestamp,event_type,detail"
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"
    assert all(re.fullmatch(rf"L\d{{7}},{stamp},[a-z_]+,[a-z_]*", line) for line in lines[1:])
    assert any(line.endswith("demo_request,") for line in lines)


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_files_load_through_the_data_contract(small: SimulatedFunnel, tmp_path: Path,
                                              file_format: str) -> None:
    written = write_funnel(small, tmp_path, file_format)  # type: ignore[arg-type]
    config = load_config(SIMULATED, DatasetConfig)
    config = config.pointed_at(tmp_path, {k: p.name for k, p in written.items()})
    dataset = load_events_dataset(config, Path("."))
    assert all(len(check.problems) == 0 for check in dataset.checks.values())
    assert len(dataset.events) == len(small.events)
    simulated_ages = config.snapshots.model_copy(  # the ages ``small`` was simulated at
        update={"days_after_creation": list(SNAPSHOT_DAYS)})
    snapshots = build_snapshots(dataset, simulated_ages, data_end_of(dataset))
    assert snapshots.n_censored == 0
    labels = snapshots.frame.merge(small.truth, on=["lead_id", "as_of"], validate="one_to_one")
    assert len(labels) == len(small.truth)
    assert (labels["label"] == labels["converted"]).all()


# ------------------------------------------------------------------------ the oracle
def test_truth_probabilities_are_inside_zero_one(small: SimulatedFunnel) -> None:
    probability = small.truth["true_probability"]
    assert probability.gt(0).all() and probability.lt(1).all()
    assert set(small.truth["days_after_creation"]) == set(SNAPSHOT_DAYS)


def test_truth_is_calibrated_in_every_decile(large: SimulatedFunnel) -> None:
    truth = large.truth
    decile = pd.qcut(truth["true_probability"], 10, labels=False)
    for part in [truth, *(truth.loc[decile == d] for d in range(10))]:
        p, y = part["true_probability"], part["converted"]
        standard_error = np.sqrt((p * (1 - p)).sum()) / len(part)
        assert abs(y.mean() - p.mean()) <= 4 * standard_error, (len(part), p.mean(), y.mean())


def test_oracle_ranks_far_better_than_chance(large: SimulatedFunnel) -> None:
    truth = large.truth
    ranks = truth["true_probability"].rank()
    positives = truth["converted"] == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    auc = (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    assert 0.75 <= auc <= 0.9


def test_careers_views_carry_no_signal_unlike_demo_requests(large: SimulatedFunnel) -> None:
    truth = large.truth["true_probability"]
    careers = _had_event_before(large, "page_view", "careers")
    demo = _had_event_before(large, "demo_request")
    careers_gap = truth[careers].mean() - truth[~careers].mean()
    demo_gap = truth[demo].mean() - truth[~demo].mean()
    assert careers.sum() > 500 and demo.sum() > 500
    assert demo_gap > 0.02
    assert abs(careers_gap) < 0.1 * demo_gap


# ---------------------------------------------- the documented shape of the oracle
PRICING = ("page_view", "pricing")
DEMO = ("demo_request", None)
HOME = ("page_view", "home")


def _oracle(histories: Sequence[Sequence[tuple[float, tuple[str, str | None]]]],
            fit: float | Sequence[float] = 0.5, day: int = 30) -> np.ndarray:
    """True probabilities at ``day`` of hand-made histories of (lead day, event) pairs."""
    process = {(p.event_type, p.detail): i for i, p in enumerate(law.PROCESSES)}
    rows = [(i, int(at * law.DAY), process[key])
            for i, history in enumerate(histories) for at, key in history]
    lead, second, index = (np.array(c, dtype=np.int64).reshape(-1)
                           for c in (zip(*rows, strict=True) if rows else ([], [], [])))
    n = len(histories)
    fits = np.broadcast_to(np.asarray(fit, dtype=float), (n,)).copy()
    lead_law = law.LeadLaw(fits, law.sigmoid(law.INTENT_BASE + fits), np.full(n, 0.3),
                           law.sigmoid(law.CLOSE_BASE + law.CLOSE_FIT * fits), np.ones(n))
    none = np.zeros(0, dtype=np.int64)
    history = activity.History(
        lead_law, activity.Points(lead, second, index, index),
        activity.Sends(none, none, none, none.astype(bool), none, none, none),
        activity.Webinars(none, none, none.astype(bool), none))
    window = law.Window.of((day,), HORIZON)
    return oracle.posterior(history, oracle.gather_evidence(history, window), day, window)


def test_interest_fades_after_a_burst() -> None:
    burst = [PRICING, PRICING, PRICING, DEMO]
    early, late = _oracle([[(1.5, e) for e in burst], [(27.5, e) for e in burst]])
    quiet = _oracle([[]])[0]
    assert late > 5 * early
    assert early < 3 * quiet


def test_repeated_visits_saturate() -> None:
    visits = _oracle([[(25.5 + 0.1 * j, PRICING) for j in range(k)] for k in (0, 4, 8, 16)])
    assert visits[1] - visits[0] > 3 * abs(visits[3] - visits[1])


def test_chatty_leads_explain_visits_away() -> None:
    chatter = [[(20 + 0.3 * j, HOME) for j in range(k)] + [(28.5, PRICING)] for k in (0, 20)]
    quiet, chatty = _oracle(chatter)
    assert chatty < 0.6 * quiet


def test_fit_and_engagement_interact() -> None:
    low, low_demo, high, high_demo = _oracle([[], [(28.5, DEMO)], [], [(28.5, DEMO)]],
                                             fit=[-1.0, -1.0, 1.0, 1.0])
    assert high_demo - high > 10 * (low_demo - low) > 0


def test_at_creation_the_truth_is_a_function_of_firmographics_only() -> None:
    funnel = simulate_funnel(2_000, 3, [0, 14], 30)
    at_creation = funnel.truth.loc[funnel.truth["days_after_creation"] == 0].merge(
        funnel.leads, on="lead_id")
    profile = ["industry", "company_size", "country", "seniority", "lead_source"]
    spread = at_creation.groupby(profile)["true_probability"].agg(np.ptp)
    assert len(at_creation) == len(funnel.leads) and (spread < 1e-12).all()
    later = funnel.truth.loc[funnel.truth["days_after_creation"] == 14].merge(
        funnel.leads, on="lead_id")
    assert (later.groupby(profile)["true_probability"].nunique() > 1).any()


def test_parts_put_together_are_the_whole_funnel(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setattr(funnel, "BLOCK", 500)
    whole = simulate_funnel(2_300, 3, SNAPSHOT_DAYS, HORIZON)
    done: list[int] = []
    parts = list(synthetic.simulate_funnel_parts(2_300, 3, SNAPSHOT_DAYS, HORIZON, 1_200,
                                                 done.append))
    assert [len(p.leads) for p in parts] == [1_000, 1_000, 300]
    assert done == [500, 1_000, 1_500, 2_000, 2_300]
    for name in synthetic.TABLES:
        together = pd.concat([getattr(p, name) for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(together, getattr(whole, name))
    folders = synthetic.write_funnel_parts(iter(parts), tmp_path)
    assert sorted(f.name for f in folders["events"].iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    read = pd.read_parquet(folders["events"])
    assert len(read) == len(whole.events)
    assert read["lead_id"].astype(str).tolist() == whole.events["lead_id"].tolist()


def test_parts_without_the_account_truth_hold_the_same_leads_and_no_account_truth(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(funnel, "BLOCK", 500)
    full = list(synthetic.simulate_funnel_parts(1_200, 5, SNAPSHOT_DAYS, HORIZON, 600))
    lean = list(synthetic.simulate_funnel_parts(1_200, 5, SNAPSHOT_DAYS, HORIZON, 600,
                                                with_account_truth=False))
    assert len(full[-1].account_truth) > 0  # the comparison is not vacuous
    for whole, part in zip(full, lean, strict=True):
        for name in synthetic.TABLES:
            if name == "account_truth":
                assert part.account_truth.empty
            else:
                pd.testing.assert_frame_equal(getattr(part, name), getattr(whole, name))


def test_parts_refuse_a_part_without_leads() -> None:
    with pytest.raises(ValueError, match="leads_per_part"):
        next(synthetic.simulate_funnel_parts(100, 1, SNAPSHOT_DAYS, HORIZON, 0))
