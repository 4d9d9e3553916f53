"""schemathesis against booking's and availability's own OpenAPI documents, with the demo
group's ids in the paths and queries so requests reach real data: no server error, every
answer conforms to the documented schema, and every status is documented.

Bounded: ``EXAMPLES`` generated requests per operation (set ``SCHEMATHESIS_EXAMPLES`` for a
longer run), no deadline per example."""

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from clinic.availability.main import create_app as availability_app
from clinic.booking.main import create_app as booking_app
from clinic.devstack.components import Infrastructure
from clinic.devstack.testing import RunningService

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
BOOKING = schemathesis.openapi.from_dict(booking_app().openapi())
AVAILABILITY = schemathesis.openapi.from_dict(availability_app().openapi())


class Platform:
    def __init__(self, infrastructure: Infrastructure) -> None:
        schema = f"st_{uuid.uuid4().hex[:10]}"
        env = infrastructure.environment()
        self.booking = RunningService(
            "clinic.booking",
            {**env, "BOOKING_DATABASE_SCHEMA": schema, "BOOKING_LOAD_DEMO_DATA": "true"},
            "BOOKING_",
        ).start()
        self.availability = RunningService(
            "clinic.availability",
            {
                **env,
                "AVAILABILITY_DATABASE_SCHEMA": f"{schema}_av",
                "AVAILABILITY_CONSUMER_GROUP": f"availability-{schema}",
                "BOOKING_URL": self.booking.url,
            },
            "AVAILABILITY_",
        ).start()
        demo = httpx.get(f"{self.booking.url}/demo", timeout=30).json()
        self.known: dict[str, Any] = {
            "org": demo["organization_id"],
            "location_id": next(iter(demo["locations"].values())),
            "appointment_type_id": next(iter(demo["appointment_types"].values())),
            "type_id": next(iter(demo["appointment_types"].values())),
            "resource_id": demo["providers"][0],
            "provider_id": demo["providers"][0],
            "patient_id": demo["patients"][0],
        }

    def aim(self, case: Any) -> None:
        """Point generated ids at the demo group, so most requests meet real data."""
        for parameters in (case.path_parameters, case.query):
            if not parameters:
                continue
            for name in parameters:
                if name in self.known and isinstance(parameters[name], str):
                    parameters[name] = self.known[name]
        if case.headers is None:
            case.headers = {}
        case.headers.setdefault("Idempotency-Key", str(uuid.uuid4()))

    def stop(self) -> None:
        self.availability.stop()
        self.booking.stop()


@pytest.fixture(scope="module")
def platform(infrastructure: Infrastructure) -> Iterator[Platform]:
    running = Platform(infrastructure)
    yield running
    running.stop()


LIMITS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@BOOKING.parametrize()
@LIMITS
def test_booking_answers_every_generated_request_as_documented(
    case: Any, platform: Platform
) -> None:
    platform.aim(case)
    case.call_and_validate(base_url=platform.booking.url, checks=CHECKS)


@AVAILABILITY.parametrize()
@LIMITS
def test_availability_answers_every_generated_request_as_documented(
    case: Any, platform: Platform
) -> None:
    platform.aim(case)
    case.call_and_validate(base_url=platform.availability.url, checks=CHECKS)
