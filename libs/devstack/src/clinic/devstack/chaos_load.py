"""`make chaos`'s clients: front desks through the gateway's /v1 and EMRs through the bridge's
FHIR API, racing for the same few popular times (a general consultation at Berlin Mitte on
the next two weekdays), and desks booking walk-ins a few minutes ahead, which they check in
or, once the time has begun, mark as no-shows (the clinic's walk-in clinicians, whom the
run adds through /v1 as a clinic admin would, work around the clock).

Each request is sent until it gets a decision: no answer, a 5xx, a 429, or the gateway's
"this key is still in flight" is sent again, with the same Idempotency-Key (a FHIR `$book`
of a proposal is keyed by the proposal itself), so every request ends with an answer the
client saw, and a repeat must get the first answer."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import httpx

TYPE = "General consultation"
LOCATION = "Berlin Mitte"
WALK_IN = "Walk-in (chaos)"
WALK_IN_MINUTES = 5
WALK_IN_CLINICIANS = 6
FHIR_JSON = "application/fhir+json"


@dataclass
class Call:
    """One client request and the decision it ended with (after its repeats)."""

    kind: str
    status: int
    attempts: int
    appointment: str | None = None
    start: dt.datetime | None = None
    channel: str = "api"
    patient: str | None = None
    replay: Callable[[], httpx.Response] | None = field(default=None, repr=False)
    """The same request with the same Idempotency-Key (a desk's POST), to send once more."""


@dataclass
class Run:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)


ZONE = ZoneInfo("Europe/Berlin")
"""The time zone of ``LOCATION`` (its calendars are asked for by its local days)."""


def weekdays_ahead(count: int) -> list[dt.date]:
    days: list[dt.date] = []
    day = dt.datetime.now(ZONE).date()
    while len(days) < count:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


def loaded_days() -> list[dt.date]:
    """The local days the load books: today and tomorrow (walk-ins) and the next two
    weekdays (consultations)."""
    today = dt.datetime.now(ZONE).date()
    return sorted({today, today + dt.timedelta(days=1), *weekdays_ahead(2)})


def open_walk_ins(staff: httpx.Client, demo: dict[str, Any]) -> str:
    """Walk-in clinicians at ``LOCATION`` working every hour of every day, and a walk-in
    appointment type bookable at no notice, through /v1 as a clinic admin adds them (fixed
    Idempotency-Keys: a second run on the same platform finds them). The type's id."""
    location = demo["locations"][LOCATION]

    def post(path: str, key: str, body: dict[str, Any]) -> str:
        answer = staff.post(path, json=body, headers={"Idempotency-Key": f"chaos-{key}"})
        answer.raise_for_status()
        return str(answer.json()["id"])

    for n in range(1, WALK_IN_CLINICIANS + 1):
        clinician = post(
            "/providers",
            f"walk-in-clinician-{n}",
            {"name": f"Walk-in clinician {n}", "kind": "physician", "specialties": ["walk-in"],
             "location_ids": [location], "languages": ["de", "en"]},
        )  # fmt: skip
        hours = [
            {"location_id": location, "weekday": d, "start": "00:00", "end": "23:59"}
            for d in range(7)
        ]
        answer = staff.put(f"/providers/{clinician}/schedule/weekly-hours", json={"hours": hours})
        answer.raise_for_status()
    step = {"name": "walk-in", "duration_minutes": WALK_IN_MINUTES,
            "requirements": [{"role": "clinician", "category": "provider",
                              "specialty": "walk-in"}]}  # fmt: skip
    return post(
        "/appointment-types",
        "walk-in-type",
        {"name": WALK_IN, "steps": [step], "minimum_notice_minutes": 0,
         "cancellation_cutoff_minutes": 0, "reschedule_cutoff_minutes": 0, "reminder_plan": []},
    )  # fmt: skip


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


Answer = tuple[int, Any, int]
"""(status, decoded body, attempts); status 0 when no answer came within the patience."""


def persist(
    send: Callable[[], httpx.Response], patience: float, waiting: Callable[..., bool]
) -> Answer:
    """Send until a decision or until ``patience`` runs out, half a second apart."""
    deadline = time.monotonic() + patience
    attempts = 0
    while True:
        attempts += 1
        try:
            answer = send()
            body = answer.json() if answer.content else None
            if answer.status_code < 500 and not waiting(answer, body):
                return answer.status_code, body, attempts
            if time.monotonic() > deadline:
                return answer.status_code, body, attempts
        except (httpx.HTTPError, ValueError):
            if time.monotonic() > deadline:
                return 0, None, attempts
        time.sleep(0.5)


class WaitingOutRateLimits(httpx.HTTPTransport):
    """Waits out the gateway's rate limit (a 429's ``Retry-After``), as a well-behaved client
    does."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        while True:
            response = super().handle_request(request)
            if response.status_code != 429:
                return response
            response.read()
            response.close()
            time.sleep(float(response.headers.get("Retry-After") or 1))


class Desk:
    """A front desk's app on the gateway."""

    def __init__(self, gateway: str, token: str, patience: float) -> None:
        self.http = httpx.Client(
            base_url=f"{gateway}/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10, connect=2),
            transport=WaitingOutRateLimits(),
        )
        self.patience = patience

    def get(self, path: str, params: dict[str, Any]) -> Answer:
        return persist(lambda: self.http.get(path, params=params), self.patience, _not_decided)

    def post(self, path: str, body: Any) -> tuple[Answer, Callable[[], httpx.Response]]:
        """Send until decided; also returns the request, same key, to send once more."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}

        def once() -> httpx.Response:
            return self.http.post(path, json=body, headers=headers)

        return persist(once, self.patience, _not_decided), once


def _not_decided(answer: httpx.Response, body: Any) -> bool:
    """Too many requests, or the first request of this key still in flight (its gateway was
    killed: the claim lapses)."""
    return answer.status_code == 429 or (
        answer.status_code == 409
        and str((body or {}).get("type", "")).endswith("idempotency-key-in-use")
    )


class Emr:
    """An EMR on the bridge's FHIR API, with a SMART backend-services token (fetched again
    when refused)."""

    def __init__(self, bridge: str, org: str, client: str, secret: str, patience: float) -> None:
        self.http = httpx.Client(
            base_url=f"{bridge}/fhir/{org}", timeout=httpx.Timeout(15, connect=2)
        )
        self.credentials = (client, secret)
        self.token = ""
        self.patience = patience

    def _authorised(self) -> dict[str, str]:
        if not self.token:
            answer = self.http.post(
                "/auth/token",
                auth=self.credentials,
                data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
            )
            answer.raise_for_status()
            self.token = answer.json()["access_token"]
        return {"Authorization": f"Bearer {self.token}"}

    def send(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> Answer:
        def once() -> httpx.Response:
            headers = {**self._authorised(), "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
            if key is not None:
                headers["Idempotency-Key"] = key
            answer = self.http.request(method, path, headers=headers, **kwargs)
            if answer.status_code == 401:
                self.token = ""
            return answer

        return persist(once, self.patience, lambda answer, _: answer.status_code == 401)


def drive_desk(
    desk: Desk, rng: random.Random, demo: dict[str, Any], until: float, run: Run
) -> None:
    """One desk's load until ``until``: search, book one of the first free times (racing the
    others for them), outright or as a hold it then confirms, and now and then move, cancel,
    book a walk-in minutes ahead (racing the others for the walk-in clinicians), check
    one in, or mark one as a no-show (refused until its time has begun)."""
    location = demo["locations"][LOCATION]
    kind = demo["appointment_types"][TYPE]
    days = weekdays_ahead(2)
    mine: list[str] = []
    walk_ins: list[tuple[str, str]] = []  # (appointment, what the desk will do: the patient
    # comes and is checked in, or never comes and is marked a no-show once the time begins)

    def step(what: str, appointment: str, path: str, body: Any, start: str | None = None) -> int:
        (status, _, attempts), again = desk.post(path, body)
        when = instant(start) if start else None
        run.record(Call(what, status, attempts, appointment, when, replay=again))
        return status

    def book(body: dict[str, Any], hold: bool = False) -> str | None:
        (status, answer, attempts), again = desk.post("/holds" if hold else "/appointments", body)
        created = str(answer["id"]) if status in (200, 201) and answer else None
        when, patient = instant(body["start"]), body["patient_id"]
        run.record(Call("hold" if hold else "book", status, attempts, created, when, "api",
                        patient, again))  # fmt: skip
        return created

    while time.monotonic() < until:
        roll = rng.random()
        if mine and roll < 0.15:
            appointment = mine.pop(rng.randrange(len(mine)))
            step("cancel", appointment, f"/appointments/{appointment}/cancel", {"reason": "chaos"})
            continue
        if walk_ins and roll < 0.22:
            appointment, verb = walk = rng.choice(walk_ins)
            if 200 <= step(verb, appointment, f"/appointments/{appointment}/{verb}", {}) < 300:
                walk_ins.remove(walk)
            continue
        if roll < 0.3:  # a walk-in, seen within minutes by whichever clinician is free
            start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
            start += dt.timedelta(minutes=rng.randint(1, 3))
            created = book(
                {"appointment_type_id": demo["walk_in"], "location_id": location,
                 "patient_id": rng.choice(demo["patients"]),
                 "start": start.isoformat().replace("+00:00", "Z")}
            )  # fmt: skip
            if created:
                walk_ins.append((created, "check-in" if rng.random() < 0.6 else "no-show"))
            continue
        day = rng.choice(days).isoformat()
        status, page, _ = desk.get(
            "/slots",
            {"appointment_type_id": kind, "location_id": location, "from": day, "to": day,
             "page_size": 5},
        )  # fmt: skip
        slots = (page or {}).get("slots") or [] if status == 200 else []
        if not slots:
            continue
        start = rng.choice(slots[:3])["start"]
        if mine and roll < 0.45:
            appointment = rng.choice(mine)
            path = f"/appointments/{appointment}/reschedule"
            step("reschedule", appointment, path, {"start": start}, start)
            continue
        body = {"appointment_type_id": kind, "location_id": location,
                "patient_id": rng.choice(demo["patients"]), "start": start}  # fmt: skip
        hold = roll > 0.8  # a patient finishing on a kiosk: held, then confirmed
        if hold:
            body["hold_minutes"] = 120  # outlasts the run: a hold left pending stays so
        created = book(body, hold)
        if created and hold:
            step("confirm", created, f"/appointments/{created}/confirm", {}, start)
        if created:
            mine.append(created)


def drive_emr(emr: Emr, rng: random.Random, demo: dict[str, Any], until: float, run: Run) -> None:
    """One EMR's load until ``until``: `$find` the same popular times, `$book` one of the
    first proposals, and now and then `$cancel` one of its bookings."""
    location = demo["locations"][LOCATION]
    kind = demo["appointment_types"][TYPE]
    days = weekdays_ahead(2)
    mine: list[str] = []
    while time.monotonic() < until:
        if mine and rng.random() < 0.15:
            appointment = mine.pop(rng.randrange(len(mine)))
            status, _, attempts = emr.send(
                "POST", f"/Appointment/{appointment}/$cancel", key=str(uuid.uuid4()), content=b""
            )
            run.record(Call("cancel", status, attempts, appointment, channel="fhir"))
            continue
        day = rng.choice(days).isoformat()
        patient = rng.choice(demo["patients"])
        status, found, _ = emr.send(
            "GET",
            "/Appointment/$find",
            params={"start": f"{day}T06:00:00Z", "end": f"{day}T18:00:00Z",
                    "appointmentType": kind, "location": f"Location/{location}",
                    "patient": f"Patient/{patient}", "_count": 5},
        )  # fmt: skip
        proposals = [e["resource"] for e in (found or {}).get("entry", [])] if status == 200 else []
        if not proposals:
            continue
        proposal = rng.choice(proposals[:3])
        parameters = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "appointment-reference",
                    "valueReference": {"reference": f"Appointment/{proposal['id']}"},
                }
            ],
        }
        status, bundle, attempts = emr.send("POST", "/Appointment/$book", json=parameters)
        entries = (bundle or {}).get("entry") or [] if 200 <= status < 300 else []
        created = str(entries[0]["resource"]["id"]) if entries else None
        start = instant(proposal["start"])
        run.record(Call("book", status, attempts, created, start, "fhir", patient))
        if created:
            mine.append(created)
