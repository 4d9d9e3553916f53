"""The routes a message's links open. A GET only shows what the link would do (mail scanners
and link previews follow links: nothing changes); the one button on the page POSTs, and only
then does booking act, once. Browsers get pages; clients asking for JSON get JSON and
problem+json."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter

from clinic.notification import actions, delivery
from clinic.notification.actions import LinkInvalidError, Target
from clinic.notification.api.pages import page, text, visit_line
from clinic.notification.texts import when
from clinic.platform.problem_handlers import problems
from clinic.platform.problems import PROBLEM_JSON, Problem

router = APIRouter()
CHOICES = 8
HORIZON = dt.timedelta(days=14)


class LinkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.followed = Counter(
            "notification_links_total",
            "Links followed, by action, request (view: GET, act: POST) and outcome (shown, "
            "done, or the problem: link-used, link-expired, booking-refused, ...).",
            ["action", "request", "outcome"],
            registry=registry,
        )


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


def _refusal(request: Request, problem: Problem, language: str = "en") -> Response:
    if _wants_json(request):
        return JSONResponse(
            problem.body(str(request.url.path)), problem.status, media_type=PROBLEM_JSON
        )
    return page(problem.status, language, text(language, "problem"),
                message=problem.title, problem=problem.detail)  # fmt: skip


def _count(request: Request, action: str, kind: str, outcome: str) -> None:
    request.app.state.link_metrics.followed.labels(action, kind, outcome).inc()


async def _choices(
    request: Request, target: Target, limit: int = CHOICES
) -> list[dict[str, str]] | None:
    row, language = target.row, target.language
    now = request.app.state.clock()
    tz = ZoneInfo(row["time_zone"])
    today = now.astimezone(tz).date()
    found = await request.app.state.availability.free_starts(
        row["organization_id"], row["appointment_type_id"], row["location_id"],
        today, today + HORIZON, limit + 1,
    )  # fmt: skip
    if found is None:
        return None
    starts = [f.start for f in found if f.start != row["start_at"] and f.start > now][:limit]
    return [{"value": s.isoformat(), "label": when(s, tz, language)} for s in starts]


@router.get(
    "/links/{token}",
    tags=["links"],
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "application/json": {}}},
               **problems(400, 404, 409, 410)},
)  # fmt: skip
async def view_link(token: str, request: Request) -> Response:
    """What the link would do, with one button; changes nothing."""
    state = request.app.state
    action = "unknown"
    try:
        async with state.runtime.database.pool.connection() as conn:
            target = await actions.look(conn, state.signer, token, state.clock())
    except Problem as problem:
        _count(request, action, "view", problem.slug)
        return _refusal(request, problem)
    action, row, language = target.link.action, target.row, target.language
    visit = visit_line(row, language)
    choices: list[dict[str, str]] | None = []
    if action == "reschedule":
        choices = await _choices(request, target)
    _count(request, action, "view", "shown")
    if _wants_json(request):
        body: dict[str, Any] = {"action": action, "appointment_id": str(row["appointment_id"]),
                                "visit": visit, "method": "POST"}  # fmt: skip
        if action == "reschedule":
            body["choices"] = choices
        return JSONResponse(body)
    if action == "reschedule" and not choices:
        return page(200, language, text(language, "reschedule"), visit=visit,
                    message=text(language, "reschedule.none"),
                    organization=row["organization"])  # fmt: skip
    return page(200, language, text(language, action), visit=visit,
                button=text(language, f"{action}.button"), choices=choices or [],
                organization=row["organization"])  # fmt: skip


@router.post(
    "/links/{token}",
    tags=["links"],
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "application/json": {}}},
               **problems(400, 404, 409, 410, 503)},
)  # fmt: skip
async def follow_link(token: str, request: Request) -> Response:
    """Do what the link says, once, through booking with the patient as the actor
    (``start``, a form field, for a move)."""
    state = request.app.state
    action = "unknown"
    try:
        start = _start(await _start_values(request))
        if start is not None:
            await _offered(request, token, start)
        target, answer = await actions.act(
            state.runtime.database, state.booking, state.signer, token, state.clock(), start
        )
    except Problem as problem:
        _count(request, action, "act", problem.slug)
        return _refusal(request, problem)
    action, language = target.link.action, target.language
    _count(request, action, "act", "done")
    if _wants_json(request):
        return JSONResponse({"action": action, "done": True, "appointment": answer.body})
    row = dict(target.row)
    if action == "reschedule" and start is not None:
        row["start_at"] = start
    return page(200, language, text(language, action), visit=visit_line(row, language),
                message=text(language, f"{action}.done"),
                organization=row["organization"])  # fmt: skip


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")


async def _start_values(request: Request) -> list[Any]:
    """The new time a move sends: a form field from the page, or ``{"start": ...}`` from an
    app (the web app, through the gateway)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise LinkInvalidError("The body is not JSON.", reason="body") from None
        if not isinstance(body, dict):
            raise LinkInvalidError("The body is a JSON object.", reason="body")
        return [] if body.get("start") is None else [body["start"]]
    return list((await request.form()).getlist("start"))


def _start(values: list[Any]) -> dt.datetime | None:
    """The one new time a move form sends, as RFC 3339 with its offset, in UTC."""
    if not values:
        return None
    if len(values) != 1 or not isinstance(values[0], str) or not RFC3339.match(values[0]):
        raise LinkInvalidError("Choose one of the times offered.", reason="start")
    try:
        start = dt.datetime.fromisoformat(values[0].replace("Z", "+00:00"))
        if not 1900 <= start.year <= 2199:
            raise ValueError(start.year)
        return start.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise LinkInvalidError("Choose one of the times offered.", reason="start") from None


class TimeNotOfferedError(Problem):
    status = 409
    slug = "time-not-offered"
    title = "That time is not free any more"


class AvailabilityUnavailableError(Problem):
    status = 503
    slug = "availability-unavailable"
    title = "Free times cannot be looked up right now"


async def _offered(request: Request, token: str, start: dt.datetime) -> None:
    """A move goes only to a time the page offers now (free, on the clinic's grid, within
    what patients may book); anything else is refused before booking is asked."""
    state = request.app.state
    async with state.runtime.database.pool.connection() as conn:
        target = await actions.look(conn, state.signer, token, state.clock())
    if target.link.action != "reschedule":
        return
    choices = await _choices(request, target, limit=999)  # all within the horizon
    if choices is None:
        raise AvailabilityUnavailableError("Please try again in a minute.")
    if start not in {dt.datetime.fromisoformat(c["value"]) for c in choices}:
        raise TimeNotOfferedError("Please choose one of the times now offered.")


@router.get(
    "/unsubscribe/{token}",
    tags=["links"],
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}, **problems(400, 404, 410)},
)
async def view_unsubscribe(token: str, request: Request) -> Response:
    """Asks before stopping messages (a scanner following the link stops nothing)."""
    state = request.app.state
    try:
        async with state.runtime.database.pool.connection() as conn:
            target = await actions.look(conn, state.signer, token, state.clock(), True)
    except Problem as problem:
        return _refusal(request, problem)
    language = target.language
    return page(200, language, text(language, "unsubscribe"), message=target.row["address"],
                button=text(language, "unsubscribe.button"), one_click=True,
                organization=target.row["organization"])  # fmt: skip


@router.post(
    "/unsubscribe/{token}",
    tags=["links"],
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}, **problems(400, 404, 410)},
)
async def unsubscribe(token: str, request: Request) -> Response:
    """Stops every message by this channel to this address (RFC 8058 one-click: mail
    clients POST ``List-Unsubscribe=One-Click`` here). Idempotent."""
    state = request.app.state
    now = state.clock()
    try:
        async with state.runtime.database.transaction() as conn:
            target = await actions.look(conn, state.signer, token, now, True)
            row = target.row
            await delivery.opt_out(conn, row["channel"], row["address"], "unsubscribe link", now,
                                   target.link.organization_id)  # fmt: skip
    except Problem as problem:
        _count(request, "unsubscribe", "act", problem.slug)
        return _refusal(request, problem)
    _count(request, "unsubscribe", "act", "done")
    language = target.language
    return page(200, language, text(language, "unsubscribe"), message=text(language,
                "unsubscribe.done"), organization=row["organization"])  # fmt: skip
