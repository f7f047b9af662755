"""``POST /v1/accounts/score``: an account scored from its contacts, exactly as the batch
path scores it, with who drives it, the missing roles, and a clear 422 past the limit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from predictive_scoring.accounts.scoring import score_accounts
from tests.serving.conftest import AUTH, Trained, lead_request

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _account(trained: Trained, size: int) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    """An account of the held-out data with at least ``size`` contacts, as a request of
    its first ``size`` contacts scored as of the last one's creation plus 10 days."""
    leads = trained.dataset.leads
    counts = leads["account_id"].value_counts()
    account = counts.index[(counts >= size).to_numpy()][-1]
    members = leads.loc[leads["account_id"] == account].sort_values("created_at").head(size)
    as_of = members["created_at"].max() + pd.Timedelta(days=10)
    events = trained.dataset.events
    events = events.loc[events["lead_id"].isin(members["lead_id"])
                        & (events["timestamp"] < as_of)]
    contacts = []
    for _, row in members.iterrows():
        lead = row[["lead_id", "created_at", "industry", "company_size", "country",
                    "seniority", "lead_source", "employees"]].copy()
        lead["as_of"] = as_of
        body = lead_request(lead, events)
        body.pop("as_of")
        body["role"] = row["account_role"]
        contacts.append(body)
    body = {"account_id": str(account), "as_of": as_of.isoformat(),
            "attributes": {"industry": members["industry"].iloc[0],
                           "company_size": members["company_size"].iloc[0],
                           "country": members["country"].iloc[0],
                           "employees": float(members["employees"].iloc[0])},
            "contacts": contacts}
    return str(account), members.assign(as_of=as_of), body


def test_an_account_scores_as_the_batch_path_scores_it(client: TestClient,
                                                        trained: Trained) -> None:
    account, members, body = _account(trained, 4)
    answer = client.post("/v1/accounts/score", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    scorer = trained.scorer
    contacts = members[["lead_id", "created_at", "as_of", "industry", "company_size",
                        "country", "seniority", "lead_source", "employees", "account_id",
                        "account_role"]].reset_index(drop=True)
    scored = scorer.score(contacts, trained.dataset.events)
    contacts = contacts.assign(probability=scored["probability"].to_numpy(),
                               rule_points=scored["rule_points"].to_numpy())
    table = pd.DataFrame({"account_id": [account], **{
        k: [v] for k, v in body["attributes"].items()}})
    accounts, explained = score_accounts(scorer.accounts, contacts, trained.dataset.events,
                                         table)
    assert result["account_id"] == account and result["n_contacts"] == 4
    assert result["probability"] == pytest.approx(accounts["probability"].iloc[0], abs=1e-9)
    assert result["points"]["sum"] == pytest.approx(contacts["rule_points"].sum())
    assert result["points"]["max"] == pytest.approx(contacts["rule_points"].max())
    assert result["suggested_stage"] == accounts["suggested_stage"].iloc[0]
    effects = dict(zip(explained["lead_id"], explained["effect"], strict=True))
    top = result["top_contacts"]
    assert [c["lead_id"] for c in top] == sorted(effects, key=lambda k: -effects[k])[:3]
    for contact in top:
        assert contact["effect"] == pytest.approx(effects[contact["lead_id"]], abs=1e-9)
        assert contact["reasons"]  # the contact's own reasons
    assert result["missing_roles"] == accounts["missing_roles"].iloc[0]


def test_leaving_out_a_contact_gives_its_effect(client: TestClient, trained: Trained) -> None:
    _, _, body = _account(trained, 3)
    full = client.post("/v1/accounts/score?reasons=false", json=body, headers=AUTH).json()
    top = full["top_contacts"][0]
    fewer = {**body, "contacts": [c for c in body["contacts"] if c["lead_id"] != top["lead_id"]]}
    without = client.post("/v1/accounts/score?reasons=false", json=fewer, headers=AUTH).json()
    assert full["probability"] - without["probability"] == pytest.approx(top["effect"],
                                                                         abs=1e-9)
    assert top["reasons"] is None


def test_more_contacts_than_the_limit_is_a_clear_422(client: TestClient,
                                                      trained: Trained) -> None:
    _, _, body = _account(trained, 1)
    limit = trained.scorer.accounts.max_contacts
    contact = body["contacts"][0]
    crowded = {**body, "contacts": [{**contact, "lead_id": f"L{i}"} for i in range(limit + 1)]}
    answer = client.post("/v1/accounts/score", json=crowded, headers=AUTH)
    assert answer.status_code == 422
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", "contacts"]
    assert f"at most {limit}" in detail["msg"] and f"{limit + 1:,} contacts" in detail["msg"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AccountIn"]
    assert schema["properties"]["contacts"]["maxItems"] == limit
    at_limit = {**body, "contacts": crowded["contacts"][:limit]}
    assert client.post("/v1/accounts/score?reasons=false", json=at_limit,
                       headers=AUTH).status_code == 200


def test_a_bad_contact_is_named_by_its_position(client: TestClient, trained: Trained) -> None:
    _, _, body = _account(trained, 2)
    body["contacts"][1]["attributes"]["employees"] = -5
    answer = client.post("/v1/accounts/score", json=body, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][:4] == ["body", "contacts", 1, "attributes"]
    body["contacts"][1]["nickname"] = "x"
    answer = client.post("/v1/accounts/score", json=body, headers=AUTH)
    assert answer.status_code == 422 and "nickname" in answer.text


def test_the_route_needs_a_key(client: TestClient, trained: Trained) -> None:
    _, _, body = _account(trained, 1)
    assert client.post("/v1/accounts/score", json=body).status_code == 401
    assert np.isfinite(client.post("/v1/accounts/score", json=body,
                                   headers=AUTH).json()["probability"])


def test_the_model_page_describes_the_account_model(client: TestClient,
                                                    trained: Trained) -> None:
    accounts = client.get("/v1/model", headers=AUTH).json()["accounts"]
    scorer = trained.scorer.accounts
    assert accounts["max_contacts"] == scorer.max_contacts
    assert accounts["roles"] == scorer.roles
    assert set(accounts["buying_roles"]) == set(scorer.role_lift)
    assert accounts["test_metrics"]["model_roc_auc"] == pytest.approx(
        scorer.metadata["test_metrics"]["model_roc_auc"])
