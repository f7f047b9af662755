"""Request decoding: leads straight from JSON bytes, errors naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from predictive_scoring.online import LeadInputError
from serving.requests import (
    InvalidLead,
    RequestError,
    decode_batch,
    decode_lead,
    openapi_components,
)
from serving.scoring import raw_lead
from tests.helpers import message_of

LEAD = {"lead_id": "L1", "created_at": "2025-01-06T09:14:00Z",
        "as_of": "2025-02-05T09:00:00+01:00", "attributes": {"industry": "software"},
        "events": [{"timestamp": "2025-01-07T10:02:11Z", "event_type": "page_view",
                    "detail": "pricing"},
                   {"timestamp": "2025-01-20T16:40:00-05:00", "event_type": "demo_request"}]}


def _bytes(value: object) -> bytes:
    return json.dumps(value).encode()


def test_a_lead_decodes_with_offsets_and_naive_times_read_as_utc() -> None:
    parsed = decode_lead(_bytes(LEAD | {"crm_owner": "ana", "stage": "mql"}))
    assert parsed.extra_fields == ("crm_owner", "stage")
    assert parsed.lead.events[1].detail is None
    raw = raw_lead(parsed.lead, datetime.now(UTC), 10)
    assert raw.as_of == int(datetime(2025, 2, 5, 8, tzinfo=UTC).timestamp()) * 10**9
    naive = decode_lead(_bytes(LEAD | {"as_of": "2025-02-05T08:00:00"})).lead
    assert raw_lead(naive, datetime.now(UTC), 10).as_of == raw.as_of
    assert raw.event_types == ["page_view", "demo_request"]


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"created_at": "yesterday"}, "created_at", "RFC3339"),
    ({"lead_id": ""}, "lead_id", "length >= 1"),
    ({"events": [{"timestamp": "2025-01-07T10:02:11Z", "event_type": "x"},
                 {"timestamp": "2025-01-07T10:02:11Z", "event_type": 5}]},
     "events.1.event_type", "Expected `str`"),
    ({"attributes": ["not", "a", "mapping"]}, "attributes", "Expected `object`"),
])
def test_a_bad_field_is_named(change: dict, field: str, reason: str) -> None:
    with pytest.raises(RequestError) as caught:
        decode_lead(_bytes(LEAD | change))
    assert caught.value.errors[0]["field"] == field
    assert reason in caught.value.errors[0]["reason"]


def test_a_bad_field_is_named_even_next_to_unread_fields() -> None:
    with pytest.raises(RequestError) as caught:
        decode_lead(_bytes(LEAD | {"crm_owner": "ana", "as_of": 17}))
    assert caught.value.errors[0]["field"] == "as_of"


def test_not_json_and_not_an_object_say_so() -> None:
    assert "not valid JSON" in message_of(RequestError, decode_lead, b'{"lead_id": ')
    with pytest.raises(RequestError) as caught:
        decode_lead(b"[1, 2]")
    assert caught.value.errors[0]["field"] == "lead"


def test_a_batch_keeps_every_lead_and_sets_the_bad_ones_aside() -> None:
    body = _bytes({"leads": [LEAD, LEAD | {"lead_id": "L2", "created_at": "soon"}, 7,
                             LEAD | {"lead_id": "L4"}]})
    leads = decode_batch(body, 10)
    assert len(leads) == 4
    bad, not_object = leads[1], leads[2]
    assert isinstance(bad, InvalidLead) and bad.lead_id == "L2"
    assert bad.errors[0]["field"] == "created_at"
    assert isinstance(not_object, InvalidLead) and not_object.lead_id is None
    assert [lead.lead.lead_id for lead in (leads[0], leads[3])] == ["L1", "L4"]


def test_batch_limits_and_shape() -> None:
    with pytest.raises(RequestError, match="PREDICTIVE_SCORING_MAX_BATCH_LEADS") as caught:
        decode_batch(_bytes({"leads": [LEAD] * 3}), 2)
    assert caught.value.kind == "too_long"
    assert "length >= 1" in message_of(RequestError, decode_batch, _bytes({"leads": []}), 2)
    assert "leads" in message_of(RequestError, decode_batch, _bytes({"rows": [LEAD]}), 2)


def test_time_range_and_event_limit_name_the_field() -> None:
    far = decode_lead(_bytes(LEAD | {"events": [{"timestamp": "2300-01-01T00:00:00Z",
                                                 "event_type": "x"}]})).lead
    with pytest.raises(LeadInputError) as caught:
        raw_lead(far, datetime.now(UTC), 10)
    assert caught.value.field == "events.0.timestamp" and "1678" in caught.value.reason
    lead = decode_lead(_bytes(LEAD)).lead
    with pytest.raises(LeadInputError) as caught:
        raw_lead(lead, datetime.now(UTC), 1)
    assert caught.value.field == "events"
    assert "MAX_EVENTS_PER_LEAD" in caught.value.reason


def test_the_documented_schema_is_the_parsers() -> None:
    components = openapi_components()
    lead = components["LeadIn"]
    assert lead["required"] == ["lead_id"]
    assert "additionalProperties" not in lead  # unread fields are accepted
    assert lead["properties"]["lead_id"]["minLength"] == 1
    event = components["EventIn"]
    assert event["properties"]["timestamp"]["format"] == "date-time"
    assert event["properties"]["event_type"]["maxLength"] == 200
    assert components["BatchIn"]["properties"]["leads"]["minItems"] == 1
