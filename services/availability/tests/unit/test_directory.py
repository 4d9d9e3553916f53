"""The directory's pure parts: page tokens, appointment types as listed, and the examples
its OpenAPI document shows."""

import base64
import uuid

import pytest
from factory import Events
from hypothesis import given
from hypothesis import strategies as st

from clinic.availability.api import directory as api
from clinic.availability.directory import (
    Page,
    appointment_type_item,
    decode_page_token,
    encode_page_token,
)
from clinic.availability.projection import plan
from clinic.events import reference as ref
from clinic.platform.paging import InvalidCursorError
from clinic.platform.rows import Upsert

names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@given(name=names, item_id=st.uuids())
def test_a_page_token_gives_back_the_name_and_id_it_was_made_of(
    name: str, item_id: uuid.UUID
) -> None:
    assert decode_page_token(encode_page_token(name, item_id)) == (name, item_id)


@given(token=st.text())
def test_any_other_token_is_read_back_or_refused_as_an_invalid_cursor(token: str) -> None:
    try:
        name, item_id = decode_page_token(token)
    except InvalidCursorError:
        return
    assert "\x00" not in name
    assert isinstance(item_id, uuid.UUID)


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "not a token!",
        _token(b'{"name": "Clinic"}'),
        _token(b'["Clinic"]'),
        _token(b'["Clinic", "not-a-uuid"]'),
        _token(b'[7, "9c2e4f61-5b1a-4c83-8f0e-2d7a6b3c9e40"]'),
        _token(b'["Cli\\u0000nic", "9c2e4f61-5b1a-4c83-8f0e-2d7a6b3c9e40"]'),
        _token(b'["\\ud800", "9c2e4f61-5b1a-4c83-8f0e-2d7a6b3c9e40"]'),
        _token(b"\xff\xfe"),
    ],
)
def test_a_token_the_service_never_gave_is_a_422_problem(token: str) -> None:
    with pytest.raises(InvalidCursorError) as refused:
        decode_page_token(token)

    assert refused.value.status == 422
    assert refused.value.body()["type"].endswith("/invalid-cursor")


def test_a_page_ends_with_a_token_only_when_a_row_beyond_it_was_read() -> None:
    rows = [("A", uuid.UUID(int=n)) for n in range(4)]

    full, following = Page(3, None).split(rows)
    last, none = Page(4, None).split(rows)

    assert list(full) == rows[:3]
    assert following is not None
    assert decode_page_token(following) == rows[2]
    assert (list(last), none) == (rows, None)


def test_an_appointment_type_is_listed_with_its_duration_and_everything_patients_read() -> None:
    ev = Events()
    tid = uuid.uuid4()
    defined = ref.AppointmentTypeDefined(
        appointment_type_id=tid,
        name="Cardiology consultation",
        steps=(
            ref.StepSpec(
                name="ecg",
                offset_minutes=0,
                duration_minutes=15,
                requirements=(ref.RequirementSpec(role="nurse", category="provider"),),
            ),
            ref.StepSpec(
                name="consultation",
                offset_minutes=15,
                duration_minutes=30,
                requirements=(
                    ref.RequirementSpec(
                        role="physician", category="provider", specialty="cardiology"
                    ),
                    ref.RequirementSpec(role="room", category="room", kind="exam-room"),
                ),
            ),
        ),
        buffer_before_minutes=5,
        buffer_after_minutes=10,
        seats=1,
        minimum_notice_minutes=120,
        maximum_horizon_days=90,
        cancellation_cutoff_minutes=1440,
        patient_bookable=True,
        preparation="Bring your previous ECGs.",
        specialty="cardiology",
        reminder_plan=(ref.ReminderSpec(before_minutes=1440),),
        patient_facing={"de": ref.PatientFacingText(name="Kardiologie", preparation="EKGs")},
    )
    [upsert], _ = plan(ev.wrap(tid, defined))
    assert isinstance(upsert, Upsert)
    row = upsert.row

    item = appointment_type_item(row["name"], tid, row["definition"], False)

    assert item["duration_minutes"] == 45
    assert [s["name"] for s in item["steps"]] == ["ecg", "consultation"]
    assert item["steps"][1]["requirements"][1] == {
        "role": "room",
        "category": "room",
        "resource_id": None,
        "kind": "exam-room",
        "specialty": None,
    }
    assert item["patient_facing"] == {
        "de": {"name": "Kardiologie", "description": "", "preparation": "EKGs"}
    }
    assert item["reminder_plan"] == [{"before_minutes": 1440, "channel": None}]
    assert (item["patient_bookable"], item["specialty"], item["retired"]) == (
        True,
        "cardiology",
        False,
    )
    api.DirectoryAppointmentType.model_validate(item)


def test_a_type_projected_before_its_event_had_texts_and_reminders_lists_their_defaults() -> None:
    older = {
        "steps": [
            {"name": "visit", "offset_minutes": 0, "duration_minutes": 20, "requirements": []}
        ],
        "buffer_before_minutes": 0,
        "buffer_after_minutes": 0,
        "seats": 1,
        "minimum_notice_minutes": 0,
        "maximum_horizon_days": 30,
        "cancellation_cutoff_minutes": 0,
        "patient_bookable": False,
    }

    item = appointment_type_item("Check-up", uuid.uuid4(), older, True)

    assert item["duration_minutes"] == 20
    assert (item["preparation"], item["specialty"], item["reschedule_cutoff_minutes"]) == (
        "",
        None,
        None,
    )
    assert (item["patient_facing"], item["reminder_plan"], item["retired"]) == ({}, [], True)


@pytest.mark.parametrize(
    ("model", "example"),
    [
        (api.LocationsPage, api.LOCATIONS_EXAMPLE),
        (api.ResourcesPage, api.RESOURCES_EXAMPLE),
        (api.AppointmentTypesPage, api.TYPES_EXAMPLE),
    ],
)
def test_every_documented_example_is_a_page_the_routes_can_answer(
    model: type[api.View], example: dict[str, object]
) -> None:
    model.model_validate(example)


def test_the_locations_example_token_is_one_the_service_gives() -> None:
    page = api.LocationsPage.model_validate(api.LOCATIONS_EXAMPLE)
    last = page.locations[-1]

    assert page.next_page_token is not None
    assert decode_page_token(page.next_page_token) == (last.name, last.id)
