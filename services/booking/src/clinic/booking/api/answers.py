"""The one place a command's outcome becomes an HTTP answer: 201 when it created something,
200 when it changed something, the first answer again (``Idempotency-Replayed: true``) for a
repeated request id; errors become problem+json in ``errors.py``. A command on one
appointment answers with its version as ``ETag``. Commands are counted and timed here, at
the application boundary."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid

from fastapi import Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram

from clinic.booking.api.deps import entity_tag
from clinic.booking.application import Bookings
from clinic.booking.commands import AppointmentCommand, Command
from clinic.booking.decision import Outcome
from clinic.booking.domain.acting import Acting, RequestContext, Role
from clinic.booking.domain.errors import BookingError, InvalidRequestError


class CommandMetrics:
    """Domain counters, recorded at the application boundary."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "booking_commands_total",
            "Booking commands by outcome (a problem slug or 'ok').",
            ["command", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "booking_command_seconds",
            "Time to decide and save a booking command.",
            ["command"],
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )


ROLES = frozenset(str(role) for role in Role)
ACTOR_PART = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class InvalidContextError(BookingError):
    status = 400
    slug = "invalid-request-context"
    title = "A request context header is malformed"


def context_of(request: Request) -> RequestContext:
    """Who asks and which request, from the headers the caller sets (the gateway from the
    token; internal callers name themselves) and the request's trace. Without actor
    headers, the acting party is the booking service itself on its internal channel."""
    headers = request.headers
    user_id = headers.get("x-actor-id")
    role = headers.get("x-actor-role")
    channel = headers.get("x-actor-channel", "internal")
    if (user_id is None) != (role is None):
        raise InvalidContextError("X-Actor-Id and X-Actor-Role are given together or not at all")
    if user_id is not None and not (0 < len(user_id) <= 200 and user_id.isprintable()):
        raise InvalidContextError("X-Actor-Id is 1 to 200 printable characters")
    if role is not None and role not in ROLES:
        raise InvalidContextError(f"X-Actor-Role is one of {', '.join(sorted(ROLES))}")
    if not ACTOR_PART.match(channel):
        raise InvalidContextError("X-Actor-Channel is a lowercase word such as front-desk")
    correlation = headers.get("x-correlation-id")
    if correlation is not None:
        try:
            correlation = str(uuid.UUID(correlation))
        except ValueError:
            raise InvalidContextError("X-Correlation-Id is a UUID") from None
    span = trace.get_current_span().get_span_context()
    traceparent = (
        f"00-{span.trace_id:032x}-{span.span_id:016x}-{int(span.trace_flags):02x}"
        if span.is_valid
        else None
    )
    return RequestContext(
        acting=Acting(user_id or "booking", Role(role or Role.SYSTEM), channel),
        correlation_id=correlation,
        traceparent=traceparent,
    )


def status_of(outcome: Outcome) -> int:
    return 201 if outcome.created else 200


def answer(
    request: Request, bookings: Bookings, command: Command, claimed: str | None = None
) -> JSONResponse:
    """Decide ``command`` and answer with its outcome. ``claimed``: the side a deprecated
    body field (``booked_by``, ``actor``, ``by``) names; it decides nothing, and is refused
    when it disagrees with the acting party."""
    metrics: CommandMetrics = request.app.state.command_metrics
    context = context_of(request)
    if claimed is not None and claimed != context.acting.kind:
        raise InvalidRequestError(
            f"the request says {claimed!r} acts, but it acts as {context.acting.role} "
            f"({context.acting.kind}); who acts comes from X-Actor-Id and X-Actor-Role: "
            "leave out the deprecated field or make it agree"
        )
    command = dataclasses.replace(command, context=context)
    started = time.perf_counter()
    try:
        outcome = bookings.handle(command)
    except BookingError as error:
        metrics.commands.labels(command.name, error.slug).inc()
        raise
    finally:
        metrics.latency.labels(command.name).observe(time.perf_counter() - started)
    metrics.commands.labels(command.name, "replayed" if outcome.replayed else "ok").inc()
    headers = {"Idempotency-Replayed": "true"} if outcome.replayed else {}
    if isinstance(command, AppointmentCommand):
        headers["ETag"] = entity_tag(outcome.body["version"])
    return JSONResponse(outcome.body, status_code=status_of(outcome), headers=headers)
