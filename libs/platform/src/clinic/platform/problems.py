"""RFC 9457 problems: every error a service returns is a :class:`Problem`.

A service's errors are kinds of ``Problem`` (booking's ``BookingError``, availability's
``SearchError``): a stable problem type (a slug), an HTTP status, a title, the detail and
machine-readable extras. This module needs no web framework, so domain code can raise them;
``problem_handlers`` turns them (and request validation failures, unknown routes, oversized
bodies) into problem+json answers.
"""

from __future__ import annotations

import json
from typing import Any

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://clinic.example/problems/"
RESERVED = frozenset({"type", "title", "status", "detail", "instance"})


class Problem(Exception):
    """An error with a stable problem type (a slug such as ``slot-taken``) and an HTTP status."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"
    headers: dict[str, str] | None = None
    """Response headers the answer carries (e.g. ``WWW-Authenticate`` on a 401)."""

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(
            self.status, self.slug, self.title, self.detail, instance, **self.extensions
        )


def problem_body(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    for key, value in extensions.items():
        # An extra can never replace a member RFC 9457 defines (a rule that names an
        # appointment's ``status`` must not change the answer's).
        body[f"extra_{key}" if key in RESERVED else key] = value
    return body


async def send_problem(
    send: Any, body: dict[str, Any], *extra_headers: tuple[bytes, bytes]
) -> None:
    """Answer with a problem at the ASGI level (for middleware that runs outside the app's
    exception handlers)."""
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": body["status"],
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
