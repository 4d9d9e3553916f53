"""The gateway's rules without I/O: who may see what, request fingerprints, rate limits and
page tokens."""

from __future__ import annotations

import uuid

import pytest

from clinic.gateway.access import (
    POLICY,
    ForbiddenError,
    NotFoundError,
    audited_operation,
    authorize,
    check_location,
    check_patient,
    patient_for,
)
from clinic.gateway.api.search import InvalidPageTokenError, _offset, _token
from clinic.gateway.idempotency import check_key, derived_key, fingerprint
from clinic.gateway.principal import Principal, Role
from clinic.gateway.rate_limits import RateLimitedError, RateLimits

ORG = uuid.uuid4()
HERE, THERE = uuid.uuid4(), uuid.uuid4()
ANA, BEN = uuid.uuid4(), uuid.uuid4()


def principal(role: Role, **fields: object) -> Principal:
    return Principal(subject=f"{role}-1", role=role, organization_id=ORG, **fields)  # type: ignore[arg-type]


def test_a_role_outside_an_operations_policy_is_forbidden_and_inside_it_passes() -> None:
    authorize(principal(Role.ORG_ADMIN), "audit.list")
    with pytest.raises(ForbiddenError):
        authorize(principal(Role.FRONT_DESK), "audit.list")
    assert all(POLICY[op] for op in POLICY), "every operation allows someone"


def test_a_location_limited_caller_finds_another_location_not_found() -> None:
    desk = principal(Role.FRONT_DESK, location_ids=frozenset({HERE}))
    check_location(desk, HERE, "it")
    with pytest.raises(NotFoundError):
        check_location(desk, THERE, "it")
    check_location(principal(Role.ORG_ADMIN), THERE, "it")


def test_a_patient_finds_only_their_own_records_and_acts_only_for_themself() -> None:
    ana = principal(Role.PATIENT, patient_id=ANA)
    check_patient(ana, ANA, "it")
    with pytest.raises(NotFoundError):
        check_patient(ana, BEN, "it")
    assert patient_for(ana, None) == ANA
    with pytest.raises(ForbiddenError):
        patient_for(ana, BEN)
    assert patient_for(principal(Role.FRONT_DESK), BEN) == BEN


def test_changes_and_patient_data_reads_are_audited_and_reference_reads_are_not() -> None:
    assert audited_operation("POST", "appointments.cancel")
    assert audited_operation("GET", "patients.get")
    assert not audited_operation("GET", "reference.read")


def test_a_body_means_the_same_request_whatever_its_key_order_and_keys_are_per_caller() -> None:
    one = fingerprint("POST", "/v1/appointments", {"a": 1, "b": [1, 2]})
    assert one == fingerprint("POST", "/v1/appointments", {"b": [1, 2], "a": 1})
    assert one != fingerprint("POST", "/v1/appointments", {"a": 2, "b": [1, 2]})
    assert one != fingerprint("POST", "/v1/holds", {"a": 1, "b": [1, 2]})
    assert derived_key(ORG, "desk-1", "k") != derived_key(ORG, "desk-2", "k")
    assert derived_key(ORG, "desk-1", "k") == derived_key(ORG, "desk-1", "k")


@pytest.mark.parametrize("key", ["", "x" * 256, "ключ", "a\nb"])
def test_an_idempotency_key_is_1_to_255_printable_ascii_characters(key: str) -> None:
    with pytest.raises(Exception, match="Idempotency-Key"):
        check_key(key)


async def test_a_client_over_its_limit_is_told_when_to_retry_and_others_are_not_counted() -> None:
    limits = RateLimits("3/minute", "100/minute")
    desk = principal(Role.FRONT_DESK)
    for _ in range(3):
        standing = await limits.check(desk)
    assert standing.headers["RateLimit"].startswith('"client";r=0')
    with pytest.raises(RateLimitedError) as refused:
        await limits.check(desk)
    assert int((refused.value.headers or {})["Retry-After"]) >= 1
    other = Principal("desk-2", Role.FRONT_DESK, ORG)
    assert (await limits.check(other)).headers["RateLimit"].startswith('"client";r=2')


def test_a_slot_page_token_reads_back_and_a_made_up_one_is_refused() -> None:
    assert _offset(_token(50)) == 50
    assert _offset(None) == 0
    for made_up in ("garbage", _token(0), _token(5000), "c2xvdHM6LTE"):
        with pytest.raises(InvalidPageTokenError):
            _offset(made_up)
