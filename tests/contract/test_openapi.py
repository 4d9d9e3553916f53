"""Booking's, availability's and the gateway's OpenAPI documents are committed; no change breaks
them, and every operation documents every status it can answer."""

import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from openapi_contract import SERVICES, current, openapi_breaking_changes

SNAPSHOTS = Path(__file__).parent / "openapi"


@pytest.fixture(scope="module", params=sorted(SERVICES))
def documents(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], dict[str, Any]]:
    service = request.param
    path = SNAPSHOTS / f"{service}.json"
    assert path.exists(), f"no snapshot of {service}'s OpenAPI: run `make contract-snapshot`"
    return service, json.loads(path.read_text()), json.loads(json.dumps(current(service)))


def test_no_change_breaks_the_committed_openapi(
    documents: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    _, committed, now = documents
    assert openapi_breaking_changes(committed, now) == []


def test_the_committed_openapi_is_the_one_the_code_serves(
    documents: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    service, committed, now = documents
    assert committed == now, (
        f"{service}'s OpenAPI changed compatibly: run `make contract-snapshot` and commit"
    )


def test_every_operation_documents_its_errors_as_problems_and_its_success_with_a_schema(
    documents: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    _, _, now = documents
    assert now["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]
    for path, operations in now["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert {"500", "503"} <= set(responses), where
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in responses, where
            if operation.get("requestBody"):
                assert "413" in responses, where
            for status, response in responses.items():
                if status[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], where
                else:  # JSON, or a stream of events (GET /v1/live)
                    content = response["content"]
                    media = content.get("application/json") or content["text/event-stream"]
                    assert media["schema"], where


def test_start_and_local_start_are_documented_as_exactly_one_of() -> None:
    booking = current("booking")
    body = booking["paths"]["/organizations/{org}/appointments"]["post"]["requestBody"]
    name = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert booking["components"]["schemas"][name]["oneOf"] == [
        {"required": ["start"]},
        {"required": ["local_start"]},
    ]


def _booking_change(change: str, document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    if change == "remove an operation":
        del document["paths"]["/organizations/{org}/holds"]
    elif change == "remove a response field":
        del schemas["AppointmentView"]["properties"]["note"]
    elif change == "narrow a field's type":
        schemas["AppointmentView"]["properties"]["version"] = {"type": "string"}
    elif change == "add a required body field":
        schemas["CancelRequest"]["required"].append("approved_by")
        schemas["CancelRequest"]["properties"]["approved_by"] = {"type": "string"}
    elif change == "add a required parameter":
        operation = document["paths"]["/organizations/{org}/appointments/{appointment_id}"]["get"]
        operation["parameters"].append(
            {"in": "query", "name": "view", "required": True, "schema": {"type": "string"}}
        )
    else:
        raise AssertionError(change)


def _gateway_change(change: str, document: dict[str, Any]) -> None:
    paths, schemas = document["paths"], document["components"]["schemas"]
    appointment = paths["/v1/appointments/{appointment_id}"]["get"]
    confirm = paths["/v1/appointments/{appointment_id}/confirm"]["post"]
    if change == "remove an operation":
        del paths["/v1/holds"]["post"]
    elif change == "remove a response field":
        del schemas["AppointmentView"]["properties"]["note"]
    elif change == "remove a field of a listed item":
        del schemas["LocationView"]["properties"]["time_zone"]
    elif change == "narrow a field's type":
        schemas["AppointmentView"]["properties"]["version"] = {"type": "string"}
    elif change == "narrow a nullable field's type":
        schemas["SlotView"]["properties"]["seats_left"]["anyOf"][0] = {"type": "string"}
    elif change == "narrow a response enum":
        schemas["ParticipantView"]["properties"]["category"]["enum"].remove("device")
    elif change == "add a required body field":
        schemas["ReasonRequest"]["required"].append("approved_by")
        schemas["ReasonRequest"]["properties"]["approved_by"] = {"type": "string"}
    elif change == "add a required query parameter":
        appointment["parameters"].append(
            {"in": "query", "name": "view", "required": True, "schema": {"type": "string"}}
        )
    elif change == "make an optional header required":
        if_match = next(p for p in confirm["parameters"] if p["name"] == "If-Match")
        if_match["required"] = True
    elif change == "remove a parameter":
        slots = paths["/v1/slots"]["get"]
        slots["parameters"] = [p for p in slots["parameters"] if p["name"] != "provider_id"]
    elif change == "narrow a parameter's type":
        kpis = paths["/v1/kpis"]["get"]
        period = next(p for p in kpis["parameters"] if p["name"] == "period")
        period["schema"] = {"type": "integer"}
    elif change == "narrow a parameter's enum":
        slots = paths["/v1/slots"]["get"]
        times = next(p for p in slots["parameters"] if p["name"] == "times_of_day")
        times["schema"]["items"]["enum"].remove("evening")
    elif change == "remove a success status":
        hold = paths["/v1/holds"]["post"]
        hold["responses"]["200"] = hold["responses"].pop("201")
    else:
        raise AssertionError(change)


BREAKING = {"booking": _booking_change, "gateway": _gateway_change}


@functools.cache
def _served(service: str) -> dict[str, Any]:
    return current(service)


@pytest.mark.parametrize(
    ("service", "change", "found"),
    [
        ("booking", "remove an operation", "operation removed"),
        ("booking", "remove a response field", "property removed"),
        ("booking", "narrow a field's type", "type changed"),
        ("booking", "add a required body field", "new required property"),
        ("booking", "add a required parameter", "is now required"),
        ("gateway", "remove an operation", "POST /v1/holds: operation removed"),
        ("gateway", "remove a response field", "200/note: property removed"),
        ("gateway", "remove a field of a listed item", "[]/time_zone: property removed"),
        ("gateway", "narrow a field's type", "200/version: type changed"),
        ("gateway", "narrow a nullable field's type", "seats_left: type changed"),
        ("gateway", "narrow a response enum", "category: enum values removed"),
        ("gateway", "add a required body field", "approved_by: new required property"),
        ("gateway", "add a required query parameter", "parameter view is now required"),
        ("gateway", "make an optional header required", "parameter If-Match is now required"),
        ("gateway", "remove a parameter", "parameter provider_id removed"),
        ("gateway", "narrow a parameter's type", "parameter period: type changed"),
        ("gateway", "narrow a parameter's enum", "times_of_day[]: enum values removed"),
        ("gateway", "remove a success status", "success status 201 removed"),
    ],
)
def test_a_breaking_change_is_caught(service: str, change: str, found: str) -> None:
    before = copy.deepcopy(_served(service))
    after = copy.deepcopy(before)
    BREAKING[service](change, after)
    problems = openapi_breaking_changes(before, after)
    assert any(found in p for p in problems), problems


@pytest.mark.parametrize("service", sorted(BREAKING))
def test_an_unchanged_document_has_no_breaking_change(service: str) -> None:
    document = copy.deepcopy(_served(service))
    assert openapi_breaking_changes(document, copy.deepcopy(document)) == []


def test_a_narrowed_enum_of_a_nullable_parameter_is_caught() -> None:
    before = copy.deepcopy(_served("gateway"))
    after = copy.deepcopy(before)
    kpis = after["paths"]["/v1/kpis"]["get"]
    group_by = next(p for p in kpis["parameters"] if p["name"] == "group_by")
    group_by["schema"]["anyOf"][0]["enum"].remove("provider")
    problems = openapi_breaking_changes(before, after)
    assert any("parameter group_by" in p and "enum values removed" in p for p in problems)
