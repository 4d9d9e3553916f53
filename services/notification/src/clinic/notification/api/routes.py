"""Notification's internal routes: what went (or will go) to a patient about an
appointment, and each patient's channels, consents and opt-outs. Staff and the gateway use
them; patients reach the service only through signed links."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from psycopg.rows import dict_row

from clinic.notification import delivery
from clinic.notification.api.responses import ContactPreferences, FreedTimes, MessageHistory
from clinic.notification.planning import ADDRESS_SYSTEMS
from clinic.platform.paging import decode_cursor, encode_cursor
from clinic.platform.problem_handlers import problems
from clinic.platform.problems import Problem
from clinic.platform.strict import Instant

router = APIRouter()
Channel = Literal["email", "sms"]


class NotFoundError(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


HISTORY = """
SELECT message_id, kind, channel, address, language, due_at, before_minutes, status, reason,
       attempts, sent_at, delivery, delivery_at
FROM messages WHERE organization_id = %s AND appointment_id = %s ORDER BY due_at, kind
"""


@router.get(
    "/organizations/{org}/appointments/{appointment_id}/messages",
    tags=["messages"],
    response_model=MessageHistory,
    responses=problems(404),
)
async def message_history(org: UUID, appointment_id: UUID, request: Request) -> dict[str, Any]:
    """Every message of the appointment: planned, sent, skipped (and why), superseded by a
    move or cancellation, retried or failed (with the provider's reason), and what the
    provider last reported about its delivery."""
    database = request.app.state.runtime.database
    async with database.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT 1 FROM appointments WHERE organization_id = %s AND appointment_id = %s",
            [org, appointment_id],
        )
        if await cur.fetchone() is None:
            raise NotFoundError(f"no appointment {appointment_id} in organization {org}")
        await cur.execute(HISTORY, [org, appointment_id])
        rows = await cur.fetchall()
    return {"appointment_id": appointment_id, "messages": rows}


async def _patient(request: Request, org: UUID, patient_id: UUID) -> dict[str, Any]:
    database = request.app.state.runtime.database
    async with database.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT patient_id, preferred_channel, language, consent_sms, consent_email, "
            "time_zone, contacts FROM patients WHERE organization_id = %s AND patient_id = %s",
            [org, patient_id],
        )
        patient: dict[str, Any] | None = await cur.fetchone()
        if patient is None:
            raise NotFoundError(f"no patient {patient_id} in organization {org}")
        addresses = [
            (channel, contact["value"])
            for contact in patient.pop("contacts")
            for channel, systems in ADDRESS_SYSTEMS.items()
            if contact["system"] in systems
        ]
        await cur.execute(
            "SELECT channel, address, opted_out_at, source, organization_id FROM opt_outs "
            "WHERE address = ANY(%s) AND (organization_id IS NULL OR organization_id = %s) "
            "ORDER BY organization_id NULLS FIRST",
            [[a for _, a in addresses], org],
        )
        stopped: dict[tuple[str, str], dict[str, Any]] = {}
        for r in await cur.fetchall():
            if r["organization_id"] is None:  # the owner's own STOP: that it applies, no more
                r = {**r, "opted_out_at": None}
            stopped[(r["channel"], r["address"])] = r  # this organisation's own row wins
    patient["addresses"] = [
        {
            "channel": channel,
            "address": address,
            "opted_out": (channel, address) in stopped,
            "since": stopped.get((channel, address), {}).get("opted_out_at"),
            "source": stopped.get((channel, address), {}).get("source"),
        }
        for channel, address in dict.fromkeys(addresses)
    ]
    return patient


@router.get(
    "/organizations/{org}/patients/{patient_id}/contact-preferences",
    tags=["preferences"],
    response_model=ContactPreferences,
    responses=problems(404),
)
async def contact_preferences(org: UUID, patient_id: UUID, request: Request) -> dict[str, Any]:
    """How the patient is reached: preferred channel, language, consents (booking's record
    of them, as notification last heard), and each address with its opt-out. Channel and
    consent are changed on the patient's record in booking (``PUT
    /organizations/{org}/patients/{id}/preferences``); opt-outs here."""
    return await _patient(request, org, patient_id)


@router.put(
    "/organizations/{org}/patients/{patient_id}/opt-outs/{channel}",
    tags=["preferences"],
    response_model=ContactPreferences,
    responses=problems(404),
)
async def opt_out(
    org: UUID, patient_id: UUID, channel: Annotated[Channel, Path()], request: Request
) -> dict[str, Any]:
    """Stop this organisation's messages by ``channel`` to the patient's addresses (as its
    unsubscribe link does). Idempotent."""
    return await _opt(request, org, patient_id, channel, stop=True)


@router.delete(
    "/organizations/{org}/patients/{patient_id}/opt-outs/{channel}",
    tags=["preferences"],
    response_model=ContactPreferences,
    responses=problems(404),
)
async def opt_in(
    org: UUID, patient_id: UUID, channel: Annotated[Channel, Path()], request: Request
) -> dict[str, Any]:
    """Lift this organisation's opt-out of ``channel`` for the patient's addresses (the
    patient asked for it; consent is still required). A STOP the patient sent by SMS stays
    until they send START. Idempotent."""
    return await _opt(request, org, patient_id, channel, stop=False)


async def _opt(
    request: Request, org: UUID, patient_id: UUID, channel: str, stop: bool
) -> dict[str, Any]:
    """Opt each of the patient's addresses for ``channel`` out (``stop``) or back in."""
    patient = await _patient(request, org, patient_id)
    now = request.app.state.clock()
    async with request.app.state.runtime.database.transaction() as conn:
        for address in (a["address"] for a in patient["addresses"] if a["channel"] == channel):
            if stop:
                await delivery.opt_out(conn, channel, address, "staff", now, org)
            else:
                await delivery.opt_in(conn, channel, address, now, org)
    return await _patient(request, org, patient_id)


FREED = """
SELECT freed_id, location_id, appointment_type_id, start_at AS start, end_at AS end,
       source_appointment_id, status, reason, found_at
FROM freed_times WHERE organization_id = %s AND start_at >= %s {after}
ORDER BY start_at DESC, freed_id DESC LIMIT %s
"""
OFFERS = """
SELECT offer_id, freed_id, entry_id, patient_id, status, reason, hold_appointment_id,
       offered_at, expires_at
FROM offers WHERE freed_id = ANY(%s) ORDER BY offered_at
"""


@router.get(
    "/organizations/{org}/waitlist-offers",
    tags=["waitlist"],
    response_model=FreedTimes,
)
async def waitlist_offers(
    org: UUID,
    request: Request,
    since: Annotated[Instant | None, Query(description="Freed times starting from.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    page_token: Annotated[
        str | None, Query(max_length=200, description="The next_page_token of the last page.")
    ] = None,
) -> dict[str, Any]:
    """Time that freed up and what became of it: offered to whom, in which order, and with
    what outcome (accepted, lapsed, declined, or refused by booking). Latest start first,
    ``limit`` a page."""
    start = since or request.app.state.clock() - dt.timedelta(days=30)
    extra: list[Any] = []
    condition = ""
    if page_token is not None:
        at, last = decode_cursor(page_token)
        condition, extra = "AND (start_at, freed_id) < (%s, %s)", [at, last]
    database = request.app.state.runtime.database
    async with database.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(FREED.format(after=condition), [org, start, *extra, limit + 1])
        freed = await cur.fetchall()
    following = None
    if len(freed) > limit:
        freed = freed[:limit]
        following = encode_cursor(freed[-1]["start"], freed[-1]["freed_id"])
    async with database.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(OFFERS, [[f["freed_id"] for f in freed]])
        offers = await cur.fetchall()
    for f in freed:
        f["offers"] = [
            {k: v for k, v in o.items() if k != "freed_id"}
            for o in offers
            if o["freed_id"] == f["freed_id"]
        ]
    return {"freed_times": freed, "next_page_token": following}
