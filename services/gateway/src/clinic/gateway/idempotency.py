"""Idempotency keys: a POST repeated with its key gets the first answer, never a second effect.

A key belongs to one caller (organisation and token subject). The first request with it
claims the key; its answer is stored with it and replayed, with ``Idempotency-Replayed:
true``, to every repeat within the key's lifetime (``GATEWAY_IDEMPOTENCY_TTL_HOURS``, 24 by
default), after which it is forgotten. The same key with another request (method, route or
body) is a 422; a repeat while the first is still being answered is a 409 to retry.

A claim whose request never finished (the gateway stopped mid-way) lapses after a minute and
the next repeat takes it over; booking receives the same derived key again and answers its
first decision, so nothing is done twice. An answer that says nothing was decided (a
service unavailable) is not kept: the client retries with the same key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from clinic.gateway.rows_json import as_json
from clinic.platform.problems import Problem

CLAIM_LEASE = dt.timedelta(minutes=1)
KEPT_HEADERS = ("location", "etag", "content-type")

DDL = [
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        organization_id uuid NOT NULL,
        subject text NOT NULL,
        key text NOT NULL,
        fingerprint text NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        claimed_until timestamptz,
        status integer,
        headers jsonb,
        body bytea,
        PRIMARY KEY (organization_id, subject, key))""",
    "CREATE INDEX IF NOT EXISTS idempotency_keys_by_expiry ON idempotency_keys (expires_at)",
]


class IdempotencyKeyRequiredError(Problem):
    status = 400
    slug = "idempotency-key-required"
    title = "Idempotency-Key header required"


class IdempotencyKeyReusedError(Problem):
    status = 422
    slug = "idempotency-key-reused"
    title = "This Idempotency-Key was used for another request"


class IdempotencyKeyInUseError(Problem):
    status = 409
    slug = "idempotency-key-in-use"
    title = "A request with this Idempotency-Key is still being answered"
    headers = {"Retry-After": "1"}


def check_key(key: str | None) -> str:
    if key is None:
        raise IdempotencyKeyRequiredError(
            "every POST carries an Idempotency-Key header (a UUID, say): a repeat with the "
            "same key gets the first answer instead of doing it twice"
        )
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyRequiredError("Idempotency-Key is 1 to 255 printable ASCII characters")
    return key


def fingerprint(method: str, route: str, body: Any) -> str:
    """The request a key stands for: method, route (with its ids) and the body's content
    (key order and spacing do not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    raw = f"{method} {route}\n{canonical}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()


def derived_key(organization_id: UUID, subject: str, key: str) -> str:
    """The key booking sees: distinct per caller, so two callers' keys never meet there."""
    raw = f"{organization_id}|{subject}|{key}".encode("utf-8", "surrogatepass")
    return "gw:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Stored:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Claim:
    organization_id: UUID
    subject: str
    key: str
    fingerprint: str


class Again:
    """A claim to send again in the next group: its key appeared twice in one group, or its
    row went (expired and removed) between the claim and the look at it."""


AGAIN = Again()

CLAIM_MANY = """
    WITH wanted AS (
        SELECT w.*
        FROM jsonb_to_recordset(%(wanted)s::jsonb)
            AS w(organization_id uuid, subject text, key text, fingerprint text, n integer)
        -- A claim need not outlive a crash of the database (see ``claim_many``): its commit
        -- does not wait for the write-ahead log to reach the disk.
        CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS lazily
    ), claimed AS (
        INSERT INTO idempotency_keys AS k (organization_id, subject, key, fingerprint,
            created_at, expires_at, claimed_until)
        SELECT organization_id, subject, key, fingerprint, %(now)s, %(expires)s, %(lease)s
        FROM wanted
        ON CONFLICT (organization_id, subject, key) DO UPDATE SET
            fingerprint = EXCLUDED.fingerprint, created_at = EXCLUDED.created_at,
            expires_at = EXCLUDED.expires_at, claimed_until = EXCLUDED.claimed_until,
            status = NULL, headers = NULL, body = NULL
        WHERE k.expires_at <= %(now)s
           OR (k.status IS NULL AND k.claimed_until <= %(now)s
               AND k.fingerprint = EXCLUDED.fingerprint)
        RETURNING k.organization_id, k.subject, k.key
    )
    SELECT c.key IS NOT NULL, k.fingerprint, k.status, k.headers, k.body
    FROM wanted w
    LEFT JOIN claimed c
        ON (c.organization_id, c.subject, c.key) = (w.organization_id, w.subject, w.key)
    LEFT JOIN idempotency_keys k
        ON c.key IS NULL
        AND (k.organization_id, k.subject, k.key) = (w.organization_id, w.subject, w.key)
    ORDER BY w.n"""

Claimed = Stored | None | Again | Problem


async def claim_many(
    conn: psycopg.AsyncConnection, wanted: Sequence[Claim], now: dt.datetime, ttl: dt.timedelta
) -> list[Claimed]:
    """Claim many requests' keys in one statement. For each, in order: None (the key is this
    request's now), the first answer to replay, the refusal to answer (the key is another
    request's, or its first request is still being answered), or ``AGAIN``.

    A claim's commit does not wait for the disk: a claim lost in a crash of the database is
    a claim that lapsed, and booking answers the derived key once whoever sends it; the
    answer stored afterwards is durable."""
    first: dict[tuple[UUID, str, str], int] = {}
    for n, one in enumerate(wanted):
        first.setdefault((one.organization_id, one.subject, one.key), n)
    sent = sorted(first.values())
    cursor = await conn.execute(
        CLAIM_MANY,
        {
            "wanted": as_json(
                {
                    "organization_id": wanted[n].organization_id,
                    "subject": wanted[n].subject,
                    "key": wanted[n].key,
                    "fingerprint": wanted[n].fingerprint,
                    "n": n,
                }
                for n in sent
            ),
            "now": now,
            "expires": now + ttl,
            "lease": now + CLAIM_LEASE,
        },
    )
    rows = await cursor.fetchall()
    results: list[Claimed] = [AGAIN] * len(wanted)  # a key's second request: the next group
    for n, (claimed, print_, status, headers, body) in zip(sent, rows, strict=True):
        results[n] = _claimed(wanted[n], claimed, print_, status, headers, body)
    return results


def _claimed(
    wanted: Claim, claimed: bool, print_: str | None, status: int | None, headers: Any, body: Any
) -> Claimed:
    if claimed:
        return None
    if print_ is None:  # expired and removed since: claim again
        return AGAIN
    if print_ != wanted.fingerprint:
        return IdempotencyKeyReusedError(
            "this Idempotency-Key was first sent with another request (method, path or "
            "body); use a new key for a new request"
        )
    if status is None:
        return IdempotencyKeyInUseError(
            "the first request with this Idempotency-Key is still being answered; retry shortly"
        )
    return Stored(status, dict(headers or {}), bytes(body or b""))


STORE_MANY = """UPDATE idempotency_keys AS k SET status = a.status, headers = a.headers,
        body = decode(a.body, 'hex'), claimed_until = NULL
    FROM jsonb_to_recordset(%s::jsonb)
        AS a(organization_id uuid, subject text, key text, status integer, headers jsonb, body text)
    WHERE (k.organization_id, k.subject, k.key) = (a.organization_id, a.subject, a.key)"""


async def complete_many(
    conn: psycopg.AsyncConnection,
    answers: Sequence[tuple[Claim, Stored]],
    also: tuple[str, tuple[Any, ...]],
) -> None:
    """Store many answers with their keys; ``also``: an INSERT (and its parameters) run in
    the same statement, so all are written or none (one durable commit for the lot)."""
    statement, extra = also
    if not answers:
        await conn.execute(statement, extra)
        return
    stored = as_json(
        {
            "organization_id": claim.organization_id,
            "subject": claim.subject,
            "key": claim.key,
            "status": answer.status,
            "headers": {k: v for k, v in answer.headers.items() if k.lower() in KEPT_HEADERS},
            "body": answer.body.hex(),
        }
        for claim, answer in answers
    )
    await conn.execute(f"WITH stored AS ({STORE_MANY} RETURNING 1) {statement}", (stored, *extra))


async def release(conn: psycopg.AsyncConnection, wanted: Claim) -> None:
    """Forget a claim whose request decided nothing, so the client may send it again."""
    await conn.execute(
        """DELETE FROM idempotency_keys
           WHERE organization_id = %s AND subject = %s AND key = %s AND status IS NULL""",
        (wanted.organization_id, wanted.subject, wanted.key),
    )


async def forget_expired(conn: psycopg.AsyncConnection, now: dt.datetime) -> int:
    cursor = await conn.execute("DELETE FROM idempotency_keys WHERE expires_at <= %s", (now,))
    return cursor.rowcount
