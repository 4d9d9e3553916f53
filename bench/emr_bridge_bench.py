"""EMR bridge: what the bridge adds to a search, and SIU messages acknowledged per second
against the bare MLLP loop.

Run with ``make bench``. Prints, side by side in one run:
- ``Appointment/$find`` p50/p99 over HTTP on the demo hospital group (booking, availability
  and the bridge as processes, as ``make up`` runs them) beside the same search made
  straight to availability: the bridge's overhead (parse the Parameters, ask availability,
  keep the proposals, write FHIR);
- SIU messages acknowledged per second: the bridge's sender (claim each message in order from
  PostgreSQL, send over MLLP, wait for the ACK, record it) against a bare loop sending the same
  messages over one connection and waiting for each ACK, to the same listener (the hl7
  package's server, answering AA), alternately, the best of two runs each; target: the
  sender reaches at least half of the bare loop.

The services start once they have consumed what earlier benchmarks left on the topics.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "emr-bridge" / "tests"))

from mllp_peer import Peer
from prometheus_client import CollectorRegistry

from clinic.devstack.infra import Ladder
from clinic.devstack.testing import RunningService, wait_caught_up
from clinic.emr_bridge import siu
from clinic.emr_bridge.outbox import DDL as OUTBOX_DDL
from clinic.emr_bridge.sender import Policy, Sender, SenderMetrics
from clinic.emr_bridge.store import DDL
from clinic.platform.database import Database

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def find_figures(infra: Any, samples: int) -> tuple[list[float], list[float], int]:
    env = infra.environment()
    schema = f"brbench_{uuid.uuid4().hex[:6]}"
    booking = RunningService(
        "clinic.booking",
        {**env, "BOOKING_DATABASE_SCHEMA": f"{schema}_bk", "BOOKING_LOAD_DEMO_DATA": "true"},
        "BOOKING_",
    ).start(120)
    availability = RunningService(
        "clinic.availability",
        {
            **env,
            "AVAILABILITY_DATABASE_SCHEMA": f"{schema}_av",
            "AVAILABILITY_CONSUMER_GROUP": f"availability-{schema}",
            "AVAILABILITY_CONSUMER_LAG_INTERVAL_SECONDS": "1",
            "BOOKING_URL": booking.url,
        },
        "AVAILABILITY_",
    ).start(120)
    bridge = RunningService(
        "clinic.emr_bridge",
        {
            **env,
            "EMR_BRIDGE_DATABASE_SCHEMA": f"{schema}_br",
            "EMR_BRIDGE_CONSUMER_GROUP": f"bridge-{schema}",
            "EMR_BRIDGE_MLLP_PORT": "0",
            "EMR_BRIDGE_AUTH_REQUIRED": "false",
            "EMR_BRIDGE_CONSUMER_LAG_INTERVAL_SECONDS": "1",
            "BOOKING_URL": booking.url,
            "AVAILABILITY_URL": availability.url,
        },
        "EMR_BRIDGE_",
    ).start(120)
    try:
        for consumer in (availability, bridge):  # what earlier benchmarks left on the topics
            wait_caught_up(consumer.url)
        demo = httpx.get(f"{booking.url}/demo", timeout=30).json()
        org = demo["organization_id"]
        location = next(iter(demo["locations"].values()))
        kind = next(iter(demo["appointment_types"].values()))
        f = httpx.Client(base_url=f"{bridge.url}/fhir/{org}", timeout=30)
        a = httpx.Client(base_url=availability.url, timeout=30)
        deadline = time.monotonic() + 120
        while (
            f.get(f"/Location/{location}").status_code != 200
            or f.get(f"/HealthcareService/{kind}").status_code != 200
        ):
            assert time.monotonic() < deadline, "the bridge never got the demo's reference data"
            time.sleep(0.5)
        day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).date()
        find = {
            "start": f"{day}T00:00:00Z",
            "end": f"{day}T23:59:59Z",
            "appointmentType": kind,
            "location": location,
            "_count": "10",
        }
        direct = {
            "appointment_type_id": kind,
            "location_id": location,
            "from": str(day),
            "to": str(day),
            "limit": "10",
            "booked_by": "clinic",
        }
        ours: list[float] = []
        theirs: list[float] = []
        found = 0
        for n in range(samples + 20):  # the first 20 warm both up
            started = time.perf_counter()
            response = f.get("/Appointment/$find", params=find)
            took = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.text
            found = response.json()["total"]
            started = time.perf_counter()
            straight = a.get(f"/organizations/{org}/slots", params=direct)
            took_direct = (time.perf_counter() - started) * 1000
            assert straight.status_code == 200, straight.text
            if n >= 20:
                ours.append(took)
                theirs.append(took_direct)
        return ours, theirs, found
    finally:
        bridge.stop()
        availability.stop()
        booking.stop()


MESSAGE = siu.Visit(
    "00000000-0000-0000-0000-000000000001",
    "booked",
    dt.datetime(2027, 3, 22, 9, tzinfo=dt.UTC),
    dt.datetime(2027, 3, 22, 9, 30, tzinfo=dt.UTC),
    "t-1",
    "Check-up",
    "l-1",
    "Mitte",
    "Europe/Berlin",
    siu.Person("p-1", "Ana", "Ruiz", dt.date(1980, 2, 29), "female", (("urn:oid:1.2.3", "MRN-1"),)),
    (siu.Resource("d-1", "provider", "Dr. Adler", "physician"),),
)
ENDPOINT = siu.Endpoint("CLINIC", "EPIC", "MAIN")


async def sender_rate(infra: Any, port: int, count: int) -> float:
    database = Database(infra.database_url, f"brbench_{uuid.uuid4().hex[:8]}", "bridge-bench", 4)
    await database.migrate([*DDL, *OUTBOX_DDL])
    await database.pool.open(wait=True)
    try:
        endpoint, org = uuid.uuid4(), uuid.uuid4()
        now = dt.datetime.now(dt.UTC)
        async with database.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO emr_endpoints VALUES (%s, %s, 'bench', '127.0.0.1', %s, 'CLINIC',"
                " 'EPIC', 'MAIN', '{}', true, %s)",
                [endpoint, org, port, now],
            )
            for n in range(count):  # ten appointments' streams, interleaved
                control = f"CB{n:012d}"
                body = siu.appointment_message(ENDPOINT, "S12", control, now, MESSAGE)
                await conn.execute(
                    "INSERT INTO hl7_outbox (seq, control_id, endpoint_id, organization_id,"
                    " order_key, trigger, source, body, status, next_attempt_at, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, 'S12', %s, %s, 'pending', %s, %s)",
                    [n, control, endpoint, org, f"a{n % 10}", f"bench/{n}", body, now, now],
                )
        sender = Sender(database, SenderMetrics(CollectorRegistry()), Policy(idle_seconds=1))
        started = time.perf_counter()
        sender.start(0.1)
        while True:
            async with database.pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT count(*) FROM hl7_outbox WHERE status = 'acked'"
                )
                row = await cursor.fetchone()
            if row and row[0] >= count:
                break
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await sender.stop()
        return count / elapsed
    finally:
        await database.close()


async def bare_rate(port: int, count: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    now = dt.datetime.now(dt.UTC)
    bodies = [
        siu.appointment_message(ENDPOINT, "S12", f"BB{n:012d}", now, MESSAGE).encode()
        for n in range(count)
    ]
    started = time.perf_counter()
    for body in bodies:
        writer.write(b"\x0b" + body + b"\x1c\r")
        await writer.drain()
        await reader.readuntil(b"\x1c\r")
    elapsed = time.perf_counter() - started
    writer.close()
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--siu-messages", type=int, default=2000)
    args, _ = parser.parse_known_args()
    infra = Ladder(ROOT / ".local" / "bench" / "infra").up()
    print(f"\nMeasured on {infra.describe()}")
    with Peer() as peer:  # alternately, the best of two runs of each
        bare = sent = 0.0
        for _ in range(2):
            bare = max(bare, asyncio.run(bare_rate(peer.port, args.siu_messages)))
            sent = max(sent, asyncio.run(sender_rate(infra, peer.port, args.siu_messages)))
    ours, theirs, found = find_figures(infra, args.samples)
    print(
        f"\nEMR bridge benchmark: {args.samples} searches on the demo data "
        f"({found} proposals each), {args.siu_messages} SIU messages\n"
    )
    print(f"{'Appointment/$find vs availability':<48} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"  {'bridge $find (HTTP, FHIR)':<46} {pct(ours, 0.5):>8.2f} {pct(ours, 0.99):>8.2f}")
    print(
        f"  {'availability slots (HTTP, JSON)':<46} {pct(theirs, 0.5):>8.2f} "
        f"{pct(theirs, 0.99):>8.2f}"
    )
    print(
        f"  {'bridge overhead (p50)':<46} {pct(ours, 0.5) - pct(theirs, 0.5):>8.2f}   "
        f"(mean {statistics.mean(ours):.2f} vs {statistics.mean(theirs):.2f})"
    )
    print(
        f"\n{'SIU messages acknowledged per second':<48} {'ours':>8} {'bare':>8}  "
        "ratio (target >= 0.5)"
    )
    print(
        f"  {'sender vs bare send-and-wait loop':<46} {sent:>8.0f} {bare:>8.0f}  {sent / bare:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
