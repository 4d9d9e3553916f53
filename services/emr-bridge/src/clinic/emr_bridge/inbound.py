"""HL7 v2 from EMRs over MLLP: scheduling requests (SRM^S01 book, S02/S03 move, S04 cancel)
answered with SRR after booking decided, and patient updates (ADT^A08) where the EMR owns
demographics, answered with an ACK.

Who may send: a peer whose address is in an endpoint's ``allowed_addresses`` and whose
sending facility (MSH-4) is that endpoint's receiving facility; the endpoint names the
organisation. Anyone else gets AR and nothing happens.

Every message acted on is an audit event (the client ``hl7:<endpoint>``, the message type,
the appointment, AA as success, AE or AR as the client's failure, the ERR text). Every
message is answered once: the answer is stored with the message's control id (MSH-10)
per endpoint, and a message sent again (the EMR did not see our answer) gets the same answer
without a second command. Booking's command carries an idempotency key from the control id
too, so even a crash between booking's answer and ours books once.

Answers: AA when done; AE when booking refused (the time is taken, a rule) or could not be
reached, with an ERR saying why (the EMR may ask again); AR when the message itself cannot be
acted on (malformed, unsupported, unknown patient or appointment, not allowed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from prometheus_client import CollectorRegistry, Counter

from clinic.emr_bridge import audit, demographics, siu
from clinic.emr_bridge.clinics import Acting, Answer, Booking
from clinic.emr_bridge.outbox import EndpointRow, endpoints
from clinic.platform.database import Database

log = logging.getLogger(__name__)

DDL = [
    """CREATE TABLE IF NOT EXISTS hl7_inbound (
        endpoint_id uuid NOT NULL, control_id text NOT NULL, message_type text NOT NULL,
        received_at timestamptz NOT NULL, ack_code text NOT NULL, answer text NOT NULL,
        PRIMARY KEY (endpoint_id, control_id))""",
    """CREATE TABLE IF NOT EXISTS organization_settings (
        organization_id uuid PRIMARY KEY, demographics_source text NOT NULL)""",
]
MAX_MESSAGE_BYTES = 1_000_000
IDLE_SECONDS = 300.0
"""A connection that sends no whole message for this long is closed."""
_ESCAPE = re.compile(r"\\(F|S|T|R|E|X[0-9A-Fa-f]+)\\")


def unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "X":
            return bytes.fromhex(code[1:]).decode("latin-1") if len(code) % 2 == 1 else ""
        return {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\"}[code]

    return _ESCAPE.sub(one, text)


class Rejected(Exception):
    """A message that is answered AR (``code``: HL7 table 0357)."""

    def __init__(self, text: str, code: str = "207") -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class Refused(Exception):
    """Booking did not do it: answered AE."""


@dataclass(frozen=True)
class Message:
    """A parsed message: each segment's fields, each field's repetitions, each repetition's
    components, unescaped."""

    text: str
    segments: list[tuple[str, list[list[list[str]]]]]

    @classmethod
    def parse(cls, text: str) -> Message:
        if any((c < " " and c not in "\r\n\t") or c == "\x7f" for c in text):
            raise Rejected("the message holds a control character (escape it as \\Xhh\\)", "102")
        lines = [s for s in re.split(r"\r\n|\r|\n", text) if s.strip()]
        if not lines or not lines[0].startswith("MSH|") or len(lines[0]) < 8:
            raise Rejected("not an HL7 message: it must start with an MSH segment", "100")
        if lines[0][3:8] != "|^~\\&":
            raise Rejected("only the default delimiters |^~\\& are supported", "102")
        segments = []
        for line in lines:
            name, *fields = line.split("|")
            if not re.match(r"^[A-Z][A-Z0-9]{2}$", name):
                raise Rejected(f"{name[:10]!r} is not a segment name", "100")
            if name == "MSH":
                fields = ["|", *fields]  # MSH-1 is the field separator itself
            parsed = [
                [[unescape(c) for c in rep.split("^")] for rep in f.split("~")]
                if not (name == "MSH" and i == 1)
                else [[f]]
                for i, f in enumerate(fields)
            ]
            segments.append((name, [[[""]], *parsed]))
        return cls(text, segments)

    def segment(self, name: str) -> list[list[list[str]]] | None:
        return next((fields for n, fields in self.segments if n == name), None)

    def value(self, name: str, field: int, component: int = 0, repetition: int = 0) -> str:
        fields = self.segment(name)
        try:
            return fields[field][repetition][component] if fields else ""
        except IndexError:
            return ""


def _dtm(value: str) -> tuple[dt.datetime | None, str | None]:
    """An HL7 DTM as an instant (with its offset) or as local wall-clock time (without)."""
    match = re.match(r"^(\d{12}(?:\d{2})?)(?:\.\d+)?([+-]\d{4})?$", value)
    if not match:
        raise Rejected(f"{value!r} is not a date and time (YYYYMMDDHHMM[SS][+ZZZZ])", "102")
    digits, offset = match.groups()
    try:
        local = dt.datetime.strptime(digits.ljust(14, "0"), "%Y%m%d%H%M%S")
    except ValueError:
        raise Rejected(f"{value!r} is not a valid date and time", "102") from None
    if not 1900 <= local.year <= 2199:
        raise Rejected(f"{value!r} is outside the calendar (1900-2199)", "102")
    if offset is None:
        return None, local.isoformat()
    sign = 1 if offset[0] == "+" else -1
    hours, minutes = int(offset[1:3]), int(offset[3:])
    if hours > 14 or minutes > 59:
        raise Rejected(f"{value!r} has no such UTC offset (-1400 to +1400)", "102")
    zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    return local.replace(tzinfo=zone), None


def answer_text(
    request: Message | None,
    code: str,
    control_id: str,
    kind: str,
    error: tuple[str, str] | None = None,
    extra: list[str] | None = None,
) -> str:
    """An ACK (or SRR) for ``request``: MSH with the sides swapped, MSA, ERR, and ``extra``."""
    sending_app = request.value("MSH", 3) if request else ""
    sending_facility = request.value("MSH", 4) if request else ""
    receiving_facility = request.value("MSH", 6) if request else ""
    trigger = request.value("MSH", 9, 1) if request else ""
    structure = "SRR_S01" if kind == "SRR" else "ACK"
    now = siu.timestamp(dt.datetime.now(dt.UTC))
    segments = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                siu.SENDING_APPLICATION,
                siu.escape(receiving_facility),
                siu.escape(sending_app),
                siu.escape(sending_facility),
                now,
                "",
                f"{kind}^{siu.escape(trigger)}^{structure}",
                f"A{control_id}"[:20] if control_id else "A",
                "P",
                siu.VERSION,
            ]
        ),
        f"MSA|{code}|{siu.escape(control_id)}",
    ]
    if error is not None:
        segments.append(
            f"ERR||||E|{error[0]}^{siu.escape(error[1][:200])}^HL70357|||"
            f"{siu.escape(error[1][:500])}"
        )
    segments += extra or []
    return "\r".join(segments) + "\r"


class InboundMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "hl7_inbound_messages_total",
            "HL7 messages received, by type and answer.",
            ["type", "ack"],
            registry=registry,
        )


def _address_allowed(endpoint: EndpointRow, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(a, strict=False) for a in endpoint.allowed_addresses)


class Inbound:
    """The MLLP listener."""

    def __init__(
        self,
        database: Database,
        booking: Booking,
        metrics: InboundMetrics,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.database = database
        self.booking = booking
        self.metrics = metrics
        self.clock = clock
        self.server: asyncio.Server | None = None
        self.clients: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(
            self._client_streams, host, port, limit=MAX_MESSAGE_BYTES
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self.clients):
                task.cancel()
            await asyncio.gather(*self.clients, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _client_streams(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.clients.add(task)
        peer = writer.get_extra_info("peername") or ("", 0)
        try:
            while not reader.at_eof():
                async with asyncio.timeout(IDLE_SECONDS):
                    block = await _read_block(reader)
                if block is None:
                    return
                text = block.decode("utf-8", errors="replace")
                try:
                    answer = await self.handle(text, str(peer[0]))
                except Exception:  # a bug: answer it, keep the connection, log the trace
                    log.exception("unexpected error answering an HL7 message")
                    answer = answer_text(
                        None,
                        "AE",
                        "",
                        "ACK",
                        ("207", "the bridge failed to process it; send it again"),
                    )
                writer.write(b"\x0b" + answer.encode("utf-8") + b"\x1c\r")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, TimeoutError):
            pass
        finally:
            writer.close()
            self.clients.discard(task)

    async def handle(self, text: str, address: str) -> str:
        """The answer to one message from ``address``."""
        try:
            message = Message.parse(text)
        except Rejected as error:
            self.metrics.messages.labels("unparsed", "AR").inc()
            return answer_text(None, "AR", "", "ACK", (error.code, error.text))
        control = message.value("MSH", 10)
        kind = f"{message.value('MSH', 9, 0)}^{message.value('MSH', 9, 1)}"
        async with self.database.pool.connection() as conn:
            endpoint = await self._endpoint(conn, message, address)
            if endpoint is None:
                self.metrics.messages.labels(kind, "AR").inc()
                return answer_text(
                    message,
                    "AR",
                    control,
                    "ACK",
                    ("207", "this peer may not send to this organisation"),
                )
            if not control or len(control) > 199 or not control.isprintable():
                return answer_text(
                    message,
                    "AR",
                    control[:20],
                    "ACK",
                    ("101", "MSH-10 (message control id) is required"),
                )
            cursor = await conn.execute(
                "SELECT answer FROM hl7_inbound WHERE endpoint_id = %s AND control_id = %s",
                [endpoint.endpoint_id, control],
            )
            seen = await cursor.fetchone()
            if seen is not None:
                return str(seen[0])
        code, answer = await self._answer(endpoint, message, kind, control)
        self.metrics.messages.labels(kind, code).inc()
        reply = Message.parse(answer)
        about = reply.value("SCH", 2) or None
        entry = audit.AuditEntry(
            endpoint.organization_id,
            f"hl7:{endpoint.name}",
            "U" if kind == "ADT^A08" else "E",
            kind,
            "Patient" if kind == "ADT^A08" else "Appointment",
            about,
            0 if code == "AA" else 4,
            reply.value("ERR", 8) or None,
            address,
        )
        async with self.database.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO hl7_inbound VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (endpoint_id, control_id) DO NOTHING",
                [endpoint.endpoint_id, control, kind, self.clock(), code, answer],
            )
            await audit.record(conn, entry)
        return answer

    async def _endpoint(
        self, conn: psycopg.AsyncConnection, message: Message, address: str
    ) -> EndpointRow | None:
        facility = message.value("MSH", 4)
        for endpoint in await endpoints(conn):
            if endpoint.receiving_facility == facility and _address_allowed(endpoint, address):
                return endpoint
        return None

    async def _answer(
        self, endpoint: EndpointRow, message: Message, kind: str, control: str
    ) -> tuple[str, str]:
        respond = "SRR" if kind.startswith("SRM") else "ACK"
        try:
            if kind == "SRM^S01":
                extra = await self._book(endpoint, message, control)
            elif kind in ("SRM^S02", "SRM^S03"):
                extra = await self._move(endpoint, message, control)
            elif kind == "SRM^S04":
                extra = await self._cancel(endpoint, message, control)
            elif kind == "ADT^A08":
                extra = await self._demographics(endpoint, message, control)
            else:
                raise Rejected(f"{kind} is not handled here (SRM^S01-S04, ADT^A08 are)", "200")
        except Rejected as error:
            return "AR", answer_text(message, "AR", control, respond, (error.code, error.text))
        except Refused as error:
            return "AE", answer_text(message, "AE", control, respond, ("207", str(error)))
        return "AA", answer_text(message, "AA", control, respond, extra=extra)

    def _acting(self, endpoint: EndpointRow, control: str) -> Acting:
        return Acting(
            f"hl7:{endpoint.name}",
            "hl7",
            f"emr-bridge:{endpoint.organization_id}:hl7:{endpoint.endpoint_id}:{control}",
        )

    async def _patient(self, endpoint: EndpointRow, message: Message) -> str:
        """The patient PID-3 names: our id (assigning authority CLINIC), or an identifier
        booking knows (an MRN), asked of booking so a patient registered a moment ago is
        found too."""
        pid = message.segment("PID")
        if pid is None:
            raise Rejected("a PID segment is required", "100")
        for repetition in pid[3] if len(pid) > 3 else []:
            value = repetition[0] if repetition else ""
            system = repetition[3] if len(repetition) > 3 else ""
            if not value or not system:
                continue
            if system == siu.SENDING_APPLICATION:
                try:
                    return str(UUID(value))
                except ValueError:
                    continue
            answer = await self.booking.patient_by_identifier(
                endpoint.organization_id, system, value
            )
            if answer.status == 0 or answer.status >= 500:
                raise Refused(f"booking could not be reached ({answer.detail}); send it again")
            found = answer.body.get("patients") or []
            if answer.ok and found:
                return str(found[0]["id"])
        raise Rejected("no patient with these identifiers (PID-3 value^^^system)", "204")

    async def _appointment(self, endpoint: EndpointRow, message: Message) -> str:
        """The appointment ARQ-2 names (booking finds it in the organisation, or answers 404:
        the projection may not have a booking made a moment ago yet)."""
        filler = message.value("ARQ", 2) or message.value("SCH", 2)
        try:
            return str(UUID(filler))
        except ValueError:
            raise Rejected("ARQ-2 (filler appointment id) must be one of ours", "204") from None

    def _start(self, message: Message) -> dict[str, str]:
        value = message.value("AIS", 4) or message.value("ARQ", 11)
        if not value:
            raise Rejected("the start is required (AIS-4 or ARQ-11)", "101")
        instant, local = _dtm(value)
        return {"start": instant.isoformat()} if instant else {"local_start": str(local)}

    async def _book(self, endpoint: EndpointRow, message: Message, control: str) -> list[str]:
        patient = await self._patient(endpoint, message)
        type_id = message.value("AIS", 3)
        location = message.value("AIL", 3)
        for name, value in (("AIS-3 (appointment type)", type_id), ("AIL-3 (location)", location)):
            try:
                UUID(value)
            except ValueError:
                raise Rejected(f"{name} must be one of our ids", "103") from None
        resources = {}
        provider, role = message.value("AIP", 3), message.value("AIP", 4)
        if provider:
            resources[role or "physician"] = provider
        body: dict[str, Any] = {
            "appointment_type_id": type_id,
            "location_id": location,
            "patient_id": patient,
            "preferred_resources": resources,
            **self._start(message),
        }
        answer = await self.booking.post(
            f"/organizations/{endpoint.organization_id}/appointments",
            self._acting(endpoint, control),
            body,
        )
        booked = _decided(answer)
        placer = message.value("ARQ", 1)
        return [
            f"SCH|{siu.escape(placer)}|{booked['id']}^{siu.SENDING_APPLICATION}||||||||||"
            f"^^{_minutes(booked)}^{_compact(booked['start'])}^{_compact(booked['end'])}"
            f"||||||||||||||Booked"
        ]

    async def _move(self, endpoint: EndpointRow, message: Message, control: str) -> list[str]:
        aid = await self._appointment(endpoint, message)
        answer = await self.booking.command(
            endpoint.organization_id,
            UUID(aid),
            "reschedule",
            self._acting(endpoint, control),
            self._start(message),
        )
        moved = _decided(answer)
        return [
            f"SCH||{aid}^{siu.SENDING_APPLICATION}||||||||||^^{_minutes(moved)}^"
            f"{_compact(moved['start'])}^{_compact(moved['end'])}||||||||||||||Booked"
        ]

    async def _cancel(self, endpoint: EndpointRow, message: Message, control: str) -> list[str]:
        aid = await self._appointment(endpoint, message)
        reason = message.value("ARQ", 7, 1) or message.value("ARQ", 7) or "cancelled in the EMR"
        answer = await self.booking.command(
            endpoint.organization_id,
            UUID(aid),
            "cancel",
            self._acting(endpoint, control),
            {"reason": reason[:500]},
        )
        _decided(answer)
        return [f"SCH||{aid}^{siu.SENDING_APPLICATION}||||||||||||||||||||||||Cancelled"]

    async def _demographics(
        self, endpoint: EndpointRow, message: Message, control: str
    ) -> list[str]:
        async with self.database.pool.connection() as conn:
            source = await demographics_source(conn, endpoint.organization_id)
        if source != "emr":
            raise Rejected(
                "this organisation keeps demographics in the clinic platform, not "
                "the EMR: ADT updates are not taken",
                "207",
            )
        patient = await self._patient(endpoint, message)
        pid = message.segment("PID")
        assert pid is not None
        try:
            change = demographics.from_pid(pid)
        except demographics.DemographicsError as error:
            raise Rejected(str(error), "102") from None
        answer = await self.booking.patch(
            f"/organizations/{endpoint.organization_id}/patients/{patient}",
            self._acting(endpoint, control),
            change,
        )
        _decided(answer)
        return []


async def demographics_source(conn: psycopg.AsyncConnection, org: UUID) -> str:
    cursor = await conn.execute(
        "SELECT demographics_source FROM organization_settings WHERE organization_id = %s", [org]
    )
    found = await cursor.fetchone()
    return str(found[0]) if found else "clinic"


def _decided(answer: Answer) -> dict[str, Any]:
    if answer.ok:
        return answer.body
    if answer.status == 0 or answer.status >= 500:
        raise Refused(f"booking could not be reached ({answer.detail}); send it again")
    if answer.status == 404:
        raise Rejected(f"booking: {answer.detail}", "204")
    if answer.status == 400 or answer.slug == "validation-error":
        raise Rejected(f"booking: {_described(answer)}", "207")
    raise Refused(f"booking refused: {answer.detail}")  # a rule (409, 422, 403): AE


def _described(answer: Answer) -> str:
    """Booking's refusal with the fields it names."""
    errors = answer.body.get("errors")
    if isinstance(errors, list) and errors:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e.get('location', ())[1:])}: {e.get('message')}"
            for e in errors[:5]
            if isinstance(e, dict)
        )
        return f"{answer.detail} ({fields})"
    return answer.detail


def _compact(value: str) -> str:
    return siu.timestamp(dt.datetime.fromisoformat(value))


def _minutes(body: dict[str, Any]) -> str:
    start = dt.datetime.fromisoformat(body["start"])
    end = dt.datetime.fromisoformat(body["end"])
    return str(max(1, int((end - start).total_seconds() // 60)))


async def _read_block(reader: asyncio.StreamReader) -> bytes | None:
    """One MLLP block (without its framing), or None at the end of the stream."""
    try:
        data = await reader.readuntil(b"\x1c\r")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise
        return None
    except asyncio.LimitOverrunError:
        raise ConnectionError("message larger than the limit") from None
    start = data.find(b"\x0b")
    if start < 0:
        raise ConnectionError("block without its start character")
    return data[start + 1 : -2]
