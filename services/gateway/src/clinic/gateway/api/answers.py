"""The one place a service's reply becomes the client's answer.

- Reads: the service's answer is passed on as it came (no re-encoding), its problems with
  the gateway's path as ``instance``. A read of patient data is audited.
- Commands (every POST, PUT, PATCH and DELETE): the ``Idempotency-Key`` (required on POST) is
  claimed in the gateway's database, the command goes to the service with the caller as its
  actor and a key derived from the caller's, and the answer is stored with the key and
  audited in one transaction. A repeat gets the stored answer with ``Idempotency-Replayed:
  true``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
from fastapi import Request
from fastapi.responses import Response
from opentelemetry import trace

from clinic.gateway import audit, idempotency
from clinic.gateway.access import audited_operation, authorize
from clinic.gateway.principal import Principal
from clinic.gateway.settings import GatewaySettings
from clinic.gateway.upstream import Reply, Service, Services
from clinic.gateway.writes import DatabaseUnavailableError, Record, Writes
from clinic.platform.database import Database
from clinic.platform.problem_handlers import problem_response
from clinic.platform.problems import PROBLEM_JSON, Problem

CHANNEL = "api"
PASSED_HEADERS = ("etag", "retry-after")


@dataclass(frozen=True)
class Target:
    """What a request is about, for the audit: the ids it names, and whose data it is."""

    ids: tuple[UUID, ...] = ()
    patient_id: UUID | None = None
    audited: bool = True


NOT_AUDITED = Target(audited=False)


@dataclass
class Caller:
    """A request's caller and what the gateway reaches on its behalf."""

    request: Request
    principal: Principal
    services: Services
    database: Database
    writes: Writes
    settings: GatewaySettings
    operation: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def org(self) -> UUID:
        return self.principal.organization_id

    def actor_headers(self) -> dict[str, str]:
        headers = {
            "X-Actor-Id": self.principal.subject,
            "X-Actor-Role": str(self.principal.role),
            "X-Actor-Channel": CHANNEL,
        }
        correlation = self.request.headers.get("x-correlation-id")
        if correlation is not None:
            # One that is not a UUID is not passed on: the request gets its own.
            with contextlib.suppress(ValueError):
                headers["X-Correlation-Id"] = str(uuid.UUID(correlation))
        return headers

    async def get(self, service: Service, path: str, params: Any = None) -> Reply:
        return await service.call("GET", path, params=params, headers=self.actor_headers())


def caller_of(request: Request, operation: str) -> Caller:
    principal: Principal = request.state.principal
    request.state.operation = operation  # a refusal from here on is audited (refused())
    authorize(principal, operation)
    state = request.app.state
    return Caller(
        request=request,
        principal=principal,
        services=state.services,
        database=state.runtime.database,
        writes=state.writes,
        settings=state.settings,
        operation=operation,
    )


def passed_on(caller: Caller, reply: Reply, headers: dict[str, str] | None = None) -> Response:
    """The service's reply as the client's answer."""
    content = reply.content
    media = reply.headers.get("content-type", "application/json")
    if not reply.ok and media.startswith(PROBLEM_JSON):
        content = _with_instance(content, caller.request.url.path)
    kept = {k: v for k, v in reply.headers.items() if k.lower() in PASSED_HEADERS}
    return Response(content, reply.status, {**kept, **(headers or {})}, media_type=media)


def _with_instance(content: bytes, path: str) -> bytes:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content
    if isinstance(body, dict):
        body["instance"] = path
        return orjson.dumps(body)
    return content


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


async def read(caller: Caller, reply: Reply, target: Target = NOT_AUDITED) -> Response:
    """Pass a read's reply on; audit it when it is patient data."""
    answer = passed_on(caller, reply)
    if target.audited:
        await _record(caller, _entry(caller, answer.status_code, target))
    return answer


async def audited(caller: Caller, answer: Response, target: Target) -> Response:
    """Audit an answer the gateway made itself (or refused) and return it."""
    await _record(caller, _entry(caller, answer.status_code, target))
    return answer


async def _record(caller: Caller, entry: audit.AuditEntry) -> None:
    """One audit row, written (with others arriving together) before the answer goes."""
    await caller.writes.record(Record(entry))


async def command(
    caller: Caller,
    service: Service,
    method: str,
    path: str,
    body: Any,
    target: Target,
    *,
    created: str | None = None,
) -> Response:
    """Send one command, once, whatever the client repeats. ``created``: the public path of
    what a 201 created, with ``{id}`` for the new id (the ``Location`` header)."""
    request = caller.request
    key = request.headers.get("idempotency-key")
    if method == "POST" or key is not None:
        key = idempotency.check_key(key)
    headers = caller.actor_headers()
    if_match = request.headers.get("if-match")
    if if_match is not None:
        headers["If-Match"] = if_match
    if key is None:
        # A PUT, PATCH or DELETE without a key: the service still takes each command once,
        # so a retry of this call (after a timeout) cannot do it twice.
        headers["Idempotency-Key"] = f"gw:{uuid.uuid4().hex}"
        reply = await service.call(method, path, body=body, headers=headers, idempotent=True)
        return await audited(caller, _answer_of(caller, reply, created), target)
    claim = idempotency.Claim(
        caller.org,
        caller.principal.subject,
        key,
        idempotency.fingerprint(method, request.url.path, {"body": body, "if_match": if_match}),
    )
    with _tracer.start_as_current_span("idempotency claim"):
        stored = await caller.writes.claim(claim)
    if stored is not None:
        caller.request.app.state.metrics.replays.inc()
        answer = Response(
            stored.body, stored.status, {**stored.headers, "Idempotency-Replayed": "true"}
        )
        first = Reply(stored.status, {}, stored.body)
        await _record(caller, _entry(caller, stored.status, _with_created(target, first), True))
        return answer
    headers["Idempotency-Key"] = idempotency.derived_key(caller.org, caller.principal.subject, key)
    try:
        reply = await service.call(method, path, body=body, headers=headers, idempotent=True)
    except Exception:
        # Nothing was decided (or nobody can tell): the key is free for the retry, which
        # booking answers once; the refusal itself is audited by ``refused``.
        await caller.writes.release(claim)
        raise
    answer = _answer_of(caller, reply, created)
    stored_answer = idempotency.Stored(answer.status_code, dict(answer.headers), bytes(answer.body))
    entry = _entry(caller, answer.status_code, _with_created(target, reply))
    with _tracer.start_as_current_span("idempotency complete"):
        # The answer and its audit row in one statement: both or neither.
        await caller.writes.record(Record(entry, (claim, stored_answer)))
    return answer


_tracer = trace.get_tracer(__name__)


def _answer_of(caller: Caller, reply: Reply, created: str | None) -> Response:
    headers: dict[str, str] = {}
    if created is not None and reply.status == 201:
        body = reply.json()
        if isinstance(body, dict) and "id" in body:
            headers["Location"] = created.format(id=body["id"])
    return passed_on(caller, reply, headers)


def _with_created(target: Target, reply: Reply) -> Target:
    """The audit names what a command created and whose record it changed, beside what the
    request named (when the answer says)."""
    body = reply.json() if reply.ok else None
    if not isinstance(body, dict):
        return target
    ids, patient_id = target.ids, target.patient_id
    if reply.status == 201:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            ids = (*ids, UUID(str(body["id"])))
    if patient_id is None:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            patient_id = UUID(str(body["patient_id"]))
    return Target(ids, patient_id, target.audited)


def _entry(caller: Caller, status: int, target: Target, replayed: bool = False) -> audit.AuditEntry:
    request = caller.request
    route = request.scope.get("route")
    context = trace.get_current_span().get_span_context()
    return audit.AuditEntry(
        organization_id=caller.org,
        actor=caller.principal.subject,
        role=str(caller.principal.role),
        client_id=caller.principal.client_id,
        operation=caller.operation,
        method=request.method,
        route=getattr(route, "path", request.url.path),
        path=request.url.path,
        outcome=status,
        client_address=request.client.host if request.client else None,
        trace_id=format(context.trace_id, "032x") if context.is_valid else None,
        target_ids=target.ids,
        patient_id=target.patient_id,
        replayed=replayed,
    )


def ids(*values: UUID | None) -> tuple[UUID, ...]:
    return tuple(v for v in values if v is not None)


def uuids(values: Sequence[Any]) -> tuple[UUID, ...]:
    return tuple(UUID(str(v)) for v in values)


async def refused(request: Request, error: Problem) -> Response:
    """A problem as the client's answer; when it refuses an audited operation (a change, or
    a read of patient data) the refusal is audited too, with the ids the path named."""
    answer = problem_response(error.body(request.url.path), headers=error.headers)
    operation = getattr(request.state, "operation", None)
    principal = getattr(request.state, "principal", None)
    if operation is None or principal is None or not audited_operation(request.method, operation):
        return answer
    if isinstance(error, DatabaseUnavailableError):
        return answer  # where the audit is written: nothing can be
    named = tuple(v for v in request.path_params.values() if isinstance(v, UUID))
    state = request.app.state
    caller = Caller(
        request,
        principal,
        state.services,
        state.runtime.database,
        state.writes,
        state.settings,
        operation,
    )
    try:
        await _record(caller, _entry(caller, answer.status_code, Target(named)))
    except DatabaseUnavailableError as unavailable:
        return problem_response(unavailable.body(request.url.path), headers=unavailable.headers)
    return answer
