"""An appointment's SIU message waits for its patient and clinic to reach the projection
(they travel on other topics, read in any order) and then goes with them: never an S12
without the patient's PID because the appointment was read first."""

import asyncio
import uuid

from bridge_history import MRN, History
from prometheus_client import CollectorRegistry

from clinic.devstack.mllp_peer import Peer
from clinic.emr_bridge.consumer import ProjectionWriter
from clinic.emr_bridge.sender import Policy, Sender, SenderMetrics
from clinic.events import patients as pat
from clinic.platform.database import Database


async def test_an_s12_read_before_its_patient_waits_for_the_patient(database: Database) -> None:
    history = History(4)
    history.reference()
    pid = history.register()
    registered = history.events.pop()  # the patient's event comes later
    history.book(held=False, group=False)
    writer = ProjectionWriter(CollectorRegistry())
    with Peer() as peer:
        async with database.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO emr_endpoints VALUES (%s, %s, 'epic', '127.0.0.1', %s, 'CLINIC',"
                " 'EPIC', 'MAIN', '{}', true, now())",
                [uuid.uuid4(), history.org, peer.port],
            )
            await writer.write_many(conn, history.events)
        sender = Sender(database, SenderMetrics(CollectorRegistry()), Policy(idle_seconds=30))
        sender.start(0.05)
        try:
            await asyncio.sleep(2)
            assert peer.received == []  # the patient is not known yet
            assert isinstance(registered.typed_payload(), pat.PatientRegistered)
            async with database.pool.connection() as conn, conn.transaction():
                await writer.write_many(conn, [registered])
            deadline = asyncio.get_running_loop().time() + 30
            while not peer.acked():
                assert asyncio.get_running_loop().time() < deadline, "no S12 after the patient"
                await asyncio.sleep(0.1)
        finally:
            await sender.stop()
    [s12] = peer.acked()
    assert s12.trigger == "S12"
    assert f"^^^{MRN}^MR" in s12.text
    assert str(pid) in s12.text
    assert "+0100" in s12.text or "+0200" in s12.text  # the clinic's offset, not UTC
