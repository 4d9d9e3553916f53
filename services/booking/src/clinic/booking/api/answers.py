"""The one place a command's outcome becomes an HTTP answer: 201 when it created something,
200 when it changed something, the first answer again (``Idempotency-Replayed: true``) for a
repeated request id; errors become problem+json in ``errors.py``. Commands are counted and
timed here, at the application boundary."""

from __future__ import annotations

import time

from fastapi import Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram

from clinic.booking.application import Bookings
from clinic.booking.commands import Command
from clinic.booking.decision import Outcome
from clinic.booking.domain.errors import BookingError


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


def status_of(outcome: Outcome) -> int:
    return 201 if outcome.created else 200


def answer(request: Request, bookings: Bookings, command: Command) -> JSONResponse:
    """Decide ``command`` and answer with its outcome."""
    metrics: CommandMetrics = request.app.state.command_metrics
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
    return JSONResponse(outcome.body, status_code=status_of(outcome), headers=headers)
