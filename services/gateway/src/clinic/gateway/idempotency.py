"""Idempotency keys: a POST repeated with its key gets the first answer, never a second effect.

A key belongs to one caller (organisation and token subject). The first request with it
claims the key; its answer is stored with it and replayed, with ``Idempotent-Replayed:
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
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

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


async def claim(
    conn: psycopg.AsyncConnection, wanted: Claim, now: dt.datetime, ttl: dt.timedelta
) -> Stored | None:
    """Take the key for this request (None), or the first answer to replay. Raises when the
    key is another request's, or its first request is still being answered."""
    cursor = await conn.execute(
        """INSERT INTO idempotency_keys AS k (organization_id, subject, key, fingerprint,
               created_at, expires_at, claimed_until)
           VALUES (%(org)s, %(subject)s, %(key)s, %(print)s, %(now)s, %(expires)s, %(lease)s)
           ON CONFLICT (organization_id, subject, key) DO UPDATE SET
               fingerprint = EXCLUDED.fingerprint, created_at = EXCLUDED.created_at,
               expires_at = EXCLUDED.expires_at, claimed_until = EXCLUDED.claimed_until,
               status = NULL, headers = NULL, body = NULL
           WHERE k.expires_at <= %(now)s
              OR (k.status IS NULL AND k.claimed_until <= %(now)s
                  AND k.fingerprint = EXCLUDED.fingerprint)
           RETURNING 1""",
        {
            "org": wanted.organization_id,
            "subject": wanted.subject,
            "key": wanted.key,
            "print": wanted.fingerprint,
            "now": now,
            "expires": now + ttl,
            "lease": now + CLAIM_LEASE,
        },
    )
    if await cursor.fetchone() is not None:
        return None
    cursor = await conn.execute(
        """SELECT fingerprint, status, headers, body FROM idempotency_keys
           WHERE organization_id = %s AND subject = %s AND key = %s""",
        (wanted.organization_id, wanted.subject, wanted.key),
    )
    row = await cursor.fetchone()
    if row is None:  # expired and removed between the two statements: claim again
        return await claim(conn, wanted, now, ttl)
    if row[0] != wanted.fingerprint:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was first sent with another request (method, path or "
            "body); use a new key for a new request"
        )
    if row[1] is None:
        raise IdempotencyKeyInUseError(
            "the first request with this Idempotency-Key is still being answered; retry shortly"
        )
    return Stored(row[1], dict(row[2] or {}), bytes(row[3] or b""))


async def complete(
    conn: psycopg.AsyncConnection,
    wanted: Claim,
    answer: Stored,
    also: tuple[str, tuple[Any, ...]] | None = None,
) -> None:
    """Store the answer with its key; ``also``: an INSERT (and its parameters) run in the
    same statement, so both are written or neither."""
    update = """UPDATE idempotency_keys SET status = %s, headers = %s, body = %s,
            claimed_until = NULL
        WHERE organization_id = %s AND subject = %s AND key = %s"""
    values: tuple[Any, ...] = (
        answer.status,
        Jsonb({k: v for k, v in answer.headers.items() if k.lower() in KEPT_HEADERS}),
        answer.body,
        wanted.organization_id,
        wanted.subject,
        wanted.key,
    )
    if also is None:
        await conn.execute(update, values)
        return
    statement, extra = also
    await conn.execute(f"WITH stored AS ({update} RETURNING 1) {statement}", values + extra)


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
