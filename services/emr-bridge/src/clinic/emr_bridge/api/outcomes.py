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

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.platform.problems import PROBLEM_JSON, Problem

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
