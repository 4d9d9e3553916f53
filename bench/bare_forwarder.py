"""The least any gateway in front of the services does, for bench/gateway_bench.py: the floor
under what the gateway adds, measured on the same machine in the same run.

A raw ASGI app on uvicorn (uvloop and httptools, as every service runs): it passes each
request on to one service over a pooled keep-alive connection (aiohttp, as the gateway
calls) as it came, and for a command (any method but GET) writes one row to PostgreSQL,
durably, before answering, as the gateway's access audit must (issue 18: every change
audited). No authentication, rate limits, validation, idempotency, tracing or metrics.
Whatever this adds to a request, a gateway that does what issue 18 asks adds at least.

Run by the benchmark: ``uvicorn --factory --app-dir bench bare_forwarder:create`` with
``BARE_UPSTREAM`` (the service's base URL), ``BARE_DATABASE_URL`` and ``BARE_SCHEMA`` (made
by the benchmark, dropped afterwards). ``GET /readyz`` answers 200 once it is started.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import aiohttp
from psycopg_pool import AsyncConnectionPool

DROPPED = frozenset({b"host", b"content-length", b"connection", b"transfer-encoding"})


class Forwarder:
    def __init__(self, upstream: str, database_url: str, schema: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.pool = AsyncConnectionPool(
            database_url,
            min_size=2,
            max_size=10,
            kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
            open=False,
        )
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.pool.open(wait=True)
                async with self.pool.connection() as conn:
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS forwarded (id uuid PRIMARY KEY, "
                        "at timestamptz NOT NULL, status integer NOT NULL)"
                    )
                self.session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
                    auto_decompress=False,
                    skip_auto_headers=("User-Agent",),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/readyz":
            await _answer(send, 200, b"{}", b"application/json")
            return
        assert self.session is not None
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        query = scope["query_string"].decode("latin-1")
        url = self.upstream + scope["path"] + (f"?{query}" if query else "")
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k not in DROPPED
        ]
        async with self.session.request(
            scope["method"], url, data=body or None, headers=headers
        ) as reply:
            content = await reply.read()
            status = reply.status
            media = reply.headers.get("content-type", "application/json")
        if scope["method"] != "GET":
            async with self.pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO forwarded (id, at, status) VALUES (%s, now(), %s)",
                    (uuid.uuid4(), status),
                )
        await _answer(send, status, content, media.encode("latin-1"))


async def _answer(send: Any, status: int, body: bytes, media: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", media)]}
    )
    await send({"type": "http.response.body", "body": body})


def create() -> Forwarder:
    return Forwarder(
        os.environ["BARE_UPSTREAM"], os.environ["BARE_DATABASE_URL"], os.environ["BARE_SCHEMA"]
    )
