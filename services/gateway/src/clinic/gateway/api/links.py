"""A message's links, for the web app's pages: a reminder's "confirm", "cancel" or "move",
a waitlist offer's "accept". Notification signs them and keeps what each may do; the
gateway passes them on. No bearer token: the signed token is the credential, good for one
action on one appointment until it expires. A GET shows what the link would do and
changes nothing (mail scanners follow links); the POST acts, once, through booking with the
patient as the actor, and is in the access audit."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from opentelemetry import trace
from pydantic import AwareDatetime, Field

from clinic.gateway import audit
from clinic.gateway.api.schemas import Body
from clinic.gateway.api.views import View
from clinic.gateway.writes import Record
from clinic.platform.problem_handlers import problems

router = APIRouter(prefix="/v1", tags=["links"])
Token = Annotated[
    str,
    Path(
        min_length=16,
        max_length=400,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The signed token at the end of the message's link.",
    ),
]
NOTIFICATION_ANSWERS = {"Accept": "application/json"}


class LinkChoice(View):
    value: str = Field(description="A new start to send back (RFC 3339).")
    label: str = Field(description="The time as the patient reads it, in their language.")


class LinkView(View):
    action: str = Field(description="confirm, cancel, reschedule or accept.")
    appointment_id: UUID
    visit: str = Field(description="The visit in a line, in the patient's language.")
    method: str = Field(description="POST: what acts.")
    choices: list[LinkChoice] | None = Field(
        default=None, description="For a move: the free times to choose from (null: none now)."
    )


class LinkDoneView(View):
    action: str
    done: bool
    appointment: dict[str, Any] = Field(description="The appointment as booking has it now.")


class LinkActionRequest(Body):
    start: AwareDatetime | None = Field(
        default=None,
        description="For a move: one of the choices' values.",
        examples=["2026-12-09T09:30:00Z"],
    )

    model_config = {
        **Body.model_config,
        "json_schema_extra": {"examples": [{}, {"start": "2026-12-09T09:30:00Z"}]},
    }


VIEW_EXAMPLE = {
    "action": "cancel",
    "appointment_id": "c8d7e6f5-a4b3-4c2d-9e1f-0a9b8c7d6e5f",
    "visit": "General consultation, Monday 7 December 2026, 09:00, Berlin Mitte",
    "method": "POST",
}
DONE_EXAMPLE = {
    "action": "cancel",
    "done": True,
    "appointment": {"id": "c8d7e6f5-a4b3-4c2d-9e1f-0a9b8c7d6e5f", "status": "cancelled"},
}


@router.get(
    "/links/{token}",
    summary="What a message's link would do",
    response_model=LinkView,
    responses={200: {"content": {"application/json": {"example": VIEW_EXAMPLE}}},
               **problems(400, 404, 409, 410)},
)  # fmt: skip
async def view_link(request: Request, token: Token) -> Response:
    """The action, the visit it is about and (for a move) the free times; changes nothing.
    A used link is 409 ``link-used``, an expired one 410 ``link-expired``."""
    services = request.app.state.services
    reply = await services.notification.call("GET", f"/links/{token}", headers=NOTIFICATION_ANSWERS)
    return _passed_on(reply.status, reply.content, reply.headers)


@router.post(
    "/links/{token}",
    summary="Do what a message's link says",
    response_model=LinkDoneView,
    responses={200: {"content": {"application/json": {"example": DONE_EXAMPLE}}},
               **problems(400, 404, 409, 410)},
)  # fmt: skip
async def follow_link(request: Request, token: Token, body: LinkActionRequest) -> Response:
    """Confirm, cancel, move (``start``: one of the choices) or accept, once. No
    Idempotency-Key: the link itself acts once; a second POST is 409 ``link-used``."""
    services = request.app.state.services
    sent = {"start": body.start.astimezone(dt.UTC).isoformat()} if body.start else {}
    reply = await services.notification.call(
        "POST", f"/links/{token}", body=sent, headers=NOTIFICATION_ANSWERS, idempotent=False
    )
    if reply.status == 200:
        await _audited(request, reply.json())
    return _passed_on(reply.status, reply.content, reply.headers)


def _passed_on(status: int, body: bytes, headers: dict[str, str]) -> Response:
    """Notification's answer: JSON, or its problem (type, title, detail) with the gateway's
    route as ``instance`` (not the path: the token is a credential, never echoed)."""
    if status < 400:
        return Response(body, status_code=status, media_type="application/json")
    try:
        problem = orjson.loads(body)
        if isinstance(problem, dict):
            problem["instance"] = "/v1/links/{token}"
            body = orjson.dumps(problem)
    except orjson.JSONDecodeError:
        pass
    return Response(body, status_code=status, media_type="application/problem+json")


async def _audited(request: Request, answer: dict[str, Any]) -> None:
    """The change in the access audit: the patient, through their message's link."""
    appointment = answer.get("appointment") or {}
    try:
        organization = UUID(str(appointment["organization_id"]))
        target = UUID(str(appointment["id"]))
        patient = UUID(str(appointment["patient_id"]))
    except (KeyError, ValueError):
        return
    route = request.scope.get("route")
    context = trace.get_current_span().get_span_context()
    entry = audit.AuditEntry(
        organization_id=organization,
        actor=f"link:{answer.get('action', '')}",
        role="patient",
        client_id=None,
        operation="links.follow",
        method=request.method,
        route=getattr(route, "path", request.url.path),
        path="/v1/links/{token}",  # the token is a credential: never stored
        outcome=200,
        client_address=request.client.host if request.client else None,
        trace_id=format(context.trace_id, "032x") if context.is_valid else None,
        target_ids=(target,),
        patient_id=patient,
    )
    await request.app.state.writes.record(Record(entry))
