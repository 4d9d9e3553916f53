"""Search answers every input with a clear 4xx problem, over HTTP: dates at the calendar's
ends, malformed ids and numbers, unknown types and locations."""

import uuid
from collections.abc import Callable

import httpx

from clinic.devstack.testing import RunningService

ORG, TYPE, LOCATION = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
GOOD = {"appointment_type_id": str(TYPE), "location_id": str(LOCATION)}


CASES = [
    (
        "from the first day of year 1",
        {"from": "0001-01-01", "to": "0001-01-02"},
        422,
        "validation-error",
    ),
    (
        "from the last month of year 9999",
        {"from": "9999-12-01", "to": "9999-12-31"},
        422,
        "validation-error",
    ),
    (
        "a date with a time",
        {"from": "2027-03-01T00:00:00", "to": "2027-03-01"},
        422,
        "validation-error",
    ),
    ("a date as a number", {"from": "20270301", "to": "2027-03-01"}, 422, "validation-error"),
    (
        "a limit in words",
        {"from": "2027-03-01", "to": "2027-03-01", "limit": "ten"},
        422,
        "validation-error",
    ),
    (
        "an unknown type and location",
        {"from": "2027-03-01", "to": "2027-03-01"},
        404,
        "not-found",
    ),
]


def test_bad_search_input_gets_a_clear_problem(
    start_service: Callable[..., RunningService], schema_name: str
) -> None:
    service = start_service(
        "clinic.availability",
        "AVAILABILITY_",
        AVAILABILITY_CONSUMER_GROUP=f"availability-{schema_name}",
    )
    with httpx.Client(base_url=service.url, timeout=30) as http:
        for name, params, status, slug in CASES:
            response = http.get(f"/organizations/{ORG}/slots", params={**GOOD, **params})
            assert response.status_code == status, (name, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("/" + slug), (name, response.json())
