"""Booking's and availability's OpenAPI documents are committed; no change breaks them, and
every operation documents every status it can answer."""

import copy
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
                else:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema, where


def test_start_and_local_start_are_documented_as_exactly_one_of() -> None:
    booking = current("booking")
    body = booking["paths"]["/organizations/{org}/appointments"]["post"]["requestBody"]
    name = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert booking["components"]["schemas"][name]["oneOf"] == [
        {"required": ["start"]},
        {"required": ["local_start"]},
    ]


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ("remove an operation", "operation removed"),
        ("remove a response field", "property removed"),
        ("narrow a field's type", "type changed"),
        ("add a required body field", "new required property"),
        ("add a required parameter", "is now required"),
    ],
)
def test_a_breaking_change_is_caught(change: str, found: str) -> None:
    before = current("booking")
    after = copy.deepcopy(before)
    schemas = after["components"]["schemas"]
    if change == "remove an operation":
        del after["paths"]["/organizations/{org}/holds"]
    elif change == "remove a response field":
        del schemas["AppointmentView"]["properties"]["note"]
    elif change == "narrow a field's type":
        schemas["AppointmentView"]["properties"]["version"] = {"type": "string"}
    elif change == "add a required body field":
        schemas["CancelRequest"]["required"].append("approved_by")
        schemas["CancelRequest"]["properties"]["approved_by"] = {"type": "string"}
    else:
        operation = after["paths"]["/organizations/{org}/appointments/{appointment_id}"]["get"]
        operation["parameters"].append(
            {"in": "query", "name": "view", "required": True, "schema": {"type": "string"}}
        )
    problems = openapi_breaking_changes(before, after)
    assert any(found in p for p in problems), problems
