"""Booking errors as RFC 9457 problems: one problem type per rule."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from clinic.booking.domain.errors import BookingError
from clinic.platform.problems import problem_body, problem_response


def install_booking_errors(app: FastAPI) -> None:
    @app.exception_handler(BookingError)
    async def on_booking_error(request: Request, error: BookingError) -> JSONResponse:
        return problem_response(
            problem_body(
                error.status,
                error.slug,
                error.title,
                error.detail,
                request.url.path,
                **error.extensions,
            )
        )
