"""Gateway: what the public /v1 API costs over calling the services straight, and the HTTP
serving stack it runs on, chosen by measurement (issue 18).

Run with ``make bench``. Prints, side by side in one run:
- A. with 50 concurrent clients, slot search (``GET /v1/slots`` with a bearer token beside
  availability's ``GET /organizations/{org}/slots`` with the same query) and booking
  (``POST /v1/appointments`` beside booking's ``POST /organizations/{org}/appointments`` with
  the actor headers the gateway sends), every booking for a different free time with its own
  Idempotency-Key; beside both, the same direct calls through a bare forwarder
  (bench/bare_forwarder.py: passes each request on and writes one durable row per command,
  nothing else: the floor under what any gateway that audits every change adds here). Each
  at three paces: flat out (every client sends again as soon as it is answered: the most
  each side serves, for the throughput target, at least 60% of direct), steady (every
  client pauses before each request, so that every side is offered a third of what the
  service alone served flat out: the time the gateway adds to a request, for the latency
  target, under 2 ms at p50) and light (a tenth: the shared CPUs mostly idle). Flat out,
  every client waits in the queue of the slower side, so there the difference of the p50s
  only restates the throughput (Little's law). Each comparison runs in ``--a-rounds``
  alternating rounds (each side first in turn); the medians are reported, with every
  round's rate and p50 (single runs on 2 shared CPUs differ by more than the targets'
  margins). For each: p50, p99, throughput, the answers by status (a 409 is a decided
  request, counted apart), and the CPU each process (PostgreSQL's backends and Kafka too)
  spent per request: where the 2 shared CPUs went;
- B. the same gateway app (``clinic.gateway.main:create_app``, from the same environment)
  served by uvicorn with uvloop and httptools, as ``clinic.platform.service.serve`` runs it,
  and by granian (ASGI interface, uvloop), on slot search through the gateway and on
  ``/healthz``, at the same concurrency, in alternating rounds; and the rendering of a page
  of 50 slots by fastapi's default JSONResponse, ORJSONResponse, the gateway's own
  ``json_answer`` and pydantic's response-model path, with the parse of availability's
  answer by json and orjson.

The platform runs as ``make up`` starts it: a local identity provider, booking, availability
and the gateway, one process each on 127.0.0.1, on PostgreSQL and Kafka from the
infrastructure ladder (state under .local/bench). The clients are wrk's connections where wrk
is installed (a load generator in C; scripts/run-bench.sh installs it where it can), else a
Python client; both sides of a comparison always use the same client. The gateway's rate
limits are raised for the run (their counting still runs): one token's 50 connections would
otherwise meet the 1,200-a-minute client limit within seconds. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import psycopg

from clinic.devstack.components import Infrastructure, free_port, stop_pid, tail
from clinic.devstack.infra import Ladder
from clinic.devstack.issuer import mint
from clinic.devstack.testing import STAFF, RunningService, command, open_clinic, wait_caught_up

ROOT = Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "gateway_http.lua"
AUDIENCE = "clinic-gateway"
PROVIDERS = 60  # each works every day: 60 x 32 half-hours a day to book from
MOST_BOOKINGS_PER_SECOND = 1000
"""What one run is given days for: each booking run books days of its own, from a month ahead,
as many as this rate would fill (60 doctors x 32 half-hours a day), so that every run's
days stay within the appointment type's 365-day horizon."""
ACTOR = {"X-Actor-Id": "desk-bench", "X-Actor-Role": "front_desk", "X-Actor-Channel": "api"}
NO_LIMITS = "1000000/minute"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclasses.dataclass(frozen=True)
class Figures:
    """One measured run: requests answered, wall seconds, latency percentiles (ms), the
    answers by status, connections that failed (no answer at all), and the first body of each
    status that is not a 2xx."""

    requests: int
    seconds: float
    p50: float
    p99: float
    statuses: dict[int, int]
    socket_errors: int
    samples: dict[int, str]
    cpu: dict[str, float] = dataclasses.field(default_factory=dict)
    """Process name -> its CPU milliseconds per request during the run."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def answers(self) -> str:
        counted = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        failed = f", no answer: {self.socket_errors}" if self.socket_errors else ""
        return counted + failed


@dataclasses.dataclass(frozen=True)
class Bookings:
    """What a booking run books: request n is (provider, half-hour from 06:00, day) as in
    gateway_http.lua, so no two requests of a run ask for the same time."""

    type_id: str
    location: str
    patient: str
    providers: tuple[str, ...]
    base: dt.date  # today (UTC); days count from it

    def body(self, n: int, first_day: int) -> dict[str, Any]:
        count = len(self.providers)
        slot = (n // count) % 32
        day = self.base + dt.timedelta(days=first_day + n // (count * 32))
        minutes = 6 * 60 + 30 * slot
        return {
            "appointment_type_id": self.type_id,
            "location_id": self.location,
            "patient_id": self.patient,
            "local_start": f"{day.isoformat()}T{minutes // 60:02d}:{minutes % 60:02d}:00",
            "preferred_resources": {"physician": self.providers[n % count]},
        }


@dataclasses.dataclass(frozen=True)
class Load:
    """One side of a comparison: where the clients go and with which headers; ``book`` makes
    every request a booking (POST) of its own time."""

    url: str
    headers: dict[str, str]
    book: Bookings | None = None
    pause_ms: int = 0
    """What each client waits before each request: 0 sends as fast as answers come back (the
    most the system serves); a pause offers a steady load below that."""


class Client:
    """The load generator both sides of every comparison share: wrk when installed, else a
    Python asyncio client."""

    def __init__(self, clients: int, force_python: bool) -> None:
        self.clients = clients
        self.wrk = None if force_python else shutil.which("wrk")
        self.next_day = 30  # booking runs start a month ahead

    def describe(self) -> str:
        if self.wrk is not None:
            threads = min(self.clients, os.cpu_count() or 2)
            return f"wrk ({threads} threads, {self.clients} connections, gateway_http.lua)"
        return f"a Python client (asyncio + httpx, {self.clients} connections; wrk not installed or not asked for)"

    def run(self, load: Load, seconds: float) -> Figures:
        first_day = 0
        if load.book is not None:
            first_day = self.next_day
            self.next_day += math.ceil(MOST_BOOKINGS_PER_SECOND * seconds / (PROVIDERS * 32))
        if self.wrk is not None:
            return self._wrk(self.wrk, load, seconds, first_day)
        return asyncio.run(self._python(load, seconds, first_day))

    def _wrk(self, wrk: str, load: Load, seconds: float, first_day: int) -> Figures:
        threads = min(self.clients, os.cpu_count() or 2)
        headers = [x for name, value in load.headers.items() for x in ("-H", f"{name}: {value}")]
        if load.book is None:
            mode = ["get", str(load.pause_ms)]
        else:
            book = load.book
            base = int(dt.datetime.combine(book.base, dt.time(), dt.UTC).timestamp())
            mode = [
                "book",
                str(load.pause_ms),
                book.type_id,
                book.location,
                book.patient,
                str(first_day),
                str(threads),
                ",".join(book.providers),
                str(base),
                uuid.uuid4().hex[:12],
            ]
        output = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{self.clients}",
                f"-d{seconds}s",
                "--timeout",
                "30s",
                *headers,
                "-s",
                str(LUA),
                load.url,
                "--",
                *mode,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = next(x for x in output.splitlines() if x.startswith("WRK "))
        figures = json.loads(line.removeprefix("WRK "))
        samples = {
            int(x.split(" ", 2)[1]): x.split(" ", 2)[2] if x.count(" ") >= 2 else ""
            for x in output.splitlines()
            if x.startswith("WRKSAMPLE ")
        }
        return Figures(
            requests=figures["requests"],
            seconds=figures["duration_us"] / 1e6,
            p50=figures["p50_us"] / 1000,
            p99=figures["p99_us"] / 1000,
            statuses={int(k): v for k, v in figures["statuses"].items()},
            socket_errors=figures["socket_errors"],
            samples=samples,
        )

    async def _python(self, load: Load, seconds: float, first_day: int) -> Figures:
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        samples: dict[int, str] = {}
        failed = 0
        numbers = itertools.count()
        tag = uuid.uuid4().hex[:12]
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        async with httpx.AsyncClient(headers=load.headers, limits=limits, timeout=30) as http:
            deadline = time.perf_counter() + seconds

            async def one_client() -> None:
                nonlocal failed
                while time.perf_counter() < deadline:
                    await asyncio.sleep(load.pause_ms * random.uniform(0.5, 1.5) / 1000)
                    started = time.perf_counter()
                    try:
                        if load.book is None:
                            response = await http.get(load.url)
                        else:
                            n = next(numbers)
                            response = await http.post(
                                load.url,
                                json=load.book.body(n, first_day),
                                headers={"Idempotency-Key": f"py-{tag}-{n}"},
                            )
                    except httpx.HTTPError:
                        failed += 1
                        continue
                    latencies.append(time.perf_counter() - started)
                    statuses[response.status_code] += 1
                    if response.status_code >= 300:
                        samples.setdefault(response.status_code, response.text[:400])

            began = time.perf_counter()
            await asyncio.gather(*(one_client() for _ in range(self.clients)))
            wall = time.perf_counter() - began
        return Figures(
            requests=len(latencies),
            seconds=wall,
            p50=pct(latencies, 0.5) * 1000 if latencies else float("nan"),
            p99=pct(latencies, 0.99) * 1000 if latencies else float("nan"),
            statuses=dict(statuses),
            socket_errors=failed,
            samples=samples,
        )


class Process:
    """A server started as its own process (its own session, stopped by pid with its
    children), ready when ``/readyz`` answers 200."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], url: str) -> None:
        self.name, self.url = name, url
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"{name}-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 90.0) -> Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {tail(self.log.name, 30)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}{path}", timeout=3).status_code == 200:
                    return self
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready in {timeout}s: {tail(self.log.name, 30)}")

    def stop(self) -> None:
        stop_pid(self.process.pid)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of a process and its live children (granian's workers,
    PostgreSQL's backends)."""
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = p.cpu_times()
            total += times.user + times.system
    return total


RUNS = itertools.count(1)


@contextlib.contextmanager
def profiled(folder: Path | None, watch: dict[str, int], seconds: float) -> Iterator[None]:
    """With a folder: py-spy records each watched process while the run lasts."""
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    run = next(RUNS)
    spy = ["py-spy", "record", "--duration", str(max(1, int(seconds) - 1)), "--rate", "250"]
    spy += ["--format", "raw", "--nonblocking", "--gil"]  # what holds the GIL: Python's CPU
    spies = [
        subprocess.Popen(
            [*spy, "--pid", str(pid), "--output", str(folder / f"run{run}-{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in watch.items()
        if name not in ("postgres", "kafka")
    ]
    try:
        yield
    finally:
        for running in spies:
            running.wait(timeout=60)


def loaded_libraries(pid: int) -> str:
    """Which of uvloop and httptools the process (and its workers) have loaded."""
    found = set()
    with contextlib.suppress(psutil.Error):
        for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            with contextlib.suppress(OSError):
                maps = Path(f"/proc/{proc.pid}/maps").read_text()
                found |= {lib for lib in ("uvloop", "httptools") if f"/{lib}/" in maps}
    return " and ".join(sorted(found)) or "neither uvloop nor httptools"


# -- the platform ------------------------------------------------------------------------------


@dataclasses.dataclass
class Platform:
    booking: RunningService
    availability: RunningService
    gateway: RunningService
    issuer: Process
    keys: Path
    gateway_env: dict[str, str]
    schemas: list[str]
    started: list[Callable[[], None]]

    def token(self, claims: dict[str, Any]) -> str:
        return mint(self.keys, self.issuer.url, AUDIENCE, claims, 3600)


@contextlib.contextmanager
def platform(infra: Infrastructure, tag: str) -> Iterator[Platform]:
    stops: list[Callable[[], None]] = []
    keys = Path(tempfile.mkdtemp(prefix="issuer-keys-"))
    schemas = [f"{tag}_bk", f"{tag}_av", f"{tag}_gw"]
    try:
        port = free_port()
        issuer = Process(
            "issuer",
            [sys.executable, "-m", "clinic.devstack.issuer", "--state-dir", str(keys),
             "--port", str(port), "--audience", AUDIENCE],
            {},
            f"http://127.0.0.1:{port}",
        )  # fmt: skip
        stops.append(issuer.stop)
        issuer.wait_ready("/.well-known/jwks.json", 30)
        common = {**infra.environment(), "LOG_LEVEL": "WARNING"}
        booking = RunningService(
            "clinic.booking",
            {**common, "BOOKING_DATABASE_SCHEMA": schemas[0], "BOOKING_LOAD_DEMO_DATA": "false"},
            "BOOKING_",
        )
        stops.append(booking.stop)
        booking.start(120)
        availability = RunningService(
            "clinic.availability",
            {
                **common,
                "AVAILABILITY_DATABASE_SCHEMA": schemas[1],
                "AVAILABILITY_BOOKING_URL": booking.url,
                "AVAILABILITY_CONSUMER_GROUP": f"availability-{tag}",
            },
            "AVAILABILITY_",
        )
        stops.append(availability.stop)
        availability.start(120)
        gateway_env = {
            **common,
            "GATEWAY_DATABASE_SCHEMA": schemas[2],
            "GATEWAY_BOOKING_URL": booking.url,
            "GATEWAY_AVAILABILITY_URL": availability.url,
            # Notification is not on the measured paths; nothing listens here.
            "GATEWAY_NOTIFICATION_URL": f"http://127.0.0.1:{free_port()}",
            "GATEWAY_JWT_ISSUER": issuer.url,
            "GATEWAY_JWT_AUDIENCE": AUDIENCE,
            "GATEWAY_JWKS_URL": f"{issuer.url}/.well-known/jwks.json",
            "GATEWAY_RATE_LIMIT_CLIENT": NO_LIMITS,
            "GATEWAY_RATE_LIMIT_ORGANIZATION": NO_LIMITS,
        }
        gateway = RunningService("clinic.gateway", gateway_env, "GATEWAY_")
        stops.append(gateway.stop)
        gateway.start(120)
        yield Platform(booking, availability, gateway, issuer, keys, gateway_env, schemas, stops)
    finally:
        for stop in reversed(stops):
            stop()
        shutil.rmtree(keys, ignore_errors=True)
        with psycopg.connect(infra.database_url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclasses.dataclass(frozen=True)
class Clinic:
    org: str
    location: str
    type_id: str
    patient: str
    providers: tuple[str, ...]


def open_bench_clinic(booking_url: str) -> Clinic:
    """An organisation with one Berlin location, PROVIDERS doctors working there every hour of
    every day, a 30-minute check-up with a doctor, and a patient (through booking's API)."""
    with httpx.Client(base_url=booking_url, headers=STAFF, timeout=30) as b:
        ids = open_clinic(b, "Gateway Bench")
        providers = [ids.doctor]
        hours = [
            {"location_id": ids.location, "weekday": d, "start": "00:00", "end": "23:59"}
            for d in range(7)
        ]
        for n in range(1, PROVIDERS):
            doctor = command(
                b,
                f"{ids.base}/resources",
                {
                    "category": "provider",
                    "name": f"Dr. {n:02d}",
                    "kind": "physician",
                    "location_ids": [ids.location],
                },
            )["id"]
            command(b, f"{ids.base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours}, "PUT")  # fmt: skip
            providers.append(doctor)
        patient = command(
            b,
            f"{ids.base}/patients",
            {"given_name": "Bench", "family_name": "Mark", "birth_date": "1980-01-01"},
        )["id"]
    return Clinic(ids.org, ids.location, ids.kind, patient, tuple(providers))


def relay_lag(booking_url: str) -> float:
    for line in httpx.get(f"{booking_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("relay_lag_events "):
            return float(line.split()[-1])
    return 0.0


def projected(availability_url: str) -> float:
    return sum(
        float(line.split()[-1])
        for line in httpx.get(f"{availability_url}/metrics", timeout=10).text.splitlines()
        if line.startswith("projection_events_total{")
    )


def settle(p: Platform) -> None:
    """Between runs: booking has published what it recorded and availability has applied it
    (its count of projected events stands still), so no run pays for the one before it."""
    deadline = time.monotonic() + 120
    while relay_lag(p.booking.url) > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    count, since = -1.0, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < 1.5:
        now = projected(p.availability.url)
        if now != count:
            count, since = now, time.monotonic()
        time.sleep(0.25)


def wait_for_search(p: Platform, clinic: Clinic, direct: str, through: str, token: str) -> None:
    """Availability has projected the clinic (every doctor, a full first page of slots) and
    the gateway answers the same search with every doctor named."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        listed = httpx.get(
            f"{p.availability.url}/organizations/{clinic.org}/resources",
            params={"page_size": 200},
            headers=ACTOR,
            timeout=10,
        )
        found = httpx.get(direct, headers=ACTOR, timeout=10)
        if (
            listed.status_code == 200
            and len(listed.json()["resources"]) >= PROVIDERS
            and found.status_code == 200
            and found.json()["count"] > 50
        ):
            break
        time.sleep(0.5)
    else:
        raise TimeoutError("availability did not project the bench clinic within 180 s")
    answer = httpx.get(through, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if answer.status_code != 200 or len(answer.json()["slots"]) != 50:
        raise RuntimeError(f"search through the gateway: {answer.status_code} {answer.text[:500]}")


# -- B: the serving stack ---------------------------------------------------------------------


def start_granian(env: dict[str, str]) -> Process:
    """The gateway app from its factory under granian, one worker, as uvicorn runs it."""
    port = free_port()
    granian = Path(sys.executable).with_name("granian")
    return Process(
        "granian",
        [str(granian), "--interface", "asgi", "--factory", "--loop", "uvloop", "--http", "1",
         "--workers", "1", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
         "--log-level", "warning", "clinic.gateway.main:create_app"],
        env,
        f"http://127.0.0.1:{port}",
    ).wait_ready("/readyz", 120)  # fmt: skip


def start_forwarder(upstream: str, database_url: str, schema: str) -> Process:
    """bench/bare_forwarder.py in front of one service: the floor under what a gateway adds."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    port = free_port()
    return Process(
        "bare-forwarder",
        [sys.executable, "-m", "uvicorn", "--factory", "--app-dir", str(ROOT / "bench"),
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level",
         "warning", "bare_forwarder:create"],
        {"BARE_UPSTREAM": upstream, "BARE_DATABASE_URL": database_url, "BARE_SCHEMA": schema},
        f"http://127.0.0.1:{port}",
    ).wait_ready("/readyz", 60)  # fmt: skip


def bench_rendering(page: dict[str, Any], reply: bytes) -> list[tuple[str, float, str]]:
    """Microseconds per call (the best of five repeats) of turning a page of slots into a
    response, and of reading availability's answer, each with whether its JSON is the same."""
    from fastapi.exceptions import FastAPIDeprecationWarning
    from fastapi.responses import JSONResponse, ORJSONResponse, Response
    from pydantic import TypeAdapter

    from clinic.gateway.api.answers import json_answer
    from clinic.gateway.api.views import SlotsPage

    adapter = TypeAdapter(SlotsPage)

    def orjson_response() -> Response:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FastAPIDeprecationWarning)
            return ORJSONResponse(page)

    def model_path() -> Response:
        # What FastAPI does itself when a route returns data under a response model: check it
        # against the model, then dump it with pydantic's serializer (in Rust).
        body = adapter.dump_json(adapter.validate_python(page), by_alias=True)
        return Response(body, media_type="application/json")

    renderers: list[tuple[str, Callable[[], Response]]] = [
        ("fastapi JSONResponse (json.dumps), the default", lambda: JSONResponse(page)),
        ("ORJSONResponse (orjson; deprecated in fastapi)", orjson_response),
        ("the gateway's json_answer (json.dumps, compact)", lambda: json_answer(page)),
        (
            "json_answer on orjson.dumps",
            lambda: Response(orjson.dumps(page), media_type="application/json"),
        ),
        ("response model: validate + pydantic dump_json", model_path),
    ]
    rows: list[tuple[str, float, str]] = []
    for label, render in renderers:
        same = "same JSON" if json.loads(bytes(render().body)) == page else "other JSON"
        rows.append((label, best_of(render), same))
    parsers: list[tuple[str, Callable[[], Any]]] = [
        ("json.loads (Reply.json, as now)", lambda: json.loads(reply)),
        ("orjson.loads", lambda: orjson.loads(reply)),
    ]
    expected = json.loads(reply)
    for label, parse in parsers:
        rows.append((label, best_of(parse), "same" if parse() == expected else "other"))
    return rows


def best_of(call: Callable[[], Any], number: int = 2000, repeats: int = 5) -> float:
    for _ in range(200):
        call()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - started) / number)
    return best * 1e6


# -- the report --------------------------------------------------------------------------------


def row(label: str, f: Figures) -> str:
    cpu = ", ".join(f"{name} {ms:.2f}" for name, ms in f.cpu.items())
    return f"  {label:<50} {f.rate:>8.0f} {f.p50:>8.2f} {f.p99:>8.2f}   {cpu:<62} {f.answers()}"


def combined(runs: list[Figures]) -> Figures:
    """Rounds of one side as one: the median round's rate (as requests over seconds), p50,
    p99 and CPU per request; the answers of all."""
    middle = sorted(runs, key=lambda f: f.rate)[len(runs) // 2]
    statuses: Counter[int] = Counter()
    samples: dict[int, str] = {}
    for f in runs:
        statuses.update(f.statuses)
        for status, text in f.samples.items():
            samples.setdefault(status, text)
    return Figures(
        requests=middle.requests,
        seconds=middle.seconds,
        p50=statistics.median(f.p50 for f in runs),
        p99=statistics.median(f.p99 for f in runs),
        statuses=dict(statuses),
        socket_errors=sum(f.socket_errors for f in runs),
        samples=samples,
        cpu={name: statistics.median(f.cpu[name] for f in runs) for name in middle.cpu},
    )


def spread(runs: list[Figures]) -> str:
    if len(runs) < 2:
        return ""
    rates = "/".join(f"{f.rate:.0f}" for f in runs)
    p50s = "/".join(f"{f.p50:.1f}" for f in runs)
    return f"   (rounds: {rates} req/s, p50 {p50s} ms)"


def verdict(measured: dict[str, list[Figures]]) -> str:
    """Throughput flat out; the time added at a steady pace, and at a light one (flat out,
    every client waits in the queue the slower side makes: there the p50 only restates the
    throughput, by Little's law). Each beside what the bare forwarder keeps and adds."""
    (direct, through, bare), steady, light = (measured[k] for k in ("flat out", "steady", "light"))
    share = through.rate / direct.rate
    added = steady[1].p50 - steady[0].p50
    return (
        f"  verdict: the gateway keeps {share:.0%} of direct throughput (target >= 60%: "
        f"{'met' if share >= 0.6 else 'missed'}) and adds {added:+.2f} ms at p50 at a steady "
        f"{steady[1].rate:.0f} req/s (target < 2 ms: {'met' if added < 2 else 'missed'}), "
        f"{light[1].p50 - light[0].p50:+.2f} ms at a light {light[1].rate:.0f} req/s;\n"
        f"    the bare forwarder keeps {bare.rate / direct.rate:.0%} and adds "
        f"{steady[2].p50 - steady[0].p50:+.2f} ms steady, {light[2].p50 - light[0].p50:+.2f} ms light"
    )


def odd_answers(label: str, f: Figures, expected: set[int]) -> list[str]:
    found = []
    for status, n in sorted(f.statuses.items()):
        if status not in expected:
            sample = f.samples.get(status, "")
            found.append(f"{label}: {n} x {status}: {sample[:300]}")
    if f.socket_errors:
        found.append(f"{label}: {f.socket_errors} requests without an answer (socket errors)")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=8, help="each measured run")
    parser.add_argument("--warm-seconds", type=int, default=2, help="each unmeasured warm-up")
    parser.add_argument(
        "--a-rounds",
        type=int,
        default=3,
        help="alternating rounds of each comparison of A (medians reported, each round shown)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of B")
    parser.add_argument("--python-client", action="store_true", help="never use wrk")
    parser.add_argument("--parts", default="AB", help="which parts to run: A, B or AB")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record every watched process with py-spy (on PATH) during each measured run of "
        "A, as collapsed stacks in this folder",
    )
    args, _ = parser.parse_known_args()
    client = Client(args.clients, args.python_client)

    infra = Ladder(ROOT / ".local" / "bench" / "infra").up()
    print(f"\nMeasured on {infra.describe()}")
    odd: list[str] = []
    tag = f"gwbench_{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    with platform(infra, tag) as p:
        clinic = open_bench_clinic(p.booking.url)
        token = p.token(
            {"sub": "desk-bench", "org": clinic.org, "role": "front_desk",
             "locations": [clinic.location]}
        )  # fmt: skip
        bearer = {"Authorization": f"Bearer {token}"}
        first = dt.date.today() + dt.timedelta(days=1)
        query = (
            f"appointment_type_id={clinic.type_id}&location_id={clinic.location}"
            f"&from={first.isoformat()}&to={(first + dt.timedelta(days=6)).isoformat()}"
        )
        # The gateway asks availability for one slot more than a page (is there a next page?).
        direct_search = f"{p.availability.url}/organizations/{clinic.org}/slots?{query}&limit=51"
        gateway_search = f"{p.gateway.url}/v1/slots?{query}"
        # A consumer group new to the broker first reads what earlier benchmarks left there.
        wait_caught_up(p.availability.url, within=300)
        wait_for_search(p, clinic, direct_search, gateway_search, token)
        settle(p)
        bookings = Bookings(
            clinic.type_id,
            clinic.location,
            clinic.patient,
            clinic.providers,
            dt.datetime.now(dt.UTC).date(),
        )
        print(
            f"\nGateway benchmark: {PROVIDERS} doctors at one location, a front-desk token; "
            f"each service one process (uvicorn, as make up starts them); {os.cpu_count()} "
            f"CPUs shared by the services, PostgreSQL, Kafka and the client: "
            f"{client.describe()}; {args.seconds} s per run after a {args.warm_seconds} s "
            "warm-up.\n"
        )

        def measure(load: Load, watch: dict[str, int], by: Client = client) -> Figures:
            """A warm-up, then the measured run, with the CPU each watched process spent on
            it (per request)."""
            by.run(load, args.warm_seconds)
            if load.book is not None:
                settle(p)
            before = {name: cpu_seconds(pid) for name, pid in watch.items()}
            with profiled(args.profile, watch, args.seconds):
                figures = by.run(load, args.seconds)
            spent = {
                name: (cpu_seconds(pid) - before[name]) * 1000 / max(1, figures.requests)
                for name, pid in watch.items()
            }
            if load.book is not None:
                settle(p)
            return dataclasses.replace(figures, cpu=spent)

        forwarders = {}
        for name, service in (("availability", p.availability), ("booking", p.booking)):
            schema = f"{tag}_fw_{name[:2]}"
            p.schemas.append(schema)
            forwarders[name] = start_forwarder(service.url, infra.database_url, schema)
            p.started.append(forwarders[name].stop)
        pids = {
            name: service.process.pid
            for name, service in (
                ("gateway", p.gateway),
                ("availability", p.availability),
                ("booking", p.booking),
            )
            if service.process is not None
        }
        # PostgreSQL (all its backends) and Kafka work for both sides: their CPU per request
        # says where the rest of the 2 CPUs went.
        shared = {
            name: component.pid
            for name, component in (("postgres", infra.postgres), ("kafka", infra.kafka))
            if component.pid is not None and psutil.pid_exists(component.pid)
        }
        on_search = {"availability": pids["availability"], **shared}
        on_book = {"booking": pids["booking"], **shared}

        # -- A ---------------------------------------------------------------------------------
        print(
            f"A. through the gateway vs straight to the services, and through a bare forwarder "
            f"(bench/bare_forwarder.py), {args.clients} clients"
        )
        print(
            "  flat out: each client sends its next request as soon as it has an answer (the "
            "most each side serves: the throughput target);\n  steady: each client pauses "
            "before each request so that every side is offered a third of what the service "
            "alone served flat out (the latency target, the time the gateway adds to a "
            "request);\n  light: a tenth (the shared CPUs mostly idle: what a request costs "
            "without their queue);\n  bare forwarder: passes each request on as it came "
            "and writes one durable row per command, nothing else (the floor under any "
            "gateway that audits every change)"
        )
        print(
            f"  {'':<50} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}   {'CPU ms per request':<62} answers"
        )
        book_url = f"{p.booking.url}/organizations/{clinic.org}/appointments"
        book_path = f"/organizations/{clinic.org}/appointments"
        sides = (
            (
                "slot search (7 days, first page of 50)",
                "availability",
                (
                    Load(direct_search, ACTOR),
                    Load(gateway_search, bearer),
                    Load(
                        direct_search.replace(p.availability.url, forwarders["availability"].url),
                        ACTOR,
                    ),
                ),
                on_search,
                ("straight to availability", "through the gateway (/v1/slots)"),
                {200},
            ),
            (
                "book (each request a different free time, its own Idempotency-Key)",
                "booking",
                (
                    Load(book_url, ACTOR, bookings),
                    Load(f"{p.gateway.url}/v1/appointments", bearer, bookings),
                    Load(f"{forwarders['booking'].url}{book_path}", ACTOR, bookings),
                ),
                on_book,
                ("straight to booking", "through the gateway (/v1/appointments)"),
                {201, 409},
            ),
        )
        for title, target, loads, on_service, labels, expected in sides:
            print(f"  {title}")
            names = (labels[0], labels[1], "through a bare forwarder")
            watches = (
                on_service,
                {"gateway": pids["gateway"], **on_service},
                {"forwarder": forwarders[target].process.pid, **on_service},
            )
            measured: dict[str, list[Figures]] = {}
            for pace, share in (("flat out", 0), ("steady", 3), ("light", 10)):
                pause = 0
                if share:
                    pause = round(
                        share * args.clients * 1000 / max(measured["flat out"][0].rate, 1)
                    )
                    print(f"    {pace}: pauses of {pause} ms on average")
                runs: list[list[Figures]] = [[], [], []]
                for n in range(args.a_rounds):
                    # Alternating: each side goes first, second and last in turn.
                    for side in [(n + k) % 3 for k in range(3)]:
                        load = dataclasses.replace(loads[side], pause_ms=pause)
                        runs[side].append(measure(load, watches[side]))
                measured[pace] = [combined(r) for r in runs]
                for name, f, r in zip(names, measured[pace], runs, strict=True):
                    print(row(f"  {pace}, {name}", f) + spread(r))
            print(verdict(measured))
            for pace, figures in measured.items():
                for name, f in zip(("direct", "gateway", "forwarder"), figures, strict=True):
                    label = f"{name}, {pace}"
                    odd += odd_answers(f"{title.split(' (')[0]}, {label}", f, expected)
                    if 201 in expected:
                        other = sum(n for st, n in f.statuses.items() if st not in (201, 409))
                        print(
                            f"    {label}: {f.statuses.get(201, 0)} booked (201), "
                            f"{f.statuses.get(409, 0)} refused as taken (409), "
                            f"{other + f.socket_errors} other"
                        )
                        if 409 in f.samples:
                            odd.append(f"book, {label}: first 409: {f.samples[409][:300]}")

        # -- B ---------------------------------------------------------------------------------
        if "B" not in args.parts.upper():
            print(f"\n(measured in {time.monotonic() - began:.0f} s; part B not asked for)")
            return report_odd(odd)
        print(
            f"\nB. the serving stack: the same gateway app from the same environment, "
            f"{args.clients} clients, {args.rounds} alternating rounds"
        )
        granian = start_granian(p.gateway_env)
        p.started.append(granian.stop)
        servers = {
            "uvicorn (serve)": (p.gateway.url, pids["gateway"]),
            "granian --interface asgi": (granian.url, granian.process.pid),
        }
        assert p.gateway.process is not None
        print(
            f"  uvicorn as clinic.platform.service.serve runs it (loop and http 'auto'): "
            f"{loaded_libraries(p.gateway.process.pid)} loaded in the serving process"
        )
        print(
            "  granian --interface asgi --factory --loop uvloop --http 1 --workers 1: "
            f"{loaded_libraries(granian.process.pid)} loaded in its processes"
        )
        print(
            f"  {'':<50} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}   {'CPU ms per request':<62} answers"
        )
        results: dict[tuple[str, str], list[Figures]] = {}
        routes = {"/v1/slots (through the gateway)": f"/v1/slots?{query}", "/healthz": "/healthz"}
        for route, path in routes.items():
            print(f"  {route}")
            for n in range(args.rounds):
                order = list(servers.items())
                if n % 2:
                    order.reverse()
                for name, (url, pid) in order:
                    through = path.startswith("/v1/")
                    watch = {"gateway": pid, **(on_search if through else {})}
                    f = measure(Load(f"{url}{path}", bearer if through else {}), watch)
                    results.setdefault((route, name), []).append(f)
                    print(row(f"  {name}, round {n + 1}", f))
                    odd += odd_answers(f"B {route} {name}", f, {200})
            u = results[(route, "uvicorn (serve)")]
            g = results[(route, "granian --interface asgi")]
            u_rate = sum(f.requests for f in u) / sum(f.seconds for f in u)
            g_rate = sum(f.requests for f in g) / sum(f.seconds for f in g)
            u_p50 = statistics.median(f.p50 for f in u)
            g_p50 = statistics.median(f.p50 for f in g)
            u_p99 = statistics.median(f.p99 for f in u)
            g_p99 = statistics.median(f.p99 for f in g)
            faster = "granian" if g_rate > u_rate else "uvicorn"
            print(
                f"  verdict {route}: {faster} serves more: granian {g_rate:.0f} req/s vs "
                f"uvicorn {u_rate:.0f} ({g_rate / u_rate - 1:+.0%}); p50 {g_p50:.2f} vs "
                f"{u_p50:.2f} ms, p99 {g_p99:.2f} vs {u_p99:.2f} ms"
            )

        # The rendering micro-benchmark, on the gateway's own answer to the search above.
        page = httpx.get(gateway_search, headers=bearer, timeout=10).json()
        reply = httpx.get(direct_search, headers=ACTOR, timeout=10).content
    print(
        f"\n  JSON: a page of {len(page['slots'])} slots ({len(json.dumps(page, separators=(',', ':')))} bytes), "
        f"availability's answer {len(reply)} bytes; microseconds per call, in-process"
    )
    rows = bench_rendering(page, reply)
    for label, micros, same in rows:
        print(f"    {label:<52} {micros:>8.1f} us   {same}")
    render = {label: micros for label, micros, _ in rows}
    default = render["fastapi JSONResponse (json.dumps), the default"]
    fast = render["ORJSONResponse (orjson; deprecated in fastapi)"]
    now = render["the gateway's json_answer (json.dumps, compact)"]
    on_orjson = render["json_answer on orjson.dumps"]
    parse_now, parse_fast = render["json.loads (Reply.json, as now)"], render["orjson.loads"]
    print(
        f"  verdict JSON: orjson renders the page {default / fast:.1f}x faster than the default "
        f"JSONResponse; the gateway's json_answer on orjson would save {now - on_orjson:.0f} us "
        f"and orjson.loads {parse_now - parse_fast:.0f} us per search "
        f"({(now - on_orjson + parse_now - parse_fast) / 1000:.2f} ms of the gateway's p50)"
    )
    print(f"\n(measured in {time.monotonic() - began:.0f} s)")
    return report_odd(odd)


def report_odd(odd: list[str]) -> int:
    if odd:
        print("\nAnswers that were not the expected ones:")
        for line in odd:
            print(f"  {line}")
    print(
        "\nTargets: the gateway adds under 2 ms at p50 and keeps at least 60% of direct "
        "throughput, for search and for book (issue 18)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
