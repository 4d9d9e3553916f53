"""problem+json answers for every error a service returns: never a 200 with an error inside,
never an HTML page, and never a dropped connection.

- A :class:`Problem` (every service's named errors) answers with its own status and type.
- Request validation failures are 422 ``validation-error`` with the field errors.
- Unknown routes and methods are 404/405 problems.
- Anything else (a bug) is caught by :class:`UnexpectedErrors`: logged with its traceback
  and trace id, answered as a 500 problem carrying that trace id, and the keep-alive
  connection stays usable (the error is not re-raised to the server).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.platform.problems import PROBLEM_JSON, Problem, problem_body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


log = logging.getLogger(__name__)


class UnexpectedErrors:
    """The app's innermost middleware: an error no handler answered becomes a logged 500
    problem with the request's trace id (so ops can find the trace and the log line)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            context = trace.get_current_span().get_span_context()
            trace_id = format(context.trace_id, "032x") if context.is_valid else None
            log.exception(
                "unexpected error answering a request",
                extra={"path": scope.get("path"), "method": scope.get("method")},
            )
            if started:
                raise  # half an answer is out: only closing the connection is honest
            body = problem_body(
                500,
                "internal-error",
                "Internal error",
                "the service failed to answer; the error is logged"
                + (f" with trace id {trace_id}" if trace_id else ""),
                scope.get("path"),
                trace_id=trace_id,
            )
            payload = json.dumps(body).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})


def install_problem_handlers(app: FastAPI) -> None:
    app.add_middleware(UnexpectedErrors)

    @app.exception_handler(Problem)
    async def on_problem(request: Request, error: Problem) -> JSONResponse:
        return problem_response(error.body(request.url.path))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
            for e in error.errors()
        ]
        return problem_response(
            problem_body(
                422,
                "validation-error",
                "The request is not valid",
                f"{len(errors)} field(s) failed validation",
                request.url.path,
                errors=errors,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        status = error.status_code
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        slug = phrase.lower().replace(" ", "-").replace("'", "")
        return problem_response(
            problem_body(status, slug, phrase, str(error.detail), request.url.path),
            headers=getattr(error, "headers", None),
        )
