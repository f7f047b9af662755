"""Any lead age: snapshots spread over ages and weighted per lead, metrics per age band,
stage thresholds set on the leads open at one moment, leads older than any trained age
marked when scored, and the simulator's truth at every configured age."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from predictive_scoring import evaluate
from predictive_scoring.config import DatasetConfig, ModelConfig, ReadOptions, load_config
from predictive_scoring.data.dataset import EventsDataset, load_events_dataset
from predictive_scoring.data.snapshots import build_snapshots, data_end_of
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.predict import score_file
from predictive_scoring.train import (
    Examples,
    TrainedModel,
    TrainingPlan,
    examples_from_events,
    train_model,
)
from tests.conftest import BASE, REPO, SIMULATED
from tests.conftest import CLASSIC_RULES as RULES

AGES = (1, 7, 30, 90, 180, 365)
BANDS = {"0-7": (0, 7), "8-30": (8, 30), "31-90": (31, 90), "91-180": (91, 180),
         "181+": (181, 10**6)}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[EventsDataset, DatasetConfig, Examples, dict[str, np.ndarray]]:
    config = simulate_into(SIMULATED, 4_000, 5, tmp_path_factory.mktemp("sim"))
    dataset = load_events_dataset(config, Path("."))
    examples, rows, _ = examples_from_events(dataset, config, RULES, BASE.training)
    return dataset, config, examples, rows


@pytest.fixture(scope="module")
def trained(simulated: tuple) -> TrainedModel:
    _, config, examples, rows = simulated
    model = load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig)
    model = model.model_copy(update={"params": model.params | {"n_jobs": 1}})
    return train_model(examples, rows, TrainingPlan(config, model, RULES, BASE))


def test_the_shipped_configs_spread_snapshots_over_lead_ages() -> None:
    for name in ("simulated", "example_crm_export"):
        config = load_config(REPO / f"configs/datasets/{name}.yaml", DatasetConfig)
        assert tuple(config.snapshots.days_after_creation) == AGES


def test_each_leads_snapshots_weigh_one_in_all(simulated: tuple) -> None:
    dataset, config, examples, _ = simulated
    frame = build_snapshots(dataset, config.snapshots, data_end_of(dataset)).frame
    per_lead = frame.groupby("lead_id")["weight"].agg(["sum", "size", "min", "max"])
    assert (per_lead["min"] == per_lead["max"]).all()
    # every age is labelled in the simulator: six shares of 1/6, fewer for converters
    np.testing.assert_allclose(per_lead["min"], 1 / len(AGES))
    np.testing.assert_allclose(per_lead["sum"], per_lead["size"] / len(AGES))
    assert per_lead["size"].max() == len(AGES) and per_lead["size"].min() < len(AGES)
    # the examples carry the same weights into the fit
    np.testing.assert_allclose(examples.weight, examples.frame["weight"])


def test_weights_count_the_ages_the_data_can_label_whatever_the_outcome() -> None:
    t0 = pd.Timestamp("2025-01-01", tz="UTC")
    leads = pd.DataFrame({"lead_id": ["old", "new", "won"],
                          "created_at": [t0, t0 + pd.Timedelta(days=200),
                                         t0 + pd.Timedelta(days=10)]})
    changes = pd.DataFrame({"lead_id": ["won"], "stage": ["customer"],
                            "timestamp": [t0 + pd.Timedelta(days=60)]})
    events = pd.DataFrame({"lead_id": pd.Series(dtype="string"),
                           "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
                           "event_type": pd.Series(dtype="string"),
                           "detail": pd.Series(dtype="string")})
    config = load_config(REPO / "configs/datasets/simulated.yaml", DatasetConfig).snapshots
    end = t0 + pd.Timedelta(days=400)  # old: ages 1-180 end by then; new: 1-90; won: 1-180
    frame = build_snapshots(EventsDataset(leads, events, changes, {}), config, end).frame
    weight = frame.groupby("lead_id")["weight"].agg(["first", "sum", "size"])
    assert weight.loc["old"].tolist() == pytest.approx([1 / 5, 1.0, 5])
    assert weight.loc["new"].tolist() == pytest.approx([1 / 4, 1.0, 4])
    # won at day 50: snapshots at 1, 7, 30 only, each still 1/5 (not 1/3)
    assert weight.loc["won"].tolist() == pytest.approx([1 / 5, 3 / 5, 3])


def test_lead_age_is_a_model_input(simulated: tuple) -> None:
    _, _, examples, _ = simulated
    assert "tenure_days" in examples.columns.numeric
    age = (examples.frame["as_of"] - examples.frame["created_at"]) / pd.Timedelta(days=1)
    np.testing.assert_allclose(examples.frame["tenure_days"], age)
    assert set(np.round(age).astype(int)) == set(AGES)


def test_by_age_is_recomputed_band_by_band(simulated: tuple, trained: TrainedModel) -> None:
    _, _, examples, rows = simulated
    test = rows["test"]
    frame = examples.frame.iloc[test]
    age = ((frame["as_of"] - frame["created_at"]).dt.total_seconds() // 86_400).to_numpy()
    y, p = examples.label[test], trained.test_probability
    points = examples.rule_points[test]
    by_age = trained.metrics["by_age"]
    assert [entry["band"] for entry in by_age] == list(BANDS)
    for entry in by_age:
        low, high = BANDS[entry["band"]]
        rows_in = (age >= low) & (age <= high)
        assert set(entry) == {"band", "n", "positives", "model_roc_auc", "rules_roc_auc",
                              "ece"}
        assert entry["n"] == rows_in.sum() > 0
        assert entry["positives"] == y[rows_in].sum()
        if 0 < entry["positives"] < entry["n"]:
            assert entry["model_roc_auc"] == pytest.approx(roc_auc_score(y[rows_in],
                                                                         p[rows_in]))
            assert entry["rules_roc_auc"] == pytest.approx(roc_auc_score(y[rows_in],
                                                                         points[rows_in]))
        else:
            assert entry["model_roc_auc"] is None and entry["rules_roc_auc"] is None
        assert entry["ece"] == pytest.approx(evaluate.expected_calibration_error(
            y[rows_in], p[rows_in], BASE.training.ece_bins))
    assert sum(entry["n"] for entry in by_age) == len(test)


def test_a_band_with_one_class_has_no_roc_auc() -> None:
    y = np.array([0, 0, 1, 0, 1, 0])
    entries = evaluate.by_age(y, np.full(6, 0.3), np.arange(6.0),
                              np.array([1.0, 2.0, 10.0, 12.0, 40.0, 400.0]), 2)
    assert [e["n"] for e in entries] == [2, 2, 1, 0, 1]
    assert entries[0]["model_roc_auc"] is None and entries[0]["ece"] == pytest.approx(0.3)
    assert entries[1]["model_roc_auc"] == 0.5 and entries[1]["rules_roc_auc"] == 0.0
    assert entries[3] == {"band": "91-180", "n": 0, "positives": 0, "model_roc_auc": None,
                          "rules_roc_auc": None, "ece": None}


def _open_leads(dataset: EventsDataset) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Leads created before the last creation and not customer or lost by then."""
    moment = dataset.leads["created_at"].max()
    changes = dataset.stage_changes
    closed = changes.loc[changes["stage"].isin(["customer", "lost"])
                         & (changes["timestamp"] < moment), "lead_id"].unique()
    leads = dataset.leads
    open_ = leads.loc[(leads["created_at"] < moment) & ~leads["lead_id"].isin(closed)]
    return open_.assign(as_of=moment), moment


def test_stage_thresholds_give_the_points_shares_on_the_open_leads(
        simulated: tuple, trained: TrainedModel) -> None:
    dataset, _, _, _ = simulated
    open_, moment = _open_leads(dataset)
    scored = trained.scorer.score(open_, dataset.events)
    model = scored["suggested_stage"].value_counts(normalize=True)
    rules = scored["rule_stage"].value_counts(normalize=True)
    assert len(rules) >= 3
    for stage, share in rules.items():
        assert model.get(stage, 0.0) == pytest.approx(share, abs=0.01)
    matched = trained.metrics["stage_thresholds_set_on"]
    assert matched["population"] == "open leads" and matched["n"] == len(open_)
    assert pd.Timestamp(matched["as_of"]) == moment


def test_leads_older_than_any_trained_age_are_marked(simulated: tuple, trained: TrainedModel,
                                                     tmp_path: Path) -> None:
    dataset = simulated[0]
    scorer = trained.scorer
    assert scorer.metadata["trained_ages_days"] == [1.0, 365.0]
    leads = dataset.leads.head(6).drop(columns=["_row"], errors="ignore")
    ages = np.array([0.5, 30, 365, 365.9, 366, 800])
    leads = leads.assign(as_of=leads["created_at"] + pd.to_timedelta(ages, unit="D"))
    expected = [False, False, False, False, True, True]
    assert scorer.score(leads, dataset.events)["age_beyond_training"].tolist() == expected

    leads.to_csv(tmp_path / "leads.csv", index=False)
    summary = score_file(scorer, tmp_path / "leads.csv", dataset.events,
                         pd.Timestamp.now(tz="UTC"), tmp_path / "scores.csv", 4, ReadOptions())
    assert summary.beyond_training == 2
    written = pd.read_csv(tmp_path / "scores.csv")
    assert written["age_beyond_training"].tolist() == expected


def test_the_simulator_writes_its_truth_at_every_configured_age(simulated: tuple) -> None:
    dataset, _, examples, _ = simulated
    truth = dataset.truth
    created = truth["lead_id"].map(dataset.leads.set_index("lead_id")["created_at"])
    truth = truth.assign(age=((truth["as_of"] - created).dt.total_seconds() / 86_400))
    assert set(truth["age"]) == set(AGES)
    # a truth row for every (lead, age) except those already customers by then
    won = dataset.stage_changes.loc[dataset.stage_changes["stage"] == "customer"]
    won_at = dataset.leads["lead_id"].map(won.set_index("lead_id")["timestamp"])
    won_day = ((won_at - dataset.leads["created_at"]).dt.total_seconds() / 86_400).to_numpy()
    already = sum(int(np.sum(won_day < age)) for age in AGES)
    assert len(truth) == len(dataset.leads) * len(AGES) - already
    # every training snapshot, at any age, is measured against the truth
    assert examples.truth is not None and len(examples.truth) == len(examples.frame)
    # and the truth is honest at old ages too: its mean matches the conversions there
    old = (examples.frame["as_of"] - examples.frame["created_at"]) >= pd.Timedelta(days=180)
    expected, observed = examples.truth[old].sum(), examples.label[old].sum()
    assert observed > 10
    assert abs(observed - expected) < 4 * np.sqrt(expected) + 2


def test_fit_weights_average_one_and_vanish_when_all_equal(simulated: tuple) -> None:
    _, _, examples, rows = simulated
    assert examples.weights(rows) is None  # the simulator labels every age of every lead
    uneven = np.where(np.arange(len(examples.label)) % 3 == 0, 0.5, 0.125)
    train, valid = replace(examples, weight=uneven).weights(rows)
    assert train.mean() == pytest.approx(1.0) and valid.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(train / train[0], uneven[rows["train"]] / uneven[rows["train"]][0])


def test_ages_no_lead_can_be_labelled_at_are_named() -> None:
    from predictive_scoring.train import ages_note

    ages = np.array([1.0, 7.0, 30.0, 90.0, 1.0, 7.0])
    note = ages_note([1, 7, 30, 90, 180, 365], ages, 90)
    assert note is not None and "180, 365 days" in note and "up to 90 days" in note
    assert ages_note([1, 7, 30, 90], ages, 90) is None
    assert ages_note(None, ages, 90) is None


def test_the_one_pass_oracle_equals_the_oracle_at_every_age() -> None:
    from predictive_scoring.data.synthetic import activity, law, oracle
    from predictive_scoring.data.synthetic.accounts import draw_accounts

    window = law.Window.of((0, 1, 7, 9, 30, 90, 180, 365), 90)
    rng = np.random.default_rng(3)
    created = draw_accounts(400, 3).created
    firms = activity.draw_firmographics(rng, len(created))
    lead_law = law.lead_law(firms)
    latent = activity.draw_latent(rng, lead_law, window)
    processes = activity.poisson_events(rng, lead_law, latent, window)
    webinars = activity.draw_webinars(rng, processes, firms, latent)
    sends = activity.draw_sends(rng, created, latent, activity.draw_campaigns(3, window),
                                window)
    history = activity.History(lead_law, processes.where(
        np.isin(processes.process, law.VISIT_PROCESSES)), sends, webinars)
    evidence = oracle.gather_evidence(history, window)
    fast = oracle.posteriors(history, evidence, window)
    for day in window.snapshot_days:
        np.testing.assert_array_equal(fast[day],
                                      oracle.posterior(history, evidence, day, window))
