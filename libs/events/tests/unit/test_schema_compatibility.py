"""The rules that decide whether a new schema breaks consumers of the old one."""

import copy
from typing import Any

from clinic.events.schema import breaking_changes, event_schemas

BASE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "appointment_id": {"type": "string", "format": "uuid"},
        "reason": {"type": "string"},
        "seats": {"type": "integer"},
        "status": {"enum": ["booked", "cancelled"], "type": "string"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["appointment_id", "reason"],
}


def changed(edit: Any) -> dict[str, Any]:
    schema = copy.deepcopy(BASE)
    edit(schema)
    return schema


def test_an_identical_schema_is_compatible() -> None:
    assert breaking_changes(BASE, copy.deepcopy(BASE)) == []


def test_adding_an_optional_field_is_compatible() -> None:
    new = changed(lambda s: s["properties"].update(channel={"type": "string"}))
    assert breaking_changes(BASE, new) == []


def test_removing_a_field_breaks_consumers() -> None:
    new = changed(lambda s: s["properties"].pop("seats"))
    assert breaking_changes(BASE, new) == ["#/seats: property removed or renamed"]


def test_renaming_a_field_breaks_consumers() -> None:
    def rename(s: dict[str, Any]) -> None:
        s["properties"]["cancel_reason"] = s["properties"].pop("reason")
        s["required"] = ["appointment_id", "cancel_reason"]

    problems = breaking_changes(BASE, changed(rename))
    assert "#/reason: property removed or renamed" in problems
    assert "#/cancel_reason: new required property" in problems


def test_changing_a_type_breaks_consumers() -> None:
    new = changed(lambda s: s["properties"].update(seats={"type": "string"}))
    assert breaking_changes(BASE, new) == ["#/seats: type changed from ['integer'] to ['string']"]


def test_a_new_required_field_breaks_consumers_of_old_events() -> None:
    def add_required(s: dict[str, Any]) -> None:
        s["properties"]["channel"] = {"type": "string"}
        s["required"].append("channel")

    assert breaking_changes(BASE, changed(add_required)) == ["#/channel: new required property"]


def test_making_an_optional_field_required_breaks_consumers() -> None:
    new = changed(lambda s: s["required"].append("seats"))
    assert breaking_changes(BASE, new) == ["#/seats: became required"]


def test_removing_an_enum_value_breaks_consumers() -> None:
    new = changed(lambda s: s["properties"]["status"].update(enum=["booked"]))
    assert breaking_changes(BASE, new) == ["#/status: enum values removed: ['cancelled']"]


def test_widening_a_type_to_nullable_is_compatible() -> None:
    new = changed(
        lambda s: s["properties"].update(seats={"anyOf": [{"type": "integer"}, {"type": "null"}]})
    )
    assert breaking_changes(BASE, new) == []


def test_nested_models_are_compared_through_their_definitions() -> None:
    old = {
        "$defs": {"P": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/P"}},
    }
    new = copy.deepcopy(old)
    del new["$defs"]["P"]["properties"]["a"]
    assert breaking_changes(old, new) == ["#/p/a: property removed or renamed"]


def test_every_registered_event_has_a_schema_that_names_its_topic() -> None:
    schemas = event_schemas()
    assert "Envelope" in schemas
    for name, schema in schemas.items():
        if name != "Envelope":
            assert schema["x-topic"].startswith("booking.")
            assert schema["x-topic"].endswith(".v1")
