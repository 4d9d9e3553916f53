"""Request body size limit: an oversized body gets a 413 problem before any handler runs,
whether it declares its length or arrives in chunks."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.platform.problems import problem_body, send_problem


class BodySizeLimit:
    """Refuses bodies over ``max_bytes``: by Content-Length up front, else by reading the body
    (chunked or not) before the app sees it. Bodies are small (tens of kilobytes at most), so
    the app then reads the buffered body as it was sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        if declared is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = problem_body(
            413,
            "payload-too-large",
            "Request body too large",
            f"the body exceeds the limit of {self.max_bytes} bytes",
            scope.get("path"),
        )
        # The rest of an oversized body is not read: the client must not send another
        # request on this connection.
        await send_problem(send, body, (b"connection", b"close"))


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives ``messages`` first, then whatever the server sends next."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
