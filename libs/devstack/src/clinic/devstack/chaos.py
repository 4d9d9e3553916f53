"""`make chaos`: the platform as `make up` starts it (its own PostgreSQL and Kafka, demo data,
two booking replicas) under a seeded load through the gateway and the FHIR API at once, while
every component is killed with SIGKILL at seeded moments and started again; then, once the
projections settle, what every client was told is checked against booking (the source of
truth) and against every service that projects it.

    python -m clinic.devstack.chaos --seed 7 --seconds 210 --desks 5 --emrs 2

Front desks (the gateway's /v1) and EMRs (the bridge's FHIR `$find`/`$book`/`$cancel`) race
for the same few popular times, and book (outright, or a hold then confirmed), move and
cancel; desks also book walk-ins minutes ahead, check them in, and mark them no-shows once
their time has begun (`clinic.devstack.chaos_load`; the run first adds walk-in clinicians
working around the clock and a walk-in type through /v1, as a clinic admin would). The
gateway calls the first booking replica and the bridge the second: both decide on one event
store, and one of them leads the outbox relay. The faults, in a seeded order that reaches
each before any repeats: either booking replica, both at once, the replica leading the
relay, availability, notification, the EMR bridge, the gateway, the Kafka broker and
PostgreSQL (the last two only on a platform of its own). Then (`clinic.devstack.chaos_checks`):

- every creation that got a 2xx is held by booking once, as the last accepted change left it;
  no live appointment exists that no client was told of (a request done twice);
- no two live appointments own the same minutes of a resource;
- availability's calendars show each live appointment once, as booking holds it, and equal a
  fresh rebuild of the projection from booking's event store (calendars and free times);
- the bridge's FHIR Appointment of each is as booking holds it;
- each patient was sent the news of the last accepted booking, move or cancellation (an
  earlier message may rightly be superseded unsent), no step's message was made twice, and
  the mail server received each email once (one received again within seconds of a kill of
  notification, same Message-ID, is counted apart as a resend: the mail server's acceptance
  and notification's record of it cannot be one transaction); the EMR's MLLP listener
  received each step's SIU message (S12, S13, S14, S15, S26) under one control id;
- a request that failed got a 4xx or 5xx, never a 2xx for something that did not happen;
- every decided desk request, sent once more with its Idempotency-Key, gets its first answer
  (same status and appointment, marked ``Idempotency-Replayed: true``).

It prints what was attempted and accepted, each fault and how long the platform took to be
ready again, and what was lost, wrong or doubled; it exits 1 when anything was.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from clinic.devstack import chaos_checks as checks
from clinic.devstack.chaos_checks import Findings, Held
from clinic.devstack.chaos_load import (
    LOCATION,
    TYPE,
    Call,
    Desk,
    Emr,
    Run,
    WaitingOutRateLimits,
    drive_desk,
    drive_emr,
    instant,
    loaded_days,
    open_walk_ins,
)
from clinic.devstack.components import InfrastructureError, free_port, pid_alive
from clinic.devstack.issuer import mint
from clinic.devstack.mllp_peer import Peer, Received
from clinic.devstack.stack import (
    ADMIN_TOKEN,
    DEMO_EMR_CLIENT,
    JWT_AUDIENCE,
    OPERATIONS_TOKEN,
    SERVICES,
    Stack,
    StackError,
    bearer,
    demo_emr_client,
)
from clinic.devstack.testing import NO_QUIET_HOURS, caught_up

REPO_ROOT = Path(__file__).resolve().parents[5]
BOOKING_REPLICAS = 2
SERVICE_FAULTS = (
    "booking",
    "booking-2",
    "every booking replica",
    "relay",
    "availability",
    "notification",
    "emr-bridge",
    "gateway",
)
INFRASTRUCTURE_FAULTS = ("kafka", "postgres")
CONSUMERS = ("availability", "notification", "emr-bridge")
IMMEDIATE = ("confirmation", "rescheduled", "cancelled")
"""The messages a step sends at once (reminders wait for their time)."""
QUICK_RECOVERY = {
    "NOTIFICATION_DISPATCH_LEASE_SECONDS": "5",
    "NOTIFICATION_DISPATCH_BACKOFF_SECONDS": "1",
    "NOTIFICATION_DISPATCH_BACKOFF_CAP_SECONDS": "5",
}
"""Production's defaults leave a message claimed by a killed notification for 5 minutes and
retry a failed send after 30 seconds, doubling: right for a provider, too slow for a run of
a few minutes. The mechanism is the same, only sooner."""


@dataclass
class Fault:
    target: str
    at: float
    recovered_after: float | None = None
    wall: float = field(default_factory=time.time)
    """When it was killed (seconds since the epoch, as the mail server's times; made as
    the kill returns)."""


@dataclass
class Chaos:
    """One run's clients' calls and the faults injected."""

    run: Run = field(default_factory=Run)
    faults: list[Fault] = field(default_factory=list)
    targets: tuple[str, ...] = ()


def environment() -> dict[str, str]:
    """`make up`'s environment on free ports, which a restarted service keeps."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PORT", "_URL"))}
    env.update({f"{s.env_prefix}PORT": str(free_port()) for s in SERVICES})
    env.update(NO_QUIET_HOURS)
    env.update(QUICK_RECOVERY)
    return env


def relay_leader(stack: Stack) -> str | None:
    """The booking replica holding the relay's lock (its ``relay_leader`` gauge is 1)."""
    for name, service in stack._load().items():
        if name.startswith("booking"):
            try:
                text = httpx.get(f"{service.url}/metrics", timeout=5).text
            except httpx.HTTPError:
                continue
            if re.search(r"^relay_leader 1(\.0)?$", text, re.MULTILINE):
                return name
    return None


def kill(stack: Stack, target: str) -> str:
    """SIGKILL ``target``; returns what was killed, in words."""
    if target in INFRASTRUCTURE_FAULTS:
        stack.ladder.kill(target)
        return target
    services = stack._load()
    replicas = [n for n in services if n == "booking" or n.startswith("booking-")]
    if target == "relay":
        leader = relay_leader(stack) or "booking"
        names, said = [leader], f"relay (in {leader})"
    elif target == "every booking replica":
        names, said = replicas, target
    else:
        names, said = [target], target
    for name in names:
        if pid_alive(services[name].pid):
            os.kill(services[name].pid, signal.SIGKILL)
    return said


def inject(
    stack: Stack, rng: random.Random, until: float, every: float, targets: tuple[str, ...],
    chaos: Chaos,
) -> None:  # fmt: skip
    """Kill each target in a seeded order (each once before any twice) at seeded moments,
    and start what was killed again after a seeded pause; note when the whole platform was
    ready again."""
    order: list[str] = []
    while True:
        pause = rng.uniform(every / 2, every * 1.5)
        if time.monotonic() + pause >= until:
            return  # no fault the load would not see
        time.sleep(pause)
        if not order:
            order = rng.sample(targets, len(targets))
        at = time.monotonic()
        fault = Fault(kill(stack, order.pop()), at)
        chaos.faults.append(fault)
        time.sleep(rng.uniform(1, 4))
        try:
            stack.up(timeout=180)
        except StackError as error:
            print(f"  after {fault.target}: not ready again: {error}", file=sys.stderr)
            continue
        fault.recovered_after = time.monotonic() - at


def wait_for(what: str, done: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {within:.0f} s")
        time.sleep(1)


def settle(stack: Stack, org: str, within: float = 240) -> None:
    """Every consumer has consumed what is on the broker, and the bridge has sent every SIU
    message it made."""
    services = stack._load()
    for name in CONSUMERS:
        wait_for(f"{name} caught up", lambda n=name: caught_up(services[n].url), within)
    bridge = services["emr-bridge"].url

    def sent() -> bool:
        answer = httpx.get(
            f"{bridge}/admin/organizations/{org}/hl7-messages",
            params={"status": "pending", "limit": 1},
            headers=bearer(stack.env, stack.state_dir, ADMIN_TOKEN),
            timeout=10,
        )
        return answer.status_code == 200 and not answer.json()["messages"]

    wait_for("the bridge sent its SIU messages", sent, within)


def listen_for_siu(stack: Stack, org: str, peer: Peer) -> None:
    """An EMR's MLLP listener as the demo organisation's HL7 endpoint: every SIU message."""
    body = {
        "host": "127.0.0.1",
        "port": peer.port,
        "receiving_application": "CHAOS",
        "receiving_facility": "CHAOS",
    }
    bridge = stack._load()["emr-bridge"].url
    answer = httpx.put(
        f"{bridge}/admin/organizations/{org}/hl7-endpoints/chaos",
        json=body,
        headers=bearer(stack.env, stack.state_dir, ADMIN_TOKEN),
        timeout=10,
    )
    answer.raise_for_status()


def chaos(
    stack: Stack,
    seed: int,
    seconds: float,
    desks: int,
    emrs: int,
    fault_every: float,
    targets: tuple[str, ...] = SERVICE_FAULTS,
) -> Verdict:
    """Start ``stack`` (or find it running), load it for ``seconds`` while ``targets`` are
    killed every ``fault_every`` seconds or so, let it settle, check, and report."""
    rng = random.Random(seed)
    print(
        f"chaos: seed {seed}, {desks} desks and {emrs} EMRs, {seconds:.0f} s of load, "
        f"faults among {', '.join(targets)}"
    )
    began = time.monotonic()
    _, services = stack.up(timeout=180)
    demo = httpx.get(f"{services['booking'].url}/demo", timeout=30).json()
    org = demo["organization_id"]
    issuer = services["issuer"].url

    def token(n: int) -> str:  # a desk user per client (rate limits count per user)
        claims = {"sub": f"chaos-desk-{n}", "org": org, "role": "org_admin"}
        return mint(stack.state_dir / "issuer", issuer, JWT_AUDIENCE, claims, 3600)

    secret = demo_emr_client(services["emr-bridge"], org, stack.state_dir)
    if secret is None:
        raise RuntimeError("the bridge did not register the demo EMR client")
    staff = httpx.Client(
        base_url=f"{services['gateway'].url}/v1",
        headers={"Authorization": f"Bearer {token(-1)}"},
        timeout=30,
        transport=WaitingOutRateLimits(),
    )
    demo["walk_in"] = open_walk_ins(staff, demo)
    days = loaded_days()
    before = {h.appointment_id for h in shown_by_calendars(staff, demo, days)}
    chaos = Chaos(targets=targets)
    with Peer() as peer:
        listen_for_siu(stack, org, peer)
        until = time.monotonic() + seconds
        bridge = services["emr-bridge"].url
        threads = [
            threading.Thread(
                target=drive_desk,
                args=(Desk(services["gateway"].url, token(n), 120), random.Random(rng.random()),
                      demo, until, chaos.run),
            )
            for n in range(desks)
        ] + [
            threading.Thread(
                target=drive_emr,
                args=(Emr(bridge, org, DEMO_EMR_CLIENT, secret, 120), random.Random(rng.random()),
                      demo, until, chaos.run),
            )
            for _ in range(emrs)
        ]  # fmt: skip
        threads.append(
            threading.Thread(
                target=inject,
                args=(stack, random.Random(rng.random()), until, fault_every, targets, chaos),
            )
        )
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stack.up(timeout=240)
        settle(stack, org)
        received = peer.acked()
    emr = Emr(stack._load()["emr-bridge"].url, org, DEMO_EMR_CLIENT, secret, 60)
    verdict = Verdict(stack, demo, staff, emr, chaos, before, received)
    verdict.findings = verdict.check()
    report(chaos, verdict.findings, time.monotonic() - began)
    return verdict


def held_by_booking(http: httpx.Client, ids: set[str]) -> dict[str, Held]:
    held = {}
    for appointment in sorted(ids):
        answer = http.get(f"/appointments/{appointment}")
        if answer.status_code == 200:
            a = answer.json()
            held[appointment] = Held(
                appointment,
                a["status"],
                instant(a["start"]),
                tuple((p["resource_id"], instant(p["start"]), instant(p["end"]))
                      for p in a["participants"]),
            )  # fmt: skip
    return held


def shown_by_calendars(http: httpx.Client, demo: dict[str, Any], days: list[Any]) -> list[Held]:
    shown = []
    for day in days:
        for column in calendar(http, demo, day)["resources"]:
            if column["resource"]["category"] != "provider":
                continue  # each appointment once: under its provider
            for a in column["appointments"]:
                shown.append(Held(a["id"], a["status"], instant(a["start"])))
    return shown


def calendar(http: httpx.Client, demo: dict[str, Any], day: Any) -> dict[str, Any]:
    location = demo["locations"][LOCATION]
    answer = http.get(f"/locations/{location}/calendar", params={"date": day.isoformat()})
    answer.raise_for_status()
    calendar: dict[str, Any] = answer.json()
    return calendar


def availability_snapshot(
    http: httpx.Client, demo: dict[str, Any], days: list[Any]
) -> dict[str, Any]:
    """Availability's answers for the loaded days: each resource's calendar column and every
    free time (as JSON text, compared whole)."""
    snapshot: dict[str, Any] = {}
    kind, location = demo["appointment_types"][TYPE], demo["locations"][LOCATION]
    for day in days:
        for column in calendar(http, demo, day)["resources"]:
            key = f"calendar {day} {column['resource']['id']}"
            snapshot[key] = json.dumps(column, sort_keys=True)
        params = {"appointment_type_id": kind, "location_id": location, "from": day.isoformat(),
                  "to": day.isoformat(), "page_size": 100}  # fmt: skip
        slots: list[Any] = []
        while True:
            page = http.get("/slots", params=params)
            page.raise_for_status()
            slots += page.json()["slots"]
            following = page.json().get("next_page_token")
            if not following:
                break
            params["page_token"] = following
        snapshot[f"free times {day}"] = json.dumps(slots, sort_keys=True)
    return snapshot


def rebuilt(stack: Stack, staff: httpx.Client, demo: dict[str, Any], days: list[Any]) -> list[str]:
    """What availability answers before and after a rebuild of its projection from booking's
    event store: the keys that differ."""
    before = availability_snapshot(staff, demo, days)
    answer = httpx.post(
        f"{stack._load()['availability'].url}/projection/rebuild",
        params={"source": "booking"},
        headers=bearer(stack.env, stack.state_dir, OPERATIONS_TOKEN),
        timeout=300,
    )
    answer.raise_for_status()
    after = availability_snapshot(staff, demo, days)
    return checks.differences(before, after)


def messages_made(
    staff: httpx.Client, ids: set[str], within: float = 120
) -> dict[str, list[tuple[str, str]]]:
    """Each appointment's patient messages for its steps as (kind, status), once the ones
    due now have left or failed for good (or ``within`` seconds have passed)."""
    deadline = time.monotonic() + within
    made: dict[str, list[tuple[str, str]]] = {}
    owed = sorted(ids)
    while owed:
        waiting = []
        for appointment in owed:
            answer = staff.get(f"/appointments/{appointment}/messages")
            answer.raise_for_status()
            made[appointment] = [
                (m["kind"], m["status"])
                for m in answer.json()["messages"]
                if m["kind"] in IMMEDIATE
            ]
            if any(status in ("pending", "sending") for _, status in made[appointment]):
                waiting.append(appointment)
        if time.monotonic() > deadline:
            break
        owed = waiting
        if owed:
            time.sleep(1)
    return made


def replays(calls: list[Call]) -> tuple[int, list[str]]:
    """Every decided desk request sent once more with its Idempotency-Key: how many, and
    those not given their first answer (replayed)."""
    decided = [c for c in calls if c.replay is not None and 0 < c.status < 500]
    differ = []
    for call in decided:
        assert call.replay is not None
        answer = call.replay()
        body = answer.json() if answer.content else None
        if checks.replay_differs(call, answer.status_code, body,
                                 answer.headers.get("Idempotency-Replayed")):  # fmt: skip
            differ.append(f"{call.kind} {call.appointment}: {call.status}, {answer.status_code}")
    return len(decided), differ


def fhir_appointments(emr: Emr, ids: set[str]) -> dict[str, Held]:
    found = {}
    for appointment in sorted(ids):
        status, body, _ = emr.send("GET", f"/Appointment/{appointment}")
        if status == 200 and body:
            found[appointment] = Held(appointment, body["status"], instant(body["start"]))
    return found


@dataclass
class Verdict:
    """What the checks read once the load and the faults are over (the platform still up)."""

    stack: Stack
    demo: dict[str, Any]
    staff: httpx.Client
    emr: Emr
    chaos: Chaos
    before: set[str]
    """Live appointments on the loaded days before the load (none a client made)."""
    received: list[Received]
    """What the EMR's MLLP listener received."""
    findings: Findings = field(default_factory=Findings)

    def check(self) -> Findings:
        """Every check, against the services as they are now."""
        stack, demo, staff, emr = self.stack, self.demo, self.staff, self.emr
        calls = self.chaos.run.calls
        findings = Findings(requests=len(calls), faults=len(self.chaos.faults))
        doubt = checks.uncertain(calls)
        findings.uncertain = sorted(doubt)
        expected = {k: v for k, v in checks.expectations(calls).items() if k not in doubt}
        findings.accepted = len(expected)
        booking = held_by_booking(staff, set(expected))
        checks.compare_with_booking(expected, booking, findings)
        days = loaded_days()
        shown = shown_by_calendars(staff, demo, days)
        told = {c.appointment for c in calls if c.appointment}
        others = held_by_booking(staff, {h.appointment_id for h in shown} - set(booking))
        findings.unexpected = sorted(
            a for a, h in others.items() if h.status in checks.LIVE and a not in told | self.before
        )
        if findings.unexpected and any(
            c.kind in checks.CREATIONS and not 0 < c.status < 500 for c in calls
        ):
            findings.uncertain += findings.unexpected  # a creation without a decision made them
            findings.unexpected = []
        findings.double_booked = checks.overlaps([*booking.values(), *others.values()])
        checks.compare_projection(
            booking, [h for h in shown if h.appointment_id in booking], findings
        )
        findings.differs_from_rebuild = rebuilt(stack, staff, demo, days)

        fhir = fhir_appointments(emr, set(expected))
        findings.missing_in_fhir = sorted(set(expected) - set(fhir))
        findings.different_in_fhir = sorted(
            a for a, h in fhir.items() if a in booking and (h.status, h.start) != (
                booking[a].status, booking[a].start)
        )  # fmt: skip

        findings.messages_missing, findings.messages_doubled = checks.compare_messages(
            calls, messages_made(staff, set(expected))
        )
        sinks = stack._load()["sinks"].url
        mails = httpx.get(f"{sinks}/mail", timeout=30).json()
        killed = [f.wall for f in self.chaos.faults if f.target == "notification"]
        findings.mail_doubled, findings.mail_resent = checks.mail_doubled(
            [(m["message_id"], m["received_at"]) for m in mails], killed
        )

        triggers: dict[str, Counter[str]] = {}
        for control in {r.control_id: r for r in self.received}.values():  # each message once
            triggers.setdefault(control.filler_id, Counter())[control.trigger] += 1
        wanted = {a: c for a, c in checks.steps(calls, checks.SIU_OF).items() if a in expected}
        findings.siu_missing, findings.siu_doubled = checks.compare_counts(wanted, triggers)
        findings.resent = len(self.received) - len({r.control_id for r in self.received})
        findings.replayed, findings.replays_differ = replays(calls)
        return findings


def report(chaos: Chaos, findings: Findings, seconds: float) -> None:
    calls = chaos.run.calls
    by_kind: dict[str, Counter[str]] = {}
    for call in calls:
        outcome = "2xx" if 200 <= call.status < 300 else str(call.status or "no answer")
        by_kind.setdefault(f"{call.kind} ({call.channel})", Counter())[outcome] += 1
    repeated = sum(1 for c in calls if c.attempts > 1)
    print(f"\nchaos: {len(calls)} requests in {seconds:.0f} s ({repeated} sent again)")
    for kind, counts in sorted(by_kind.items()):
        print(f"  {kind:20} " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    print(f"faults injected: {len(chaos.faults)}")
    for fault in chaos.faults:
        back = f"{fault.recovered_after:.1f} s" if fault.recovered_after else "never"
        print(f"  SIGKILL {fault.target:24} platform ready again after {back}")
    hit = {f.target.split(" (")[0] for f in chaos.faults}
    spared = [t for t in chaos.targets if t not in hit]
    if spared:
        print(f"  not reached in this run (give it more --seconds): {', '.join(spared)}")
    print("checks:")
    print(f"  {'accepted creations checked':48} {findings.accepted:6}")
    print(f"  {'without a decision (not checked)':48} {len(findings.uncertain):6}")
    print(f"  {'SIU messages received again (same control id)':48} {findings.resent:6}")
    print(f"  {'emails sent again as notification was killed':48} {findings.mail_resent:6}")
    print(f"  {'decided requests sent again with their key':48} {findings.replayed:6}")
    for name, meaning in checks.CHECKS.items():
        found = getattr(findings, name)
        print(f"  {meaning:48} {len(found):6}   (target 0)")
    for name in checks.CHECKS:
        found = getattr(findings, name)
        if found:
            print(f"  {name}: {found[:10]}")
    print("chaos: FAILED" if findings.failed else "chaos: nothing lost, doubled or double-booked")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=210)
    parser.add_argument("--desks", type=int, default=5)
    parser.add_argument("--emrs", type=int, default=2)
    parser.add_argument("--fault-every", type=float, default=6, help="seconds between faults")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".local" / "chaos")
    args = parser.parse_args(argv)
    stack = Stack(args.state_dir, environment(), booking_replicas=BOOKING_REPLICAS)
    stack.down()  # a platform of its own, from nothing: PostgreSQL and Kafka too
    stack.ladder.down(purge=True)
    shutil.rmtree(args.state_dir, ignore_errors=True)
    try:
        verdict = chaos(
            stack, args.seed, args.seconds, args.desks, args.emrs, args.fault_every,
            SERVICE_FAULTS + INFRASTRUCTURE_FAULTS,
        )  # fmt: skip
        return 1 if verdict.findings.failed else 0
    except (StackError, InfrastructureError, TimeoutError) as error:
        print(f"chaos: FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        stack.down()
        stack.ladder.down(purge=True)


if __name__ == "__main__":
    sys.exit(main())
