"""schemathesis against the gateway's OpenAPI, as the running gateway serves it.

Every operation is called with a bounded number of generated requests (valid ones and, as
schemathesis makes them, invalid ones) by an org_admin of a clinic of its own, so every
route is authorised: ids in paths are mostly unknown (404), bodies mostly refused (422).
Each POST carries an Idempotency-Key of its own. Every answer must be no server error (no
5xx at all: the platform is up, so not even a 503), have a documented status and content
type, a body that fits the documented schema and headers that fit the documented ones.

Each operation gets its own token subject (the same org_admin role and organisation): the
gateway counts requests per client, and this module's volume is not what the rate limit is
about. Nothing is excluded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from gateway_platform import Clinic, Platform, open_gateway_clinic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from clinic.gateway.main import create_app

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 15
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def clinic(gateway_platform: Platform) -> Clinic:
    return open_gateway_clinic(gateway_platform, "Schemathesis Clinic")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as kept_alive:
        yield kept_alive


@pytest.fixture(scope="module")
def gateway_schema(gateway_platform: Platform) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{gateway_platform.gateway}/openapi.json", timeout=30)


def _operations() -> list[str]:
    document = create_app().openapi()
    return [f"{m.upper()} {path}" for path, ops in document["paths"].items() for m in ops]


OPERATIONS = _operations()


def test_the_running_gateway_serves_the_operations_tested(gateway_schema: BaseSchema) -> None:
    served = [op.ok().label for op in gateway_schema.get_all_operations()]
    assert sorted(served) == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_is_no_server_error_and_fits_the_openapi(
    label: str,
    gateway_schema: BaseSchema,
    gateway_platform: Platform,
    clinic: Clinic,
    session: requests.Session,
) -> None:
    operation = gateway_schema.find_operation_by_label(label)
    assert operation is not None, label
    subject = f"org-admin-{uuid.uuid4().hex[:8]}"
    token = gateway_platform.token("org_admin", clinic.ids.org, subject)
    cases = st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode))

    @given(case=cases)
    @settings(
        # The live stream takes one optional number: a few calls cover it (each streams 1 s).
        max_examples=4 if label == "GET /v1/live" else EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def calls(case: Case) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if case.method.upper() == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        if case.path == "/v1/live" and "seconds" not in (case.query or {}):
            case.query = {**(case.query or {}), "seconds": 1}  # else it streams for ever
        case.call_and_validate(
            base_url=gateway_platform.gateway,
            session=session,
            headers=headers,
            checks=CHECKS,
            timeout=30,
        )

    calls()
