"""The directory lists an organisation's locations, resources and appointment types from the
projection in PostgreSQL, a page at a time: every item once, in name order, filtered as
asked, never another organisation's; and over HTTP, every malformed list request is a 422
problem."""

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from factory import Events
from prometheus_client import CollectorRegistry

from clinic.availability import directory
from clinic.availability.consumer import ProjectionWriter
from clinic.availability.directory import Page, ResourceFilters, TypeFilters
from clinic.devstack.testing import RunningService
from clinic.events import Envelope
from clinic.events import reference as ref
from clinic.platform.database import Database

BERLIN = "Europe/Berlin"


async def write(database: Database, events: list[Envelope]) -> None:
    async with database.pool.connection() as conn, conn.transaction():
        await ProjectionWriter(CollectorRegistry()).write_many(conn, events)


def location(ev: Events, name: str, **fields: Any) -> tuple[uuid.UUID, Envelope]:
    lid = uuid.uuid4()
    return lid, ev.wrap(
        lid, ref.LocationRegistered(location_id=lid, name=name, time_zone=BERLIN, **fields)
    )


def resource(
    ev: Events,
    name: str,
    locations: tuple[uuid.UUID, ...],
    category: str = "provider",
    kind: str = "physician",
    specialties: tuple[str, ...] = (),
    languages: tuple[str, ...] = (),
) -> tuple[uuid.UUID, Envelope]:
    rid = uuid.uuid4()
    return rid, ev.wrap(
        rid,
        ref.ResourceRegistered(
            resource_id=rid,
            category=category,
            name=name,
            kind=kind,
            specialties=specialties,
            location_ids=locations,
            time_zone=BERLIN,
            languages=languages,
        ),
    )


def appointment_type(
    ev: Events, name: str, requirements: list[dict[str, Any]], patient_bookable: bool = True
) -> tuple[uuid.UUID, Envelope]:
    tid = uuid.uuid4()
    return tid, ev.wrap(
        tid,
        ref.AppointmentTypeDefined(
            appointment_type_id=tid,
            name=name,
            steps=(
                ref.StepSpec(
                    name="visit",
                    offset_minutes=0,
                    duration_minutes=30,
                    requirements=tuple(ref.RequirementSpec(**r) for r in requirements),
                ),
            ),
            buffer_before_minutes=0,
            buffer_after_minutes=0,
            seats=1,
            minimum_notice_minutes=0,
            maximum_horizon_days=90,
            cancellation_cutoff_minutes=0,
            patient_bookable=patient_bookable,
        ),
    )


async def every_page(
    database: Database, read: Callable[..., Any], org: uuid.UUID, key: str, *args: Any, size: int
) -> tuple[list[dict[str, Any]], int]:
    """All items of a list read ``size`` at a time, and how many pages that took."""
    items: list[dict[str, Any]] = []
    token, pages = None, 0
    while True:
        async with database.pool.connection() as conn:
            page = await read(conn, org, *args, Page(size, token))
        items += page[key]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            return items, pages
        assert len(page[key]) == size


async def test_locations_come_page_by_page_in_name_order_each_once_even_with_equal_names(
    database: Database,
) -> None:
    ev = Events()
    names = ["Mitte", "Kreuzberg", "Pankow", "Kreuzberg", "Wedding", "Charlottenburg", "Mitte"]
    made = [location(ev, n, address={"city": "Berlin"}) for n in names]
    await write(database, [e for _, e in made])

    listed, pages = await every_page(
        database, directory.locations, ev.org, "locations", False, size=2
    )

    expected = sorted(((n, lid) for n, (lid, _) in zip(names, made, strict=True)))
    assert [(item["name"], uuid.UUID(item["id"])) for item in listed] == expected
    assert pages == 4
    assert listed[0] == {
        "id": str(expected[0][1]),
        "name": "Charlottenburg",
        "time_zone": BERLIN,
        "address": {"city": "Berlin"},
        "retired": False,
    }


async def test_a_location_added_between_two_pages_is_listed_once_where_its_name_falls(
    database: Database,
) -> None:
    ev = Events()
    await write(database, [location(ev, n)[1] for n in ["A clinic", "C clinic", "E clinic"]])
    async with database.pool.connection() as conn:
        first = await directory.locations(conn, ev.org, False, Page(2, None))
    _, before_event = location(ev, "B clinic")  # falls in the page already read
    _, after_event = location(ev, "D clinic")  # falls in the pages still to come
    await write(database, [before_event, after_event])
    async with database.pool.connection() as conn:
        rest = await directory.locations(conn, ev.org, False, Page(2, first["next_page_token"]))

    assert [i["name"] for i in first["locations"]] == ["A clinic", "C clinic"]
    assert [i["name"] for i in rest["locations"]] == ["D clinic", "E clinic"]
    assert rest["next_page_token"] is None


async def test_retired_locations_are_listed_only_when_asked_and_keep_their_address(
    database: Database,
) -> None:
    ev = Events()
    open_id, opened = location(ev, "Open")
    closed_id, closed = location(ev, "Closed", address={"city": "Potsdam"})
    retired = ev.wrap(closed_id, ref.LocationRetired(location_id=closed_id, reason="moved"))
    await write(database, [opened, closed, retired])

    live, _ = await every_page(database, directory.locations, ev.org, "locations", False, size=5)
    every, _ = await every_page(database, directory.locations, ev.org, "locations", True, size=5)

    assert [i["id"] for i in live] == [str(open_id)]
    assert [(i["id"], i["retired"], i["address"]) for i in every] == [
        (str(closed_id), True, {"city": "Potsdam"}),
        (str(open_id), False, {}),
    ]


async def test_resources_are_narrowed_by_every_filter_and_never_show_another_organisation(
    database: Database,
) -> None:
    ev, other = Events(), Events()
    mitte, mitte_event = location(ev, "Mitte")
    pankow, pankow_event = location(ev, "Pankow")
    okafor, e1 = resource(ev, "Dr. Okafor", (mitte, pankow), specialties=("cardiology",))
    berg, e2 = resource(ev, "Dr. Berg", (mitte,), specialties=("general-practice", "cardiology"))
    lind, e3 = resource(
        ev, "Nurse Lind", (pankow,), kind="nurse", specialties=("nursing",), languages=("de", "pl")
    )
    room, e4 = resource(ev, "Exam room 1", (mitte,), category="room", kind="exam-room")
    ecg, e5 = resource(ev, "ECG", (pankow,), category="device", kind="ecg")
    gone, e6 = resource(ev, "Dr. Alt", (mitte,), specialties=("cardiology",))
    retired = ev.wrap(gone, ref.ResourceRetired(resource_id=gone, reason="left"))
    _, theirs = resource(other, "Dr. Other", (mitte,), specialties=("cardiology",))
    await write(database, [mitte_event, pankow_event, e1, e2, e3, e4, e5, e6, retired, theirs])

    async def ids(**filters: Any) -> list[uuid.UUID]:
        listed, _ = await every_page(
            database, directory.resources, ev.org, "resources", ResourceFilters(**filters), size=2
        )
        return [uuid.UUID(i["id"]) for i in listed]

    assert await ids() == [berg, okafor, ecg, room, lind]
    assert await ids(category="provider") == [berg, okafor, lind]
    assert await ids(category="room") == [room]
    assert await ids(kind="nurse") == [lind]
    assert await ids(location_id=pankow) == [okafor, ecg, lind]
    assert await ids(specialty="cardiology") == [berg, okafor]
    assert await ids(specialty="cardiology", location_id=pankow) == [okafor]
    assert await ids(specialty="cardiology", include_retired=True) == [gone, berg, okafor]
    assert await ids(category="device", kind="physician") == []
    async with database.pool.connection() as conn:
        page = await directory.resources(conn, ev.org, ResourceFilters(kind="nurse"), Page(5, None))
    assert page["resources"] == [
        {
            "id": str(lind),
            "category": "provider",
            "kind": "nurse",
            "name": "Nurse Lind",
            "specialties": ["nursing"],
            "languages": ["de", "pl"],
            "location_ids": [str(pankow)],
            "time_zone": BERLIN,
            "retired": False,
        }
    ]


async def test_appointment_types_offered_at_a_location_are_those_its_live_resources_can_fill(
    database: Database,
) -> None:
    ev = Events()
    mitte, mitte_event = location(ev, "Mitte")
    pankow, pankow_event = location(ev, "Pankow")
    closed, closed_event = location(ev, "Closed")
    _, e1 = resource(ev, "Dr. Okafor", (mitte, closed), specialties=("cardiology",))
    gp, e2 = resource(ev, "Dr. Berg", (pankow,), specialties=("general-practice",))
    _, e3 = resource(ev, "Exam room", (mitte, pankow, closed), category="room", kind="exam-room")
    leaving, e4 = resource(ev, "Dr. Alt", (pankow,), specialties=("dermatology",))
    cardiology, t1 = appointment_type(
        ev,
        "Cardiology",
        [
            {"role": "physician", "category": "provider", "specialty": "cardiology"},
            {"role": "room", "category": "room", "kind": "exam-room"},
        ],
    )
    check_up, t2 = appointment_type(
        ev, "Check-up", [{"role": "physician", "category": "provider", "kind": "physician"}]
    )
    named = [{"role": "physician", "category": "provider", "resource_id": str(gp)}]
    with_berg, t3 = appointment_type(ev, "Dr. Berg's follow-up", named, patient_bookable=False)
    dermatology, t4 = appointment_type(
        ev,
        "Dermatology",
        [{"role": "physician", "category": "provider", "specialty": "dermatology"}],
    )
    old, t5 = appointment_type(ev, "Old check-up", [])
    events = [mitte_event, pankow_event, closed_event, e1, e2, e3, e4, t1, t2, t3, t4, t5]
    events += [
        ev.wrap(leaving, ref.ResourceRetired(resource_id=leaving)),
        ev.wrap(old, ref.AppointmentTypeRetired(appointment_type_id=old)),
        ev.wrap(closed, ref.LocationRetired(location_id=closed)),
    ]
    _, theirs = appointment_type(Events(), "Check-up", [])
    await write(database, [*events, theirs])

    async def ids(**filters: Any) -> list[uuid.UUID]:
        listed, _ = await every_page(
            database,
            directory.appointment_types,
            ev.org,
            "appointment_types",
            TypeFilters(**filters),
            size=2,
        )
        return [uuid.UUID(i["id"]) for i in listed]

    assert await ids() == [cardiology, check_up, dermatology, with_berg]
    assert await ids(include_retired=True) == [cardiology, check_up, dermatology, with_berg, old]
    assert await ids(location_id=mitte) == [cardiology, check_up]
    assert await ids(location_id=pankow) == [check_up, with_berg]  # Dr. Alt retired
    assert await ids(location_id=closed) == []  # a retired location offers nothing
    assert await ids(location_id=uuid.uuid4()) == []
    assert await ids(patient_bookable=False) == [with_berg]
    assert await ids(patient_bookable=True, location_id=pankow) == [check_up]
    async with database.pool.connection() as conn:
        page = await directory.appointment_types(
            conn, ev.org, TypeFilters(location_id=mitte), Page(1, None)
        )
    [listed] = page["appointment_types"]
    assert (listed["name"], listed["duration_minutes"], listed["patient_bookable"]) == (
        "Cardiology",
        30,
        True,
    )
    assert [r["role"] for r in listed["steps"][0]["requirements"]] == ["physician", "room"]
    assert page["next_page_token"] is not None


async def test_an_organisation_availability_has_no_rows_of_has_empty_lists(
    database: Database,
) -> None:
    ev = Events()
    await write(database, [location(ev, "Mitte")[1]])
    nobody = uuid.uuid4()

    async with database.pool.connection() as conn:
        assert await directory.locations(conn, nobody, True, Page(50, None)) == {
            "locations": [],
            "next_page_token": None,
        }
        listed = await directory.resources(conn, nobody, ResourceFilters(), Page(50, None))
        assert listed == {"resources": [], "next_page_token": None}
        types = await directory.appointment_types(conn, nobody, TypeFilters(), Page(50, None))
        assert types == {"appointment_types": [], "next_page_token": None}


BAD_REQUESTS = [
    ("locations", {"page_token": "not-a-token"}, "invalid-cursor", None),
    ("resources", {"page_token": "WyJhIiwiYiJd"}, "invalid-cursor", None),  # ["a","b"]
    ("locations", {"page_size": "0"}, "validation-error", "page_size"),
    ("resources", {"page_size": "201"}, "validation-error", "page_size"),
    ("appointment-types", {"page_size": "ten"}, "validation-error", "page_size"),
    ("locations", {"include_retierd": "true"}, "validation-error", "include_retierd"),
    ("resources", {"kind": "provider", "type": "room"}, "validation-error", "type"),
    ("resources", {"category": "doctor"}, "validation-error", "category"),
    ("resources", {"kind": ""}, "validation-error", "kind"),
    ("resources", {"specialty": "gp\x00"}, "validation-error", "specialty"),
    ("resources", {"location_id": "mitte"}, "validation-error", "location_id"),
    ("appointment-types", {"patient_bookable": "perhaps"}, "validation-error", "patient_bookable"),
]


async def test_lists_page_over_http_and_every_malformed_request_is_a_422_problem(
    start_service: Callable[..., RunningService], schema_name: str, database: Database
) -> None:
    # 1. The rows go in as the consumer writes them, in the schema the service reads.
    ev = Events()
    made = [location(ev, f"Clinic {n}") for n in range(5)]
    await write(database, [e for _, e in made])
    service = start_service(
        "clinic.availability",
        "AVAILABILITY_",
        AVAILABILITY_CONSUMER_GROUP=f"availability-{schema_name}",
    )
    base = f"/organizations/{ev.org}"

    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        # 2. A client follows next_page_token to the end.
        names, token = [], None
        while True:
            params = {"page_size": "2", **({"page_token": token} if token else {})}
            response = await http.get(f"{base}/locations", params=params)
            assert response.status_code == 200, response.text
            names += [item["name"] for item in response.json()["locations"]]
            token = response.json()["next_page_token"]
            if token is None:
                break
        assert names == [f"Clinic {n}" for n in range(5)]

        # 3. Another organisation, or one availability never heard of, has empty lists.
        for path in ("locations", "resources", "appointment-types"):
            response = await http.get(f"/organizations/{uuid.uuid4()}/{path}")
            assert response.status_code == 200, response.text
            assert response.json()["next_page_token"] is None
            assert list(response.json().values()) == [[], None]

        # 4. Every malformed request is a 422 problem saying what was wrong.
        for path, params, slug, field in BAD_REQUESTS:
            response = await http.get(f"{base}/{path}", params=params)
            where = f"{path} {params}"
            assert response.status_code == 422, where
            assert response.headers["content-type"] == "application/problem+json", where
            problem = response.json()
            assert problem["type"] == f"https://clinic.example/problems/{slug}", where
            if field is not None:
                assert ["query", field] in [e["location"] for e in problem["errors"]], where

        # 5. A filter given twice is refused, not read as one of the two.
        response = await http.get(f"{base}/resources?category=room&category=device")
        assert response.status_code == 422
        assert response.json()["errors"][0]["location"] == ["query", "category"]
