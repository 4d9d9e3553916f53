"""Dead letters over HTTP, for ops: what a projection could not apply, and replaying it.

A consumer parks a message it could not apply (after its retries) in its ``dead_letters``
table and counts it (``projection_dead_letters_total``, which alerts). Once the cause is
fixed (a deploy, a repaired reference), ops list what is parked and replay it:

- ``GET /operations/dead-letters``: the parked messages, oldest first (``replayed=true``
  for those already replayed), paged by ``page_size`` / ``page_token``;
- ``POST /operations/dead-letters/replay``: apply them again, all that are not replayed yet
  or the ``ids`` given, oldest first; each is applied exactly once (the consumer's
  idempotency record), and one that fails again is parked again as a new dead letter.

Like every operations route they need the operations token
(``clinic.platform.operations``): dead letters can carry patients' details.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from clinic.platform.consumer import IdempotentConsumer, Outcome, event_type_of
from clinic.platform.operations import operations_access
from clinic.platform.paging import InvalidCursorError, decode_position, encode_position
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import StrictModel

router = APIRouter(
    prefix="/operations/dead-letters",
    tags=["operations"],
    dependencies=[Depends(operations_access)],
)

PAGE_KIND = "dead-letters"
ERROR_SHOWN = 4000
"""Characters of a dead letter's error (a traceback) shown in a list."""


class DeadLetterView(BaseModel):
    id: int
    consumer: str
    topic: str
    partition: int
    offset: int
    event_type: str = Field(description="The type the message claims (unreadable: none).")
    error: str = Field(description="Why it was parked: the last attempt's error.")
    attempts: int
    failed_at: dt.datetime
    replayed_at: dt.datetime | None


class DeadLettersPage(BaseModel):
    dead_letters: list[DeadLetterView]
    next_page_token: str | None = Field(description="The next page's token; none at the end.")


class ReplayRequest(StrictModel):
    ids: list[int] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Only these dead letters (default: every one not replayed yet).",
    )


class ReplayFigures(BaseModel):
    replayed: int = Field(description="Dead letters taken up again.")
    applied: int = Field(description="Applied to the projection now.")
    duplicate: int = Field(description="Already applied (a redelivery had done it).")
    dead_lettered: int = Field(description="Failed again: parked again as new dead letters.")


def _consumer(request: Request) -> IdempotentConsumer:
    consumer: IdempotentConsumer = request.app.state.runtime.consumer
    return consumer


def _after(token: str | None) -> int:
    if token is None:
        return 0
    try:
        return decode_position(PAGE_KIND, token)
    except ValueError:
        raise InvalidCursorError("give back the next_page_token of the previous page") from None


@router.get("", response_model=DeadLettersPage, responses=problems(401, 403, 422))
async def list_dead_letters(
    request: Request,
    replayed: Annotated[
        bool, Query(description="Those already replayed instead of those still parked.")
    ] = False,
    page_size: Annotated[int, Query(ge=1, le=500)] = 100,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The messages this service's projection could not apply, oldest first."""
    consumer = _consumer(request)
    async with consumer.database.pool.connection() as conn:
        cursor = await conn.execute(
            """SELECT id, consumer, topic, partition, "offset", value, error, attempts,
                      failed_at, replayed_at
               FROM dead_letters
               WHERE consumer = %s AND id > %s AND (replayed_at IS NOT NULL) = %s
               ORDER BY id LIMIT %s""",
            (consumer.name, _after(page_token), replayed, page_size + 1),
        )
        rows = await cursor.fetchall()
    page = rows[:page_size]
    return {
        "dead_letters": [
            {
                "id": row[0],
                "consumer": row[1],
                "topic": row[2],
                "partition": row[3],
                "offset": row[4],
                "event_type": event_type_of(bytes(row[5])),
                "error": row[6][-ERROR_SHOWN:],
                "attempts": row[7],
                "failed_at": row[8],
                "replayed_at": row[9],
            }
            for row in page
        ],
        "next_page_token": (
            encode_position(PAGE_KIND, page[-1][0]) if len(rows) > page_size else None
        ),
    }


@router.post("/replay", response_model=ReplayFigures, responses=problems(400, 401, 403, 422))
async def replay_dead_letters(request: Request, body: ReplayRequest | None = None) -> Any:
    """Apply parked messages again (all not replayed yet, or the ``ids`` given), oldest
    first, each exactly once; one that fails again is parked again."""
    counts = await _consumer(request).replay_dead_letters(body.ids if body else None)
    return {
        "replayed": sum(counts.values()),
        "applied": counts[Outcome.APPLIED],
        "duplicate": counts[Outcome.DUPLICATE],
        "dead_lettered": counts[Outcome.DEAD_LETTERED],
    }
