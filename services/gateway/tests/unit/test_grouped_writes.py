"""The gateway's grouped writes without a database: requests arriving together are written
together, each gets its own result, and one bad row fails only its own request."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from clinic.devstack.components import free_port
from clinic.gateway.idempotency import AGAIN, Again, Claim
from clinic.gateway.writes import DatabaseUnavailableError, Grouped, Writes
from clinic.platform.database import Database


class Ledger:
    """A stand-in writer that records each group it was given, and can be held open."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.again_once: set[str] = set()
        self.refused: set[str] = set()
        self.unreachable = False

    async def write(self, group: list[str]) -> list[str | BaseException | Again]:
        self.groups.append(list(group))
        await self.gate.wait()
        if self.unreachable:
            raise DatabaseUnavailableError("down")
        if any(item in self.refused for item in group):
            raise ValueError("a row the database cannot take")
        results: list[str | BaseException | Again] = []
        for item in group:
            if item in self.again_once:
                self.again_once.discard(item)
                results.append(AGAIN)
            elif item.startswith("no:"):
                results.append(KeyError(item))
            else:
                results.append(item.upper())
        return results


async def together(ledger: Ledger, names: list[str], in_flight: int = 1) -> list[object]:
    """Send ``names`` at once while the writer is held, then let it go: each one's result
    (or refusal), in order."""
    grouped = Grouped[str, str]("test", ledger.write, in_flight=in_flight)
    ledger.gate.clear()
    tasks = [asyncio.create_task(grouped(name)) for name in names]
    await asyncio.sleep(0)
    ledger.gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_request_alone_is_written_at_once_in_a_group_of_its_own() -> None:
    ledger = Ledger()
    grouped = Grouped[str, str]("test", ledger.write, in_flight=1)
    assert await grouped("a") == "A"
    assert ledger.groups == [["a"]]


async def test_requests_arriving_while_a_group_is_written_go_together_in_the_next() -> None:
    ledger = Ledger()
    grouped = Grouped[str, str]("test", ledger.write, in_flight=1)
    ledger.gate.clear()
    first = asyncio.create_task(grouped("a"))
    await asyncio.sleep(0)
    others = [asyncio.create_task(grouped(name)) for name in "bcd"]
    await asyncio.sleep(0)
    ledger.gate.set()
    assert await asyncio.gather(first, *others) == ["A", "B", "C", "D"]
    assert ledger.groups == [["a"], ["b", "c", "d"]]


async def test_while_there_is_room_each_request_goes_at_once_and_only_then_they_gather() -> None:
    ledger = Ledger()
    assert await together(ledger, ["a", "b", "c", "d"], in_flight=2) == ["A", "B", "C", "D"]
    assert ledger.groups == [["a"], ["b"], ["c", "d"]]


async def test_each_request_gets_its_own_refusal() -> None:
    results = await together(Ledger(), ["a", "no:b", "c"])
    assert results[0] == "A"
    assert results[2] == "C"
    assert isinstance(results[1], KeyError)


async def test_an_item_to_send_again_goes_into_the_next_group() -> None:
    ledger = Ledger()
    ledger.again_once = {"b"}
    assert await together(ledger, ["first", "a", "b"]) == ["FIRST", "A", "B"]
    assert ledger.groups == [["first"], ["a", "b"], ["b"]]


async def test_a_group_refused_as_a_whole_is_written_one_at_a_time_and_only_the_bad_row_fails() -> (
    None
):
    ledger = Ledger()
    ledger.refused = {"bad"}
    results = await together(ledger, ["first", "a", "bad", "c"])
    assert results[:2] == ["FIRST", "A"]
    assert results[3] == "C"
    assert isinstance(results[2], ValueError)
    assert ledger.groups == [["first"], ["a", "bad", "c"], ["a"], ["bad"], ["c"]]


async def test_the_database_unreachable_fails_the_whole_group_at_once_with_a_503() -> None:
    ledger = Ledger()
    ledger.unreachable = True
    results = await together(ledger, ["first", "a", "b", "c"])
    assert all(isinstance(r, DatabaseUnavailableError) and r.status == 503 for r in results)
    assert ledger.groups == [["first"], ["a", "b", "c"]]  # not retried one by one


async def test_a_claim_whose_request_went_away_before_its_group_formed_is_not_written() -> None:
    ledger = Ledger()
    grouped = Grouped[str, str]("test", ledger.write, in_flight=1, drop_abandoned=True)
    ledger.gate.clear()
    first = asyncio.create_task(grouped("a"))
    await asyncio.sleep(0)
    gone = asyncio.create_task(grouped("gone"))
    kept = asyncio.create_task(grouped("kept"))
    await asyncio.sleep(0)
    gone.cancel()
    ledger.gate.set()
    assert await first == "A"
    assert await kept == "KEPT"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert ledger.groups == [["a"], ["kept"]]


async def test_draining_waits_for_every_write_asked_for() -> None:
    ledger = Ledger()
    grouped = Grouped[str, str]("test", ledger.write, in_flight=1)
    ledger.gate.clear()
    tasks = [asyncio.create_task(grouped(name)) for name in "ab"]
    await asyncio.sleep(0)
    drained = asyncio.create_task(grouped.drain())
    await asyncio.sleep(0)
    assert not drained.done()
    ledger.gate.set()
    await drained
    assert all(task.done() for task in tasks)


async def test_the_gateways_database_unreachable_is_a_503_to_retry_never_a_500() -> None:
    port = free_port()  # nothing listens there
    database = Database(f"postgresql://clinic@127.0.0.1:{port}/clinic", "gateway", "test", 1)
    database.pool.timeout = 0.5
    await database.open()
    try:
        writes = Writes(database, dt.timedelta(hours=1))
        claim = Claim(uuid.uuid4(), "desk-1", "k-1", "print")
        with pytest.raises(DatabaseUnavailableError) as refused:
            await writes.claim(claim)
        assert refused.value.status == 503
        assert refused.value.headers == {"Retry-After": "5"}
    finally:
        await database.close()
