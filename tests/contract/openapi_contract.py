"""The OpenAPI documents of the services, and what makes a change to one breaking.

Breaking, for a client written against the committed document:
- an operation (path and method) removed;
- a parameter that became required, a new required parameter, a removed parameter, or a
  parameter whose type changed or whose enum narrowed;
- in a request body: a new required property, a removed property (bodies refuse unknown
  fields), a changed type, a narrowed enum;
- in a success response: a removed property, a changed type, a narrowed enum.
Adding operations, optional inputs, response fields and statuses is fine.
"""

from __future__ import annotations

from typing import Any

from clinic.events.schema import breaking_changes

SERVICES = {
    "booking": "clinic.booking.main",
    "availability": "clinic.availability.main",
    "gateway": "clinic.gateway.main",
}


def current(service: str) -> dict[str, Any]:
    import importlib

    module = importlib.import_module(SERVICES[service])
    schema: dict[str, Any] = module.create_app().openapi()
    return schema


def _with_defs(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return {"$defs": document.get("components", {}).get("schemas", {}), **schema}


def _json_schema(part: dict[str, Any]) -> dict[str, Any] | None:
    for media in ("application/json", "application/problem+json"):
        found = part.get("content", {}).get(media, {}).get("schema")
        if found is not None:
            return dict(found)
    return None


def openapi_breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for path, operations in old.get("paths", {}).items():
        for method, old_op in operations.items():
            new_op = new.get("paths", {}).get(path, {}).get(method)
            where = f"{method.upper()} {path}"
            if new_op is None:
                problems.append(f"{where}: operation removed")
                continue
            problems += _parameters(old, new, old_op, new_op, where)
            old_body = _json_schema(old_op.get("requestBody", {}))
            new_body = _json_schema(new_op.get("requestBody", {}))
            if old_body is None and new_body is not None and new_op["requestBody"].get("required"):
                problems.append(f"{where}: a required request body was added")
            if old_body is not None and new_body is not None:
                problems += breaking_changes(
                    _with_defs(old, old_body), _with_defs(new, new_body), f"{where} body"
                )
            for status, old_response in old_op.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                old_schema = _json_schema(old_response)
                new_response = new_op.get("responses", {}).get(status)
                if new_response is None:
                    problems.append(f"{where}: success status {status} removed")
                    continue
                new_schema = _json_schema(new_response)
                if old_schema is not None and new_schema is not None:
                    problems += breaking_changes(
                        _with_defs(old, old_schema),
                        _with_defs(new, new_schema),
                        f"{where} {status}",
                    )
    return problems


def _parameters(
    old: dict[str, Any],
    new: dict[str, Any],
    old_op: dict[str, Any],
    new_op: dict[str, Any],
    where: str,
) -> list[str]:
    problems = []
    old_params = {(p["in"], p["name"]): p for p in old_op.get("parameters", [])}
    new_params = {(p["in"], p["name"]): p for p in new_op.get("parameters", [])}
    for key, param in new_params.items():
        if param.get("required") and not old_params.get(key, {}).get("required"):
            problems.append(f"{where}: parameter {key[1]} is now required")
    for key, param in old_params.items():
        if key not in new_params:
            problems.append(f"{where}: parameter {key[1]} removed")
            continue
        problems += breaking_changes(
            _with_defs(old, param.get("schema", {})),
            _with_defs(new, new_params[key].get("schema", {})),
            f"{where} parameter {key[1]}",
        )
    return problems
