"""Schemathesis against the service's own OpenAPI spec, with every check it has: no 5xx,
answers as documented (status, content type, headers, schema), valid requests accepted and
invalid ones refused (request conformance), keys required where declared.

Every documented operation is called with generated requests, valid and invalid (leads,
batches, query flags), carrying a valid API key, in-process on the test model. The schema
documents the model in service: each attribute's types and range, ``created_at`` required,
timestamps' years, the limits. Valid single leads are drawn within the two rules JSON
Schema cannot state and the schema says in words: ``created_at`` not after ``as_of``, and
a number sent as text within its attribute's range (a batch answers such a lead with an
error entry of its own, so batches are drawn without this filter); for a score change,
``created_at`` not after either moment.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from tests.serving.conftest import AUTH

EXAMPLES = 40


def _operations(client: TestClient) -> list:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    return [result.ok() for result in schema.get_all_operations()]


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _statable(client: TestClient) -> Any:
    """Whether a generated case keeps the rules the schema states only in words."""
    ranges = client.app.state.slot.current.online.ranges

    def lead_keeps(lead: dict[str, Any], moments: list[Any]) -> bool:
        created = lead.get("created_at")
        if isinstance(created, str) and any(_moment(created) > (
                _moment(as_of) if isinstance(as_of, str) else datetime.now(UTC))
                for as_of in moments):
            return False
        attributes = lead.get("attributes") or {}
        for name, allowed in ranges.items():
            value = attributes.get(name)
            if isinstance(value, str) and value.strip() and allowed.outside(float(value)):
                return False
        return True

    def keeps(case: schemathesis.Case) -> bool:
        body = case.body
        if not isinstance(body, dict):
            return True
        if case.path == "/v1/score":
            return lead_keeps(body, [body.get("as_of")])
        if case.path == "/v1/score/change":
            lead = body.get("lead")
            return not isinstance(lead, dict) or lead_keeps(
                lead, [body.get("from_as_of"), body.get("to_as_of")])
        if case.path == "/v1/accounts/score":  # each contact is scored as of the account
            return all(lead_keeps(contact, [body.get("as_of")])
                       for contact in body.get("contacts") or [] if isinstance(contact, dict))
        return True

    return keeps


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_check_passes(client: TestClient, mode: GenerationMode) -> None:
    operations = _operations(client)
    assert {op.path for op in operations} >= {"/v1/score", "/v1/score/batch", "/v1/model",
                                              "/v1/score/change", "/v1/accounts/score",
                                              "/v1/admin/reload", "/health", "/ready"}
    keeps = _statable(client)
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (len(operation.body)
                                                     or len(operation.query)):
            continue  # nothing to make invalid (GET /health, /ready, /v1/model)
        strategy = operation.as_strategy(generation_mode=mode)
        if mode is GenerationMode.POSITIVE:
            strategy = strategy.filter(keeps)

        @given(case=strategy)
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=AUTH)  # every check schemathesis has

        call()


def test_the_schema_states_the_models_inputs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    lead = schema["LeadIn"]
    assert lead["required"] == ["lead_id", "created_at"]
    attributes = lead["properties"]["attributes"]["properties"]
    employees = {branch.get("type"): branch for branch in attributes["employees"]["anyOf"]}
    assert employees["number"]["minimum"] == 0  # the dataset config's range
    assert math.isfinite(employees["number"]["maximum"])
    assert "pattern" in employees["string"]
    industry = {branch.get("type") for branch in attributes["industry"]["anyOf"]}
    assert industry == {"string", "boolean", "null", "number"}
    batch = schema["BatchIn"]["properties"]["leads"]
    assert batch["maxItems"] == client.app.state.settings.max_batch_leads
    assert lead["properties"]["events"]["maxItems"] == (
        client.app.state.settings.max_events_per_lead)
