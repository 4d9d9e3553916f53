"""Who may use a service's operations routes (dead letters, projection rebuild): ops with the
deployment's operations token, nobody else.

These routes change what a projection holds and show the events it could not apply (which
can carry patients' details), so they are never open: a request needs ``Authorization:
Bearer <OPERATIONS_TOKEN>``; without a configured token they are off (403). `make up` makes
a token and keeps it in ``.local/up/operations-token``.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from clinic.platform.problems import Problem


class OperationsTokenMissingError(Problem):
    status = 401
    slug = "operations-token-required"
    title = "The operations token is needed"
    headers = {"WWW-Authenticate": 'Bearer realm="operations"'}


class OperationsOffError(Problem):
    status = 403
    slug = "operations-off"
    title = "Operations routes are turned off here"


def operations_access(request: Request) -> None:
    """A route dependency: the request carries the service's operations token."""
    expected = request.app.state.runtime.settings.operations_token.get_secret_value()
    if not expected:
        raise OperationsOffError(
            "this service has no OPERATIONS_TOKEN set, so its operations routes are off"
        )
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise OperationsTokenMissingError("send Authorization: Bearer <OPERATIONS_TOKEN>")
