"""Routes for operations: republishing the event log to Kafka, and replaying it over HTTP
for projections that rebuild without Kafka."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from clinic.booking.api.deps import NotReadyError
from clinic.booking.api.responses import ReplayPage, Republishing
from clinic.booking.domain.errors import BookingError
from clinic.events import Topic
from clinic.platform.problem_handlers import problems

router = APIRouter()


class RelayNotHereError(BookingError):
    status = 409
    slug = "relay-not-leader"
    title = "This replica does not run the relay"


@router.post(
    "/relay/republish",
    status_code=202,
    tags=["operations"],
    response_model=None,
    responses={202: {"model": Republishing}, **problems(409)},
)
def republish(request: Request) -> dict[str, Any]:
    """Publish every event again from the event store (consumers are idempotent). Use after a
    broker lost its data, or to rebuild a projection from the topics."""
    relay = request.app.state.relay
    if relay is None or not relay.republish():
        raise RelayNotHereError("the relay runs on another replica (or is disabled); retry")
    return {"status": "republishing", "from_position": 0}


@router.get(
    "/events", tags=["operations"], response_model=None, responses={200: {"model": ReplayPage}}
)
def replay_events(
    request: Request,
    after: Annotated[int, Query(ge=0, description="Last notification id already read.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    topic: Annotated[
        list[Topic] | None, Query(description="Only events of these topics (repeatable).")
    ] = None,
) -> Response:
    """The integration events of the event store after ``after``, as the relay publishes
    them: for projections that rebuild without Kafka. ``next`` is the id to pass as
    ``after`` for the following page; ``top`` the newest id in the store."""
    replay = request.app.state.replay
    if replay is None:
        raise NotReadyError("the event store is not connected yet; retry shortly")
    topics = sorted(str(t) for t in topic) if topic else None
    top, following, events = replay.page(after, limit, topics)
    body = b'{"top":%d,"next":%d,"events":[%s]}' % (top, following, b",".join(events))
    return Response(body, media_type="application/json")
