"""Schemathesis against the service's own OpenAPI spec: no 5xx, no response off its schema.

Every documented operation is called with generated requests, valid and invalid (leads,
batches, query flags), carrying a valid API key, in-process on the test model.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serving.conftest import AUTH

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 40


def _operations(client: TestClient) -> list:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_no_schema_violation(client: TestClient,
                                                 mode: GenerationMode) -> None:
    operations = _operations(client)
    assert {op.path for op in operations} >= {"/v1/score", "/v1/score/batch", "/v1/model",
                                              "/v1/admin/reload", "/health", "/ready"}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (len(operation.body)
                                                     or len(operation.query)):
            continue  # nothing to make invalid (GET /health, /ready, /v1/model)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        call()
