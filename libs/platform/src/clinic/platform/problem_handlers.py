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

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.platform.paths import shown_path
from clinic.platform.problems import PROBLEM_JSON, Problem, problem_body, send_problem


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
        except ClientDisconnect:
            # The client left before its body arrived: nobody to answer, nothing failed.
            log.info("client left mid-request", extra={"path": shown_path(scope)})
            return
        except Exception:
            context = trace.get_current_span().get_span_context()
            trace_id = format(context.trace_id, "032x") if context.is_valid else None
            log.exception(
                "unexpected error answering a request",
                extra={"path": shown_path(scope), "method": scope.get("method")},
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
            await send_problem(send, body)


class FieldError(BaseModel):
    location: list[str | int]
    message: str
    type: str | None = None


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, as every error of every service is answered."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="A stable URI per rule, e.g. .../problems/slot-taken.")
    title: str
    status: int
    detail: str
    instance: str | None = Field(None, description="The request path.")
    errors: list[FieldError] | None = Field(None, description="On a validation-error.")
    trace_id: str | None = Field(None, description="On an internal-error: find it in the logs.")


ALWAYS: dict[str, str] = {
    "500": "An unexpected error; it is logged with the trace id the problem carries.",
    "503": "The service is not ready yet (starting, or a dependency is down); retry.",
}
WHEN_INPUT = {"422": "The request is not valid: see ``errors``, or the rule named in ``type``."}
WHEN_BODY = {
    "400": "The request is malformed: a body that cannot be read as JSON, or a required "
    "header missing or malformed.",
    "413": "The request body is larger than the service accepts.",
}
DESCRIPTIONS = {
    "400": "A required header is missing or malformed.",
    "401": "No valid access token: see ``WWW-Authenticate``.",
    "429": "Too many requests: retry after ``Retry-After`` seconds.",
    "403": "The caller may not do this.",
    "404": "No such resource in this organisation (another tenant's ids look the same).",
    "409": "The request conflicts with the current state: see ``type`` (and ``alternatives``).",
    "412": "It changed since the version ``If-Match`` names: nothing was done; read it again.",
    **ALWAYS,
    **WHEN_INPUT,
    **WHEN_BODY,
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation of an OpenAPI document answers its errors as problem+json: the 4xx a
    route declares (``responses={404: {...}}``), 422 where it takes input, 413 where it
    takes a body, and 500 and 503 everywhere, all with the one ``Problem`` schema."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    document = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(document.pop("$defs", {}))
    components["Problem"] = document
    ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            wanted = {code for code in responses if code[0] in "45"} | set(ALWAYS)
            if operation.get("parameters") or operation.get("requestBody"):
                wanted |= set(WHEN_INPUT)
            if operation.get("requestBody"):
                wanted |= set(WHEN_BODY)
            for code in sorted(wanted):
                declared = responses.get(code, {})
                description = declared.get("description")
                if not description or description in ("Validation Error", "Additional Response"):
                    description = DESCRIPTIONS.get(code, "A problem.")
                responses[code] = {
                    "description": description,
                    "content": {"application/problem+json": {"schema": ref}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the 4xx it can answer (documented as problem+json)."""
    return {status: {"description": DESCRIPTIONS.get(str(status), "")} for status in statuses}


def install_problem_handlers(app: FastAPI) -> None:
    app.add_middleware(UnexpectedErrors)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(Problem)
    async def on_problem(request: Request, error: Problem) -> JSONResponse:
        return problem_response(error.body(request.url.path), headers=error.headers)

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
