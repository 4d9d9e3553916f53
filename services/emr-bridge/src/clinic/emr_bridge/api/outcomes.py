"""Every answer under ``/fhir`` is FHIR JSON (``application/fhir+json``), every error an
OperationOutcome.

The bridge's own errors are ``FhirError``s (a ``Problem`` with the OperationOutcome issue
code). Everything else that goes wrong (an unknown route, a body too large, a body that is
not JSON, a bug) is answered by the platform as problem+json; ``OutcomeErrors`` rewrites
those answers under ``/fhir`` into OperationOutcomes with the same status, so an EMR never
sees anything but FHIR.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.platform.problems import PROBLEM_JSON, Problem, problem_body, send_problem

FHIR_JSON = "application/fhir+json"

ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    500: "exception",
    502: "transient",
    503: "transient",
    504: "timeout",
}
"""http://hl7.org/fhir/R4/valueset-issue-type.html, by HTTP status."""


class FhirResponse(JSONResponse):
    """FHIR JSON, each resource written as FHIR writes it: ``resourceType``, ``id`` and
    ``meta`` first (PostgreSQL's jsonb keeps keys in an order of its own)."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return super().render(ordered(content))


FIRST = ("resourceType", "id", "meta")


def ordered(value: Any) -> Any:
    if isinstance(value, dict):
        if "resourceType" in value:
            head = {k: ordered(value[k]) for k in FIRST if k in value}
            return head | {k: ordered(v) for k, v in value.items() if k not in head}
        return {k: ordered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


class FhirError(Problem):
    """An error the bridge answers with an OperationOutcome."""

    status = 400
    slug = "invalid"
    title = "The request is not valid FHIR for this server"
    code: str | None = None

    def __init__(self, detail: str, code: str | None = None, **extensions: Any) -> None:
        code = code or self.code
        super().__init__(detail, **({"fhir_code": code} if code else {}), **extensions)


class NotFound(FhirError):
    status, slug, title = 404, "not-found", "No such resource"


class Gone(FhirError):
    status, slug, title = 410, "deleted", "The resource was deleted"


class NotSupported(FhirError):
    status, slug, title, code = (
        404,
        "not-supported",
        "Not supported by this server",
        "not-supported",
    )


class Conflict(FhirError):
    status, slug, title = 409, "conflict", "The request conflicts with the current state"


class PreconditionFailed(FhirError):
    status, slug, title, code = 412, "precondition-failed", "Version mismatch", "conflict"


class Unavailable(FhirError):
    status, slug, title = 503, "unavailable", "A service the bridge depends on did not answer"


def operation_outcome(
    status: int, detail: str, title: str | None = None, code: str | None = None
) -> dict[str, Any]:
    severity = "error" if status < 500 else "fatal"
    issue: dict[str, Any] = {
        "severity": severity,
        "code": code or ISSUE_CODES.get(status, "processing"),
        "diagnostics": detail,
    }
    if title:
        issue["details"] = {"text": title}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def from_problem(problem: dict[str, Any]) -> dict[str, Any]:
    status = int(problem.get("status") or 500)
    detail = str(problem.get("detail") or problem.get("title") or "")
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        places = "; ".join(
            f"{'.'.join(str(p) for p in e.get('location', ()))}: {e.get('message')}"
            for e in errors
            if isinstance(e, dict)
        )
        detail = f"{detail}: {places}"
    code = problem.get("fhir_code")
    return operation_outcome(status, detail, problem.get("title"), code)


class OutcomeErrors:
    """Rewrites problem+json answers under ``prefix`` into OperationOutcomes."""

    def __init__(self, app: ASGIApp, prefix: str = "/fhir/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewriting(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", ()))
                if headers.get(b"content-type", b"").startswith(PROBLEM_JSON.encode()):
                    start = message
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            try:
                problem = json.loads(b"".join(chunks))
            except ValueError:
                problem = {"status": start["status"], "detail": "error"}
            body = json.dumps(from_problem(problem)).encode()
            kept: list[tuple[bytes, bytes]] = [
                (k, v)
                for k, v in start.get("headers", ())
                if k.lower() not in (b"content-type", b"content-length")
            ]
            kept += [
                (b"content-type", FHIR_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({**start, "headers": kept})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewriting)


MAX_DEPTH = 64
"""Deepest nesting of a JSON body the bridge reads (FHIR resources nest a dozen levels)."""


def _forbidden(text: str) -> bool:
    """Characters FHIR strings may not hold (below U+0020 but tab, CR and LF; lone
    surrogates), nor PostgreSQL store (NUL)."""
    return any((c < " " and c not in "\t\r\n") or "\ud800" <= c <= "\udfff" for c in text)


def fhir_json(raw: bytes) -> Any:
    """A request body as JSON FHIR accepts: 400 for what is not JSON, nests deeper than
    ``MAX_DEPTH``, or holds characters FHIR strings may not."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FhirError("the body is not JSON (or nests too deep)", code="structure") from None
    stack: list[tuple[Any, int]] = [(body, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FhirError(f"the body nests deeper than {MAX_DEPTH} levels", code="structure")
        if isinstance(value, str):
            if _forbidden(value):
                raise FhirError(
                    "the body holds a control character FHIR does not allow in a string",
                    code="invalid",
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                if _forbidden(key):
                    raise FhirError("a key of the body holds a control character", code="invalid")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return body


class RefuseControlCharacters:
    """A path or query string under ``prefixes`` holding a control character (``%00`` and
    its kind) is refused with 400 before any route reads it: no FHIR or admin value may
    hold one, and PostgreSQL cannot store NUL."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = ("/fhir/", "/admin/")) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and path.startswith(self.prefixes):
            query = unquote_plus(bytes(scope.get("query_string", b"")).decode("latin-1"))
            if any(c < " " or c == "\x7f" for c in path + query):
                body = problem_body(
                    400,
                    "control-character",
                    "Control character",
                    "the path or query holds a control character",
                    path,
                )
                await send_problem(send, body)
                return
        await self.app(scope, receive, send)
