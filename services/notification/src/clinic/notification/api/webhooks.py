"""The SMS provider's webhooks: delivery reports and patients' replies, each signed with
``X-Twilio-Signature`` over the URL the provider was given (``NOTIFICATION_PUBLIC_URL``), so
only the provider can move a delivery state or opt a number out. Both answer TwiML."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response

from clinic.notification import delivery
from clinic.notification.clinics import Acting
from clinic.notification.replies import intent
from clinic.notification.sms import DELIVERY_STATES, signed_by
from clinic.platform.problem_handlers import problems
from clinic.platform.problems import Problem

router = APIRouter()
TWIML = "application/xml"
MAX_FIELD = 1600
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters no SMS or provider field holds (tab and line breaks may)."""


class UnsignedError(Problem):
    status = 403
    slug = "signature-invalid"
    title = "Not signed by the SMS provider"


class WebhookFieldError(Problem):
    status = 400
    slug = "invalid-webhook"
    title = "Not a webhook the SMS provider sends"


def twiml(reply: str | None = None) -> Response:
    body = f"<Message>{escape(reply)}</Message>" if reply else ""
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', media_type=TWIML
    )


async def _signed_form(request: Request, path: str) -> dict[str, str]:
    settings = request.app.state.settings
    form = await request.form()
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str) or len(value) > MAX_FIELD or key in fields:
            raise WebhookFieldError(f"field {key!r} is not a single short text")
        fields[key] = value
    url = f"{settings.public_url.rstrip('/')}{path}"
    token = settings.sms_auth_token.get_secret_value()
    if not signed_by(token, url, fields, request.headers.get("x-twilio-signature")):
        raise UnsignedError("X-Twilio-Signature does not sign this request")
    for key, value in fields.items():  # signed, yet not text a provider sends
        if CONTROL.search(value):
            raise WebhookFieldError(f"field {key!r} holds control characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookFieldError(f"field {key!r} is not UTF-8 text") from None
    return fields


def _required(fields: dict[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not fields.get(n)]
    if missing:
        raise WebhookFieldError(f"missing {', '.join(missing)}")
    return [fields[n] for n in names]


@router.post(
    "/sms/status",
    tags=["webhooks"],
    response_class=Response,
    responses={200: {"content": {TWIML: {}}}, **problems(400, 403)},
)
async def sms_status(request: Request) -> Response:
    """A delivery report (``MessageSid``, ``MessageStatus``, ``ErrorCode``): the message's
    delivery moves forward, never back."""
    fields = await _signed_form(request, "/sms/status")
    sid, state = _required(fields, "MessageSid", "MessageStatus")
    if state not in DELIVERY_STATES:
        raise WebhookFieldError(f"MessageStatus is one of {', '.join(DELIVERY_STATES)}")
    async with request.app.state.runtime.database.transaction() as conn:
        await delivery.record_delivery(
            conn, sid, state, fields.get("ErrorCode") or None, request.app.state.clock()
        )
    return twiml()


REPLIES: dict[str, str] = {
    "opt-out": "You will get no more messages from us. Reply START to undo.",
    "opt-in": "You will get appointment messages again. Reply STOP to stop.",
    "help": "Appointment messages. Reply C to confirm your visit, STOP to stop.",
    "confirmed": "Thank you: your appointment is confirmed.",
    "nothing": "We found no coming appointment to confirm. Please call the clinic.",
    "already": "Your appointment is confirmed already. Thank you.",
}


class BookingUnreachableError(Problem):
    status = 503
    slug = "booking-unavailable"
    title = "The clinic's calendar cannot be reached; the reply will be read when it can"


@router.post(
    "/sms/inbound",
    tags=["webhooks"],
    response_class=Response,
    responses={200: {"content": {TWIML: {}}}, **problems(400, 403, 503)},
)
async def sms_inbound(request: Request) -> Response:
    """A patient's reply (``From``, ``Body``, ``MessageSid``): STOP and its synonyms opt
    the number out at once, START opts it back in, HELP explains, C confirms the coming
    appointment the latest message was about (through booking, the patient as the actor).
    Every reply is kept once: a provider's retry of the same webhook changes nothing."""
    state = request.app.state
    fields = await _signed_form(request, "/sms/inbound")
    reply_id, sender = _required(fields, "MessageSid", "From")
    body = fields.get("Body", "")
    wants = intent(body)
    now = state.clock()
    target = None
    async with state.runtime.database.transaction() as conn:
        if not await delivery.record_reply(conn, reply_id, sender, body, wants, wants, now):
            return twiml()  # handled already
        if wants == "opt-out":
            await delivery.opt_out(conn, "sms", sender, "STOP reply", now, None)
        elif wants == "opt-in":
            await delivery.opt_in(conn, "sms", sender, now, None)
        elif wants == "confirm":
            target = await delivery.latest_sent_to(conn, "sms", sender, now)
    if wants != "confirm":
        return twiml(REPLIES.get(wants))
    if target is None:
        outcome, reply = "nothing to confirm", REPLIES["nothing"]
    elif target[3]:
        outcome, reply = "confirmed already", REPLIES["already"]
    else:
        org, appointment, patient, _ = target
        acting = Acting(patient, "sms", f"sms:{reply_id}")
        answer = await state.booking.confirm_attendance(org, appointment, acting)
        if not answer.definitive:
            async with state.runtime.database.transaction() as conn:
                await delivery.forget_reply(conn, reply_id)
            raise BookingUnreachableError(answer.detail)
        outcome = "confirmed" if answer.ok else f"refused: {answer.detail}"
        reply = REPLIES["confirmed"] if answer.ok else answer.detail
        state.link_metrics.followed.labels("confirm", "sms", "done" if answer.ok else
                                           "booking-refused").inc()  # fmt: skip
    async with state.runtime.database.transaction() as conn:
        await delivery.settle_reply(conn, reply_id, outcome)
    return twiml(reply)
