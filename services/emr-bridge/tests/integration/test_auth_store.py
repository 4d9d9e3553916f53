"""EMR clients' credentials and the audit trail in the real PostgreSQL: an assertion is used
once whichever replica sees it (also when two race), tokens are found only while alive and
only by their hash, removing or changing a client revokes its tokens, and audit_events
refuses UPDATE, DELETE and TRUNCATE from anyone; the trail is searched newest first."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
from emr_client import SigningKey, assertion_form, claims, jwks, sign

from clinic.emr_bridge import audit
from clinic.emr_bridge.audit import AUDIT_DDL, AuditEntry
from clinic.emr_bridge.auth import Forbidden, TokenError, Unauthorized, token_digest
from clinic.emr_bridge.credentials import (
    CREDENTIALS_DDL,
    MAX_CLIENTS,
    Authentication,
    Registration,
    TooManyClientsError,
)
from clinic.emr_bridge.settings import EmrBridgeSettings
from clinic.platform.database import Database

ORG = uuid.uuid4()
TOKEN_URL = f"http://bridge.test/fhir/{ORG}/auth/token"
KEY = SigningKey.ec("ec-1")
SECRET = "a-client-secret-of-more-than-32-characters"


@pytest.fixture
async def database_with_auth(database: Database) -> Database:
    await database.migrate([*CREDENTIALS_DDL, *AUDIT_DDL])
    await database.migrate([*CREDENTIALS_DDL, *AUDIT_DDL])  # a restart migrates again
    return database


@pytest.fixture
async def replicas(
    database_with_auth: Database, settings_for: Callable[..., Any]
) -> AsyncIterator[tuple[Authentication, Authentication]]:
    """Two bridge replicas: each its own pool, one database."""
    settings = settings_for(EmrBridgeSettings)
    other = Database(settings.database_url, settings.schema_name, "emr-bridge-replica", 4)
    await other.pool.open(wait=True)
    first = Authentication.on(database_with_auth, settings)
    second = Authentication.on(other, settings)
    await first.register(ORG, "epic", Registration("Epic", ("system/*.rs",), jwks=jwks(KEY)))
    await first.register(
        ORG, "simple", Registration("Simple", ("system/Patient.r",), secret=SECRET)
    )
    yield first, second
    await other.close()


def form(scope: str = "system/Appointment.rs", **changes: Any) -> dict[str, str]:
    return assertion_form(sign(KEY, claims("epic", TOKEN_URL, **changes)), scope)


async def test_an_assertion_used_at_one_replica_is_refused_at_the_other(
    replicas: tuple[Authentication, Authentication],
) -> None:
    first, second = replicas
    used = form()
    await first.token(str(ORG), used, None, TOKEN_URL)
    with pytest.raises(TokenError, match="used already"):
        await second.token(str(ORG), used, None, TOKEN_URL)
    with pytest.raises(TokenError, match="used already"):
        await first.token(str(ORG), used, None, TOKEN_URL)


async def test_two_replicas_racing_with_one_assertion_issue_exactly_one_token(
    replicas: tuple[Authentication, Authentication],
) -> None:
    first, second = replicas
    for _ in range(5):
        raced = form()
        answers = await asyncio.gather(
            first.token(str(ORG), raced, None, TOKEN_URL),
            second.token(str(ORG), raced, None, TOKEN_URL),
            return_exceptions=True,
        )
        refused = [a for a in answers if isinstance(a, TokenError)]
        assert len(refused) == 1, answers
        assert refused[0].error == "invalid_client"


async def test_a_jti_may_come_back_once_its_first_assertion_expired(
    replicas: tuple[Authentication, Authentication], database_with_auth: Database
) -> None:
    first, _ = replicas
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    assert await first.store.first_use(ORG, "epic", "jti-1", past, past - dt.timedelta(minutes=5))
    now = dt.datetime.now(dt.UTC)
    assert await first.store.first_use(ORG, "epic", "jti-1", now + dt.timedelta(minutes=4), now)
    assert not await first.store.first_use(ORG, "epic", "jti-1", now + dt.timedelta(minutes=4), now)
    assert await first.store.first_use(ORG, "other", "jti-1", now + dt.timedelta(minutes=4), now)


async def test_a_token_is_kept_only_as_its_hash_and_found_only_while_alive(
    replicas: tuple[Authentication, Authentication], database_with_auth: Database
) -> None:
    first, second = replicas
    granted = await first.token(
        str(ORG), form("system/Appointment.rs system/Patient.rs"), None, TOKEN_URL
    )
    caller = await second.caller(str(ORG), f"Bearer {granted.access_token}")
    assert (caller.client_id, [s.text for s in caller.scopes]) == (
        "epic",
        ["system/Appointment.rs", "system/Patient.rs"],
    )
    async with database_with_auth.pool.connection() as conn:
        cursor = await conn.execute("SELECT token_hash, expires_at FROM emr_access_tokens")
        rows = await cursor.fetchall()
    assert [bytes(r[0]) for r in rows] == [token_digest(granted.access_token)]
    assert granted.access_token.encode() not in bytes(rows[0][0])
    with pytest.raises(Forbidden):
        await second.caller(str(uuid.uuid4()), f"Bearer {granted.access_token}")
    async with database_with_auth.pool.connection() as conn:
        await conn.execute("UPDATE emr_access_tokens SET expires_at = now() - interval '1 second'")
    with pytest.raises(Unauthorized, match="expired"):
        await second.caller(str(ORG), f"Bearer {granted.access_token}")


async def test_removing_a_client_revokes_its_tokens_at_every_replica(
    replicas: tuple[Authentication, Authentication],
) -> None:
    first, second = replicas
    posted = {
        "grant_type": "client_credentials",
        "scope": "system/Patient.r",
        "client_id": "simple",
        "client_secret": SECRET,
    }
    granted = await first.token(str(ORG), posted, None, TOKEN_URL)
    await second.caller(str(ORG), f"Bearer {granted.access_token}")
    same = Registration("Simple", ("system/Patient.r",), secret=SECRET)
    assert (await first.register(ORG, "simple", same))[1] is False
    await second.caller(str(ORG), f"Bearer {granted.access_token}")  # nothing changed
    narrower = Registration("Simple", ("system/Patient.r",), secret=SECRET + "-rotated")
    await first.register(ORG, "simple", narrower)
    with pytest.raises(Unauthorized):
        await second.caller(str(ORG), f"Bearer {granted.access_token}")
    posted["client_secret"] = SECRET + "-rotated"
    again = await second.token(str(ORG), posted, None, TOKEN_URL)
    assert await second.remove(ORG, "simple")
    with pytest.raises(Unauthorized):
        await first.caller(str(ORG), f"Bearer {again.access_token}")
    assert not await second.remove(ORG, "simple")
    assert [c.client_id for c in await first.clients(ORG)] == ["epic"]


async def test_a_client_keeps_its_creation_time_and_the_secret_only_as_a_hash(
    replicas: tuple[Authentication, Authentication], database_with_auth: Database
) -> None:
    first, _ = replicas
    before = await first.client(ORG, "simple")
    assert before is not None
    assert before.secret_hash is not None
    assert SECRET not in before.secret_hash
    replaced, created = await first.register(
        ORG, "simple", Registration("Simple 2", ("system/Patient.r",), secret=SECRET)
    )
    assert not created
    assert replaced.created_at == before.created_at
    assert replaced.updated_at > before.updated_at
    async with database_with_auth.pool.connection() as conn:
        cursor = await conn.execute("SELECT emr_clients::text FROM emr_clients")
        dumped = " ".join(row[0] for row in await cursor.fetchall())
    assert SECRET not in dumped


async def test_an_organisation_registers_at_most_its_share_of_clients(
    replicas: tuple[Authentication, Authentication],
) -> None:
    first, _ = replicas
    org = uuid.uuid4()
    registration = Registration("EMR", ("system/*.rs",), jwks=jwks(KEY))
    await asyncio.gather(*(first.register(org, f"c{i}", registration) for i in range(MAX_CLIENTS)))
    with pytest.raises(TooManyClientsError):
        await first.register(org, "one-more", registration)
    await first.register(org, "c0", registration)  # replacing is not adding
    assert len(await first.clients(org)) == MAX_CLIENTS


# -- the audit trail ----------------------------------------------------------------------------


def entry(**changes: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "organization": ORG,
        "client_id": "epic",
        "action": "R",
        "name": "read",
        "resource_type": "Patient",
        "resource_id": "p1",
        **changes,
    }
    return AuditEntry(**values)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 0",
        "UPDATE audit_events SET detail = 'nothing' WHERE false",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
async def test_the_audit_trail_refuses_every_change_and_removal(
    database_with_auth: Database, statement: str
) -> None:
    async with database_with_auth.pool.connection() as conn:
        await audit.record(conn, entry(outcome=4, detail="404: no Patient/p1"))
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            await conn.execute(statement)
        cursor = await conn.execute("SELECT outcome, detail FROM audit_events")
        assert await cursor.fetchall() == [(4, "404: no Patient/p1")]


async def test_the_trail_is_searched_newest_first_by_date_agent_entity_and_outcome(
    database_with_auth: Database,
) -> None:
    start = dt.datetime(2027, 3, 1, 9, tzinfo=dt.UTC)
    async with database_with_auth.pool.connection() as conn:
        recorded = [
            await audit.record(
                conn,
                entry(
                    client_id="epic" if i % 2 else "cerner",
                    resource_id=f"p{i % 3}",
                    outcome=0 if i % 4 else 4,
                ),
                start + dt.timedelta(hours=i),
            )
            for i in range(12)
        ]
        await audit.record(conn, entry(organization=uuid.uuid4()), start)

        async def ids(*items: tuple[str, str]) -> list[uuid.UUID]:
            found, _ = await audit.find(conn, ORG, audit.parse_search(list(items)))
            return [e.id for e in found]

        newest_first = [r.id for r in reversed(recorded)]
        assert await ids() == newest_first
        assert await ids(("agent", "epic")) == [
            r.id for r in reversed(recorded) if r.entry.client_id == "epic"
        ]
        assert await ids(("entity", "Patient/p1")) == [
            r.id for r in reversed(recorded) if r.entry.resource_id == "p1"
        ]
        assert await ids(("outcome", "4")) == [
            r.id for r in reversed(recorded) if r.entry.outcome == 4
        ]
        assert await ids(
            ("date", "ge2027-03-01T12:00:00Z"), ("date", "lt2027-03-01T15:00:00Z")
        ) == [r.id for r in reversed(recorded[3:6])]
        pages: list[uuid.UUID] = []
        search = audit.parse_search([("_count", "5")])
        while True:
            found, following = await audit.find(conn, ORG, search)
            pages += [e.id for e in found]
            if following is None:
                break
            search = audit.parse_search([("_count", "5"), ("_cursor", following)])
        assert pages == newest_first
        one = await audit.one(conn, ORG, recorded[0].id)
        assert one is not None
        assert one.entry == recorded[0].entry
        assert await audit.one(conn, uuid.uuid4(), recorded[0].id) is None
