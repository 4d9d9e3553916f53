"""Does a Kafka broker answer a metadata request? (Every Kafka rung waits on this.)"""

from __future__ import annotations

import asyncio


async def _kafka_metadata(bootstrap: str, timeout_ms: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def kafka_answers(bootstrap: str, timeout_seconds: float = 3.0) -> bool:
    """True when ``bootstrap`` answers a metadata request within ``timeout_seconds``."""
    from aiokafka.errors import KafkaError

    async def probe() -> None:
        await asyncio.wait_for(
            _kafka_metadata(bootstrap, int(timeout_seconds * 1000)), timeout_seconds + 1
        )

    try:
        asyncio.run(probe())
    except (KafkaError, OSError, TimeoutError):
        return False
    return True
