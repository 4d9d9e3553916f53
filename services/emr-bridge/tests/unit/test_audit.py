"""The audit trail without I/O: what an entry may say, each kind of entry rendered as a valid
FHIR R4 AuditEvent (REST interactions, operations, log-ins), and the AuditEvent search
parsed exactly or refused."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from clinic.emr_bridge import audit
from clinic.emr_bridge.audit import AuditEntry, RecordedEntry, audit_event, parse_search
from clinic.emr_bridge.fhir import validated
from clinic.emr_bridge.search import SearchError
from clinic.platform import paging

ORG = uuid.uuid4()
AT = dt.datetime(2027, 3, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)


def rendered(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "organization": ORG,
        "client_id": "epic",
        "action": "R",
        "name": "read",
        **fields,
    }
    return audit_event(RecordedEntry(uuid.uuid4(), AT, AuditEntry(**values)))


def test_a_patient_read_is_a_rest_audit_event_naming_the_client_and_the_patient() -> None:
    event = rendered(
        resource_type="Patient",
        resource_id="7c9e6679-7425-40de-944b-e07fc1f90ae7",
        client_address="10.1.2.3",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )
    assert validated(event) == event
    assert event["type"] == {
        "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
        "code": "rest",
        "display": "RESTful Operation",
    }
    assert event["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}
    ]
    assert (event["action"], event["outcome"]) == ("R", "0")
    assert event["recorded"] == "2027-03-01T08:30:15.123Z"
    agent = event["agent"][0]
    assert agent["who"]["identifier"]["value"] == "epic"
    assert agent["requestor"] is True
    assert agent["network"] == {"address": "10.1.2.3", "type": "2"}
    assert event["entity"][0]["what"] == {
        "reference": "Patient/7c9e6679-7425-40de-944b-e07fc1f90ae7"
    }
    assert event["extension"][0]["valueString"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert event["source"]["site"] == str(ORG)


def test_an_operation_is_an_execute_event_with_the_operation_as_subtype() -> None:
    event = rendered(
        action="E",
        name="$book",
        resource_type="Appointment",
        resource_id="a1",
        outcome=4,
        detail="409: the time was taken",
    )
    assert [c["code"] for c in event["subtype"]] == ["operation", "$book"]
    assert (event["action"], event["outcome"], event["outcomeDesc"]) == (
        "E",
        "4",
        "409: the time was taken",
    )


def test_a_search_names_the_resource_type_it_searched() -> None:
    event = rendered(action="E", name="search-type", resource_type="Appointment")
    assert event["entity"][0]["what"] == {"type": "Appointment"}
    assert event["subtype"][0]["code"] == "search-type"


def test_a_log_in_is_a_dicom_user_authentication_event() -> None:
    event = rendered(action="E", name="login", detail="granted system/Appointment.rs")
    assert event["type"]["code"] == "110114"
    assert event["subtype"][0]["code"] == "110122"
    assert "entity" not in event


def test_a_machine_name_is_not_an_ip_address() -> None:
    assert rendered(client_address="emr-gw.local")["agent"][0]["network"]["type"] == "1"


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "X"},
        {"outcome": 5},
        {"name": "fetch"},
        {"name": "$Book"},
        {"resource_id": "a1"},
    ],
)
def test_an_entry_says_only_what_an_audit_event_can(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each field's own message
        AuditEntry(**{"organization": ORG, "client_id": "epic", "action": "R", "name": "read",
                      **fields})  # fmt: skip


@pytest.mark.parametrize(
    ("status", "outcome"), [(200, 0), (201, 0), (304, 0), (400, 4), (404, 4), (500, 8), (503, 8)]
)
def test_an_http_status_has_its_audit_outcome(status: int, outcome: int) -> None:
    assert audit.outcome_of(status) == outcome


def test_every_action_of_an_interaction_is_an_audit_event_action() -> None:
    assert set(audit.ACTION_OF.values()) <= audit.ACTIONS
    assert set(audit.ACTION_OF) <= audit.RESTFUL_INTERACTIONS | {audit.LOGIN}


# -- search -------------------------------------------------------------------------------------


def test_a_search_keeps_its_criteria_and_values_in_order() -> None:
    search = parse_search(
        [
            ("date", "ge2027-03-01"),
            ("date", "lt2027-03-02T10:00:00Z"),
            ("agent", "epic,cerner"),
            ("entity", "Patient/p1"),
            ("action", "R"),
            ("outcome", "0,4"),
            ("_count", "10"),
        ]
    )
    assert search.count == 10
    assert len(search.conditions) == 6
    assert search.values == [
        dt.datetime(2027, 3, 1, tzinfo=dt.UTC),
        dt.datetime(2027, 3, 2, 10, tzinfo=dt.UTC),
        "epic",
        "cerner",
        "Patient",
        "p1",
        "R",
        0,
        4,
    ]
    assert [name for name, _ in search.criteria] == [
        "date",
        "date",
        "agent",
        "entity",
        "action",
        "outcome",
    ]


def day(d: int, month: int = 3) -> dt.datetime:
    return dt.datetime(2027, month, d, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "bounds"),
    [
        ("2027-03-01", [day(1), day(2)]),
        ("eq2027-03", [day(1), day(1, month=4)]),
        ("ge2027-03-01", [day(1)]),
        ("gt2027-03-01", [day(2)]),
        ("le2027-03-01", [day(2)]),
        ("lt2027-03-01", [day(1)]),
    ],
)
def test_a_date_prefix_bounds_the_recorded_instant_by_the_dates_precision(
    value: str, bounds: list[dt.datetime]
) -> None:
    assert parse_search([("date", value)]).values == bounds


def test_an_entity_may_be_an_absolute_reference() -> None:
    search = parse_search([("entity", "https://emr.example/fhir/x/Appointment/a-1")])
    assert search.values == ["Appointment", "a-1"]


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("patient", "Patient/p1", "unknown parameter"),
        ("date", "sa2027-03-01", "prefix"),
        ("date", "03/01/2027", "not a FHIR date"),
        ("entity", "p1", "Type/id"),
        ("action", "X", "C R U D E"),
        ("outcome", "1", "0 4 8 12"),
        ("_count", "0", "_count"),
        ("_count", "501", "_count"),
        ("_cursor", "not-a-cursor", "_cursor"),
        ("agent", "", "printable"),
        ("agent", "a\x00b", "printable"),
    ],
)
def test_a_search_the_trail_cannot_answer_exactly_is_refused(
    name: str, value: str, reason: str
) -> None:
    with pytest.raises(SearchError, match=reason):
        parse_search([(name, value)])


def test_a_cursor_given_back_is_read_as_the_position_it_marks() -> None:
    event_id = uuid.uuid4()
    cursor = paging.encode_cursor(AT, event_id)
    assert parse_search([("_cursor", cursor)]).cursor == (AT, event_id)
