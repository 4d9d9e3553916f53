"""Consumer lag is measured from the broker: end offsets against the group's committed
offsets, per partition, in messages and in time."""

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from prometheus_client import CollectorRegistry

from clinic.platform.kafka import KafkaAccess, ensure_topics
from clinic.platform.lag import LagMetrics, LagMonitor, PartitionLag
from clinic.platform.settings import ServiceSettings


class ProbeSettings(ServiceSettings):
    service_name = "probe"


async def test_lag_counts_what_the_group_has_not_consumed_and_how_old_it_is(
    settings_for: Callable[..., ProbeSettings], schema_name: str
) -> None:
    bootstrap = settings_for(ProbeSettings).kafka_bootstrap_servers
    topic, group = f"test.lag.{schema_name}", f"lag-{schema_name}"
    await ensure_topics(KafkaAccess(bootstrap), [topic], partitions=2)
    monitor = LagMonitor(KafkaAccess(bootstrap), group, [topic], LagMetrics(CollectorRegistry()))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await asyncio.gather(admin.start(), reader.start(), producer.start())

    async def measured() -> dict[int, PartitionLag]:
        # A broker's first group waits for the offsets topic: a retriable answer.
        for _ in range(100):
            try:
                return {lag.partition: lag for lag in await monitor.measure(admin, reader)}
            except GroupCoordinatorNotAvailableError:
                await asyncio.sleep(0.2)
        raise AssertionError("no group coordinator")

    try:
        # 1. Ten records on partition 0, four on partition 1; nobody consumed any.
        for n in range(14):
            await producer.send_and_wait(topic, b"x", partition=0 if n < 10 else 1)
        await asyncio.sleep(1.1)
        lags = await measured()
        assert (lags[0].messages, lags[1].messages) == (10, 4)
        assert lags[0].seconds >= 1.0
        assert lags[1].seconds >= 1.0

        # 2. The group consumes and commits six records of partition 0 only.
        await consumer.start()
        await consumer.commit({TopicPartition(topic, 0): 6})
        lags = await measured()
        assert (lags[0].messages, lags[1].messages) == (4, 4)

        # 3. Caught up everywhere: no lag in messages nor in time.
        await consumer.commit({TopicPartition(topic, 0): 10, TopicPartition(topic, 1): 4})
        lags = await measured()
        assert [(lag.messages, lag.seconds) for lag in lags.values()] == [(0, 0.0), (0, 0.0)]
    finally:
        await asyncio.gather(admin.close(), reader.stop(), producer.stop(), consumer.stop())
