"""Consumer lag, measured from the broker the way ops tools (Burrow, kafka-lag-exporter) do,
independently of the consumer it watches: a stuck consumer shows growing lag instead of the
last value it reported.

Every ``interval`` seconds, for one consumer group and its topics:
- in messages, per partition: the partition's end offset (log end) minus the group's
  committed offset (a partition the group never committed counts from its first offset);
- in time, per partition: how long ago the oldest record the group has not consumed yet was
  written (its Kafka timestamp), 0 when the group is caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge

from clinic.platform.kafka import KafkaAccess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    messages: int
    seconds: float


def lag_in_messages(end: int, committed: int | None, beginning: int) -> int:
    """End offset minus the committed one; a partition never committed counts from its
    first offset still on the broker (pure, so it is unit-tested)."""
    start = committed if committed is not None and committed >= 0 else beginning
    return max(0, end - start)


class LagMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Gauge(
            "kafka_consumer_lag_messages",
            "Records on the broker the consumer group has not consumed, per partition "
            "(end offset minus committed offset).",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self.seconds = Gauge(
            "kafka_consumer_lag_seconds",
            "Age of the oldest record the consumer group has not consumed, per partition "
            "(0 when caught up).",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self.measured = Gauge(
            "kafka_consumer_lag_measured_timestamp_seconds",
            "When the consumer group's lag was last measured.",
            ["group"],
            registry=registry,
        )


class LagMonitor:
    def __init__(
        self,
        kafka: KafkaAccess,
        group: str,
        topics: list[str],
        metrics: LagMetrics,
        interval: float = 5.0,
    ) -> None:
        self.kafka = kafka
        self.group = group
        self.topics = topics
        self.metrics = metrics
        self.interval = interval
        self.also: list[Callable[[], Awaitable[object]]] = []
        """Measured at the same interval, from elsewhere than the broker (the projection's
        dead letters waiting for a replay)."""
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"lag-{self.group}"),
            asyncio.create_task(self._run_also(), name=f"lag-also-{self.group}"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_also(self) -> None:
        while True:
            for measure in self.also:
                try:
                    await measure()
                except Exception:  # measured again next time; never fatal
                    log.warning("a projection measure failed", exc_info=True)
            await asyncio.sleep(self.interval)

    async def _run(self) -> None:
        while True:
            try:
                await self._watch()
            except (KafkaError, OSError) as error:
                log.warning("consumer lag not measured", extra={"error": repr(error)})
                await asyncio.sleep(self.interval)

    async def _watch(self) -> None:
        admin = AIOKafkaAdminClient(**self.kafka.options())
        reader = AIOKafkaConsumer(**self.kafka.options(), enable_auto_commit=False)
        await admin.start()
        try:
            await reader.start()
            try:
                while True:
                    for lag in await self.measure(admin, reader):
                        labels = (self.group, lag.topic, str(lag.partition))
                        self.metrics.messages.labels(*labels).set(lag.messages)
                        self.metrics.seconds.labels(*labels).set(lag.seconds)
                    self.metrics.measured.labels(self.group).set(time.time())
                    await asyncio.sleep(self.interval)
            finally:
                await reader.stop()
        finally:
            await admin.close()

    async def measure(
        self, admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer
    ) -> list[PartitionLag]:
        cluster = await reader._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        committed = await admin.list_consumer_group_offsets(self.group, partitions=partitions)
        ends = await reader.end_offsets(partitions)
        beginnings = await reader.beginning_offsets(partitions)
        lags = []
        for tp in partitions:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None else None
            messages = lag_in_messages(ends[tp], offset, beginnings[tp])
            seconds = 0.0
            if messages:
                seconds = await self._age_of(reader, tp, ends[tp] - messages)
            lags.append(PartitionLag(tp.topic, tp.partition, messages, seconds))
        return lags

    @staticmethod
    async def _age_of(reader: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> float:
        """How long ago the record at ``offset`` was written."""
        reader.assign([tp])
        reader.seek(tp, offset)
        batch = await reader.getmany(tp, timeout_ms=2000, max_records=1)
        records = batch.get(tp, [])
        if not records:
            return 0.0
        return max(0.0, time.time() - float(records[0].timestamp) / 1000)
