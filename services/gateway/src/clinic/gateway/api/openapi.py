"""What the OpenAPI document says about every /v1 operation besides its own answers: it
needs a bearer token (401 without a valid one) and counts against the rate limits (429)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

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
