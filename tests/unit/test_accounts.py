"""Accounts: the contract's account ids, account snapshots without look-ahead, features,
the account model's explanation, its numpy path, the batch file, and the simulator's exact
account truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictive_scoring.accounts.contract import coverage
from predictive_scoring.accounts.features import contact_engagement
from predictive_scoring.accounts.model import AccountScorer, fit_account_scorer
from predictive_scoring.accounts.online import OnlineAccountScorer, OnlineContact
from predictive_scoring.accounts.scoring import score_accounts, score_accounts_file
from predictive_scoring.accounts.snapshots import account_snapshots
from predictive_scoring.config import (
    AccountsSpec,
    Attributes,
    DatasetConfig,
    EventFiles,
    ReadOptions,
    SnapshotConfig,
    TableSpec,
    load_config,
)
from predictive_scoring.data.dataset import (
    DataValidationError,
    all_problems,
    load_events_dataset,
    load_table_dataset,
)
from predictive_scoring.data.snapshots import data_end_of
from predictive_scoring.data.synthetic import simulate_funnel, write_funnel
from predictive_scoring.stages import Stage
from tests.helpers import message_of

REPO = Path(__file__).resolve().parents[2]
DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2025-01-01", tz="UTC")
LEADS = """lead_id,created_at,industry,company,role
A,2025-01-01T00:00:00Z,software,X,decision_maker
B,2025-01-11T00:00:00Z,software,X,user
C,2025-01-02T00:00:00Z,retail, ,
"""
EVENTS = """lead_id,timestamp,event_type,detail
A,2025-01-02T00:00:00Z,page_view,pricing
A,2025-01-05T00:00:00Z,email_send,newsletter
B,2025-01-12T00:00:00Z,demo_request,
"""
CHANGES = """lead_id,stage,timestamp
A,lead,2025-01-01T00:00:00Z
B,lead,2025-01-11T00:00:00Z
B,customer,2025-01-21T00:00:00Z
C,lead,2025-01-02T00:00:00Z
"""
ACCOUNTS = """company,size
X,51-200
X,11-50
"""


def _config(root: Path, **accounts: object) -> DatasetConfig:
    return DatasetConfig.model_validate(dict(
        name="tiny", shape="events", root=str(root),
        files=EventFiles(leads="leads.csv", events="events.csv",
                         stage_changes="stage_changes.csv"),
        attributes=Attributes(categorical=["industry"]),
        stage_names={"lead": Stage.LEAD, "customer": Stage.CUSTOMER},
        snapshots=SnapshotConfig(days_after_creation=[7, 30], horizon_days=60),
        features={"windows_days": [7], "min_key_count": 1},
        accounts=AccountsSpec.model_validate({"id_column": "company", "role_column": "role",
                                              **accounts}),
        rules="configs/rules/classic_points.yaml"))


def _write(root: Path, **files: str) -> None:
    for name, text in {"leads.csv": LEADS, "events.csv": EVENTS,
                       "stage_changes.csv": CHANGES, **files}.items():
        (root / name).write_text(text)


# ------------------------------------------------------------------------ contract
def test_account_ids_are_read_and_a_partial_coverage_is_reported(tmp_path: Path) -> None:
    _write(tmp_path)
    dataset = load_events_dataset(_config(tmp_path), Path("."))
    leads = dataset.leads.set_index("lead_id")
    assert leads.loc["A", "account_id"] == "X" and pd.isna(leads.loc["C", "account_id"])
    assert leads.loc["B", "account_role"] == "user" and pd.isna(leads.loc["C", "account_role"])
    assert all(len(check.problems) == 0 for check in dataset.checks.values())
    covered = coverage(dataset.leads)
    assert (covered.n_leads, covered.n_with_account, covered.n_accounts) == (3, 2, 1)
    note = covered.note("leads.csv")
    assert note.startswith("leads.csv: 1 of 3 leads have no account id")
    assert "score as leads alone" in note


def test_a_missing_account_column_is_named(tmp_path: Path) -> None:
    _write(tmp_path)
    config = _config(tmp_path).model_copy(update={"accounts": AccountsSpec(
        id_column="company_id")})
    message = message_of(DataValidationError, load_events_dataset, config, Path("."))
    assert "leads.csv" in message and "company_id" in message and "required column" in message


def test_the_accounts_file_names_bad_rows(tmp_path: Path) -> None:
    _write(tmp_path, **{"accounts.csv": ACCOUNTS})
    config = _config(tmp_path, file="accounts.csv",
                     attributes={"categorical": ["size"]})
    dataset = load_events_dataset(config, Path("."))
    problems = all_problems(dataset.checks)
    assert problems[["row", "column"]].values.tolist() == [[2, "account_id"]]
    assert "duplicate account id (first seen in row 1)" in problems["reason"].iloc[0]
    assert dataset.accounts.table["account_id"].tolist() == ["X"]


def test_the_table_shape_reads_account_ids(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("id,y,company\n1,yes,X\n2,no,\n")
    config = DatasetConfig(name="t", shape="table", root=str(tmp_path),
                           table=TableSpec(file="t.csv", id_column="id", target="y"),
                           accounts=AccountsSpec(id_column="company"), rules="r.yaml")
    table = load_table_dataset(config, Path(".")).table
    assert table["account_id"].iloc[0] == "X" and pd.isna(table["account_id"].iloc[1])


# ------------------------------------------------------------------------ snapshots
def test_account_snapshots_see_only_contacts_known_then(tmp_path: Path) -> None:
    _write(tmp_path)
    config = _config(tmp_path)
    dataset = load_events_dataset(config, Path("."))
    end = T0 + 200 * DAY
    snapshots = account_snapshots(dataset.leads, dataset.stage_changes, config.snapshots, end)
    # Day 7: only A is known (B arrives on day 10 and converts on day 20): label 0.
    assert snapshots.frame[["as_of", "label", "n_contacts"]].values.tolist() == [
        [T0 + 7 * DAY, 0, 1]]
    assert snapshots.contacts["lead_id"].tolist() == ["A"]
    # Day 30: B is known and was a customer before it: left out, as a lead would be.
    assert (snapshots.n_candidates, snapshots.n_past_target, snapshots.n_censored) == (2, 1, 0)
    censored = account_snapshots(dataset.leads, dataset.stage_changes, config.snapshots,
                                 T0 + 40 * DAY)
    assert len(censored.frame) == 0 and censored.n_censored == 1


def test_engagement_ignores_passive_events_and_the_future() -> None:
    events = pd.DataFrame({
        "lead_id": ["A", "A", "A", "A", "B"],
        "timestamp": [T0, T0 + 20 * DAY, T0 + 25 * DAY, T0 + 40 * DAY, T0 - 90 * DAY],
        "event_type": ["page_view", "page_view", "email_send", "page_view", "form"]})
    contacts = pd.DataFrame({"lead_id": ["A", "B", "Z"],
                             "as_of": [T0 + 35 * DAY, T0, T0]})
    result = contact_engagement(contacts, events, ["email_send"])
    assert result["days_since_engaged"].iloc[0] == pytest.approx(15.0)
    assert result["engaged_recent"].tolist() == [1.0, 0.0, 0.0]  # only day 20 is in 30 days
    assert result["days_since_engaged"].iloc[1] == pytest.approx(90.0)
    assert np.isnan(result["days_since_engaged"].iloc[2])


# ------------------------------------------------------------------------ the model
ROLES = ["decision_maker", "user", "gatekeeper"]


def _contacts(n_accounts: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Accounts of 1-6 contacts with scores, points, roles and events; labels drawn so
    that engaged decision makers matter beyond the contacts' scores."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, n_accounts)
    account = np.repeat([f"A{i}" for i in range(n_accounts)], sizes)
    n = len(account)
    as_of = T0 + 100 * DAY
    contacts = pd.DataFrame({
        "account_id": account, "as_of": as_of, "lead_id": [f"L{i}" for i in range(n)],
        "probability": rng.beta(1, 12, n), "rule_points": rng.integers(0, 60, n) * 1.0,
        "account_role": rng.choice(ROLES, n)})
    engaged = rng.random(n) < 0.5
    events = pd.DataFrame({"lead_id": contacts["lead_id"][engaged],
                           "timestamp": as_of - rng.integers(1, 20, engaged.sum()) * DAY,
                           "event_type": "page_view"})
    boost = (engaged & (contacts["account_role"] == "decision_maker")).groupby(
        contacts["account_id"]).any()
    miss = np.log1p(-contacts["probability"]).groupby(contacts["account_id"]).sum()
    p = -np.expm1(miss) * np.where(boost, 2.5, 1.0)
    label = (rng.random(len(p)) < np.clip(p, 0, 1)).astype(int)
    return contacts, events, pd.Series(label, index=p.index).to_numpy()


@pytest.fixture(scope="module")
def fitted() -> tuple[AccountScorer, pd.DataFrame, pd.DataFrame]:
    contacts, events, label = _contacts(3000, 1)
    template = AccountScorer(ROLES, ["email_send"], ["industry"], ["employees"], None, {},
                             200, role_column="role")
    contacts = template.engagement(contacts, events)
    table = pd.DataFrame({"account_id": [f"A{i}" for i in range(3000)],
                          "industry": np.where(np.arange(3000) % 3, "software", "retail"),
                          "employees": np.arange(3000) % 500 + 1.0})
    frame = template.frame(contacts, table)
    scorer = fit_account_scorer(frame, label, template, {Stage.LEAD: 0.8, Stage.MQL: 0.2},
                                [Stage.LEAD, Stage.MQL])
    return scorer, table, events


def test_engaged_decision_makers_are_the_missing_role(fitted) -> None:
    scorer, table, events = fitted
    assert list(scorer.role_lift) == ["decision_maker"]
    contacts, _, _ = _contacts(50, 2)
    accounts, _ = score_accounts(scorer, contacts, events, table)
    flags = scorer.frame(scorer.engagement(contacts, events), table)["engaged_decision_maker"]
    assert [r == ["decision_maker"] for r in accounts["missing_roles"]] == (
        flags.to_numpy() == 0).tolist()


def test_a_contacts_effect_is_the_score_with_it_minus_without_it(fitted) -> None:
    scorer, table, events = fitted
    contacts, _, _ = _contacts(40, 3)
    accounts, explained = score_accounts(scorer, contacts, events, table)
    for _, contact in explained.sample(15, random_state=0).iterrows():
        others = contacts.loc[(contacts["account_id"] == contact["account_id"])
                              & (contacts["lead_id"] != contact["lead_id"])]
        full = accounts.set_index("account_id").loc[contact["account_id"], "probability"]
        if len(others):
            without = score_accounts(scorer, others, events, table)[0]["probability"].iloc[0]
            assert contact["effect"] == pytest.approx(full - without, abs=1e-12)


def test_the_numpy_path_scores_as_the_batch_path(fitted) -> None:
    scorer, table, events = fitted
    contacts, _, _ = _contacts(30, 4)
    accounts, explained = score_accounts(scorer, contacts, events, table)
    online = OnlineAccountScorer(scorer)
    as_of = int(contacts["as_of"].iloc[0].value)
    for account, members in contacts.groupby("account_id", sort=True):
        attributes = table.set_index("account_id").loc[account].to_dict()
        if account.endswith("7"):
            attributes = {"industry": "never-seen"}  # unknown and missing values
        result = online.score([
            OnlineContact(m.lead_id, m.probability, m.rule_points, m.account_role,
                          [int(t.value) for t in events.loc[events["lead_id"] == m.lead_id,
                                                            "timestamp"]],
                          ["page_view"] * int((events["lead_id"] == m.lead_id).sum()))
            for m in members.itertuples()], as_of, attributes)
        if account.endswith("7"):
            batch_table = pd.DataFrame({"account_id": [account], "industry": ["never-seen"],
                                        "employees": [np.nan]})
            expected = score_accounts(scorer, members, events, batch_table)
            reference, effects = expected[0].iloc[0], expected[1]
        else:
            reference = accounts.set_index("account_id").loc[account]
            effects = explained.loc[explained["account_id"] == account]
        assert result.probability == pytest.approx(reference["probability"], abs=1e-12)
        assert result.stage == reference["suggested_stage"]
        assert result.points_sum == pytest.approx(members["rule_points"].sum())
        by_lead = dict(zip(effects["lead_id"], effects["effect"], strict=True))
        assert np.allclose(result.effects, [by_lead[m] for m in members["lead_id"]],
                           atol=1e-12)


def test_the_accounts_file_leaves_out_and_reports_leads_without_an_account(
        fitted, tmp_path: Path) -> None:
    scorer, _, events = fitted
    contacts, _, _ = _contacts(5, 5)
    scores = contacts[["lead_id", "probability", "rule_points"]].assign(
        as_of=contacts["as_of"].map(pd.Timestamp.isoformat), error="")
    extra = pd.DataFrame({"lead_id": ["solo"], "probability": [0.5], "rule_points": [10.0],
                          "as_of": [contacts["as_of"].iloc[0].isoformat()], "error": [""]})
    pd.concat([scores, extra]).to_csv(tmp_path / "scores.csv", index=False)
    leads = contacts[["lead_id", "account_id", "account_role"]].rename(
        columns={"account_role": "role"})
    leads = pd.concat([leads, pd.DataFrame({"lead_id": ["solo"], "account_id": [" "],
                                            "role": [None]})])
    leads.to_csv(tmp_path / "leads.csv", index=False)
    summary = score_accounts_file(scorer, tmp_path / "leads.csv", tmp_path / "scores.csv",
                                  events, tmp_path / "accounts.csv", ReadOptions())
    written = pd.read_csv(tmp_path / "accounts.csv")
    assert summary.accounts == len(written) == 5 and summary.leads_without_account == 1
    assert "1 of" in summary.note and "leads alone" in summary.note
    assert written["n_contacts"].sum() == len(contacts)
    assert written["top_contact_1"].notna().all()


# ------------------------------------------------------------------------ simulator
@pytest.fixture(scope="module")
def funnel():
    """The simulator at the shipped config's snapshot ages (the files' account truth is
    read back against that config below)."""
    snapshots = load_config(REPO / "configs/datasets/simulated.yaml", DatasetConfig).snapshots
    return simulate_funnel(6_000, 5, snapshots.days_after_creation, snapshots.horizon_days)


def test_a_one_contact_account_has_its_contacts_truth(funnel) -> None:
    truth = funnel.account_truth
    single = truth.loc[truth["n_contacts"] == 1]
    first = funnel.leads.sort_values("created_at").groupby("account_id").first()
    single = single.assign(lead_id=single["account_id"].map(first["lead_id"]))
    merged = single.merge(funnel.truth, on=["lead_id", "as_of"], suffixes=("", "_lead"))
    assert len(merged) == len(single) > 500
    assert np.allclose(merged["true_probability"], merged["true_probability_lead"],
                       rtol=0, atol=1e-12)
    assert (merged["converted"] == merged["converted_lead"]).all()


def test_account_truth_is_calibrated_and_beats_each_contact(funnel) -> None:
    truth = funnel.account_truth
    p, y = truth["true_probability"], truth["converted"]
    standard_error = np.sqrt((p * (1 - p)).sum()) / len(truth)
    assert abs(y.mean() - p.mean()) <= 4 * standard_error
    roles = funnel.leads.groupby("account_id")["buying_role"].nunique()
    assert roles.max() >= 4 and funnel.leads["account_id"].nunique() < len(funnel.leads) / 2


def test_account_labels_from_the_files_are_the_truths(funnel, tmp_path: Path) -> None:
    written = write_funnel(funnel, tmp_path, "csv")
    config = load_config(REPO / "configs/datasets/simulated.yaml", DatasetConfig)
    config = config.pointed_at(tmp_path, {k: p.name for k, p in written.items()})
    dataset = load_events_dataset(config, Path("."))
    assert dataset.accounts.table is not None and dataset.accounts.truth is not None
    snapshots = account_snapshots(dataset.leads, dataset.stage_changes, config.snapshots,
                                  data_end_of(dataset))
    merged = snapshots.frame.merge(funnel.account_truth, on=["account_id", "as_of"],
                                   validate="one_to_one")
    assert len(merged) == len(funnel.account_truth) == len(snapshots.frame)
    assert (merged["label"] == merged["converted"]).all()
    assert (merged["n_contacts_x"] == merged["n_contacts_y"]).all()
