"""JSON Schema export of every event, and the compatibility rules between two versions."""

from __future__ import annotations

from typing import Any

from clinic.events.catalog import payload_types
from clinic.events.envelope import Envelope


def event_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of the envelope and of every registered payload, by a stable name."""
    schemas: dict[str, dict[str, Any]] = {
        "Envelope": Envelope.model_json_schema(mode="serialization")
    }
    for (event_type, version), model in sorted(payload_types().items()):
        schema = model.model_json_schema(mode="serialization")
        schema["x-topic"] = str(model.topic)
        schemas[f"{event_type}.v{version}"] = schema
    return schemas


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """What a consumer written against ``old`` would trip over in ``new``.

    Breaking: a removed or renamed property, a changed type, a property that became required,
    a new required property, a narrowed enum. Adding optional properties is fine.
    """
    return _compare(old, new, old.get("$defs", {}), new.get("$defs", {}), path or "#")


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(schema["allOf"][0], defs)
    return schema


def _types(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        return set().union(*(_types(s, defs) for s in schema["anyOf"]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return set(kind)
    if kind is None:
        return {"object" if "properties" in schema else "any"}
    return {f"{kind}:{schema['format']}" if "format" in schema else kind}


def _compare(
    old: dict[str, Any],
    new: dict[str, Any],
    old_defs: dict[str, Any],
    new_defs: dict[str, Any],
    path: str,
) -> list[str]:
    old, new = _resolve(old, old_defs), _resolve(new, new_defs)
    problems: list[str] = []
    old_types, new_types = _types(old, old_defs), _types(new, new_defs)
    if not old_types <= new_types and "any" not in new_types:
        problems.append(f"{path}: type changed from {sorted(old_types)} to {sorted(new_types)}")
        return problems
    if "enum" in old and "enum" in new and not set(old["enum"]) <= set(new["enum"]):
        problems.append(
            f"{path}: enum values removed: {sorted(set(old['enum']) - set(new['enum']))}"
        )
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{path}/{name}: property removed or renamed")
        else:
            problems += _compare(
                old_props[name], new_props[name], old_defs, new_defs, f"{path}/{name}"
            )
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(new_required - old_required):
        what = "became required" if name in old_props else "new required property"
        problems.append(f"{path}/{name}: {what}")
    for key in ("items",):
        if key in old and key in new:
            problems += _compare(old[key], new[key], old_defs, new_defs, f"{path}[]")
    if "anyOf" in old and "anyOf" in new:
        # Compare object and enum variants by position: an optional nested model is
        # anyOf [model, null], an optional choice anyOf [enum, null].
        for i, (o, n) in enumerate(zip(old["anyOf"], new["anyOf"], strict=False)):
            variant = _resolve(o, old_defs)
            if "properties" in variant or "enum" in variant:
                problems += _compare(o, n, old_defs, new_defs, f"{path}|{i}")
    return problems
