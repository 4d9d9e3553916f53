"""The OpenAPI document shows a real example on every operation: its answer, and its body
where it takes one; and every example is valid against the schema it illustrates."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from clinic.gateway.main import create_app

DOCUMENT = create_app().openapi()


def _operations() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
    ]


def _valid(instance: Any, schema: dict[str, Any], where: str) -> None:
    root = {**schema, "components": DOCUMENT["components"]}
    validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, f"{where}: {errors}"


@pytest.mark.parametrize(("where", "operation"), _operations(), ids=lambda v: str(v)[:60])
def test_every_operation_shows_a_valid_example_of_its_answer_and_of_its_body(
    where: str, operation: dict[str, Any]
) -> None:
    successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
    assert successes, f"{where} documents no success"
    for status, response in successes.items():
        content = response.get("content", {})
        if "text/event-stream" in content:  # a stream: its example is events, JSON data each
            example = content["text/event-stream"]["example"]
            data = [line[6:] for line in example.splitlines() if line.startswith("data: ")]
            assert data, f"{where} {status}: no example event"
            for item in data:
                json.loads(item)
            continue
        media = content.get("application/json")
        assert media is not None, f"{where} {status}: no JSON answer documented"
        assert "example" in media, f"{where} {status}: no example answer"
        if media.get("schema"):
            _valid(media["example"], media["schema"], f"{where} {status}")
    body = operation.get("requestBody")
    if body is not None:
        schema = body["content"]["application/json"]["schema"]
        ref = schema.get("$ref") or next(
            (v["$ref"] for v in schema.get("anyOf", []) if "$ref" in v), None
        )
        assert ref is not None, f"{where}: body without a named schema"
        component = DOCUMENT["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert component.get("examples"), f"{where}: no example body"
        for example in component["examples"]:
            _valid(example, {"$ref": ref}, f"{where} body")
