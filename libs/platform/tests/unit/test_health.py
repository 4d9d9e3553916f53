import asyncio

from clinic.platform.health import Readiness


async def test_readiness_is_ready_only_when_every_check_passes() -> None:
    readiness = Readiness(timeout_seconds=1)

    async def ok() -> None:
        return None

    async def down() -> None:
        raise ConnectionError("127.0.0.1:1: connection refused")

    readiness.add("database", ok)
    assert await readiness.report() == (True, {"database": "ok"})
    readiness.add("broker", down)
    ready, checks = await readiness.report()
    assert ready is False
    assert checks == {
        "database": "ok",
        "broker": "ConnectionError: 127.0.0.1:1: connection refused",
    }


async def test_a_check_that_hangs_fails_with_a_timeout_instead_of_hanging_readiness() -> None:
    readiness = Readiness(timeout_seconds=0.05)

    async def hangs() -> None:
        await asyncio.sleep(10)

    readiness.add("broker", hangs)
    assert await readiness.report() == (False, {"broker": "timed out after 0.05s"})
