"""A request's path as traces and logs may show it: a credential in it (a message link's
signed token) is replaced by its name, whether a route matched or not (a 404, or a 429 or 413
answered before routing). Traces and logs are read by more people than may act on the
patient's appointment the token opens."""

from __future__ import annotations

import re

from starlette.types import Scope

SECRET_PARAMETERS = frozenset({"token"})
SECRET_PATH = re.compile(r"(/links/)[^/]+")


def shown_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    for name, value in (scope.get("path_params") or {}).items():
        if name in SECRET_PARAMETERS and value:
            path = path.replace(str(value), f"{{{name}}}")
    return SECRET_PATH.sub(r"\1{token}", path)
