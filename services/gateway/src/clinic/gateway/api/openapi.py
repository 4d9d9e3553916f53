"""What the OpenAPI document says about every /v1 operation besides its own answers: it
needs a bearer token (401 without a valid one), counts against the rate limits (429), and
shows an example of its request and its answer (``api.docs``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from clinic.gateway.api.docs import OPERATIONS, REQUESTS, RESPONSES
from clinic.platform.problem_handlers import DESCRIPTIONS

BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token from the organisation's identity provider (OAuth2), "
    "naming the organisation (`org`), the role (`role`), and for clinic roles their "
    "`locations`, for patients their `patient_id`.",
}
PUBLIC = frozenset({"/v1"})


def document_security(app: FastAPI) -> None:
    generate = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        schema = generate()
        if not done:
            _secure(schema)
            _exemplify(schema)
            done = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _secure(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/v1") or path in PUBLIC:
            continue
        for operation in operations.values():
            operation["security"] = [{"bearer": []}]
            responses = operation.setdefault("responses", {})
            for code in ("401", "429"):
                responses[code] = {"description": DESCRIPTIONS[code], "content": problem}


def _exemplify(schema: dict[str, Any]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for name, example in REQUESTS.items():
        if name in components:
            components[name].setdefault("examples", [example])
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get("application/json")
                if not status.startswith("2") or media is None:
                    continue
                name = media.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                found = OPERATIONS.get(f"{method.upper()} {path}", RESPONSES.get(name))
                if found is not None:
                    # Set here, not in the routes: FastAPI drops null fields from examples.
                    media["example"] = found
