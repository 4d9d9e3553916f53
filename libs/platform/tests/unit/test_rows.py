"""Row operations applied in memory: upserts replace by key, prefix deletes and updates touch
exactly the rows whose key starts with the prefix, and text is made storable."""

from clinic.platform.rows import DeleteWhere, Rows, UpdateWhere, Upsert, storable

KEYS = {"claims": ("resource", "day", "appointment")}


def claim(resource: str, day: int, appointment: str, seats: int = 1) -> Upsert:
    return Upsert(
        "claims", {"resource": resource, "day": day, "appointment": appointment, "seats": seats}
    )


def test_an_upsert_replaces_the_row_with_the_same_key() -> None:
    rows = Rows(KEYS)

    rows.apply([claim("dr-a", 1, "x", seats=1), claim("dr-a", 1, "x", seats=2)])

    assert list(rows.rows["claims"].values()) == [
        {"resource": "dr-a", "day": 1, "appointment": "x", "seats": 2}
    ]


def test_prefix_operations_touch_only_the_rows_whose_key_starts_with_the_prefix() -> None:
    rows = Rows(KEYS)
    rows.apply([claim("dr-a", 1, "x"), claim("dr-a", 1, "y"), claim("dr-a", 2, "z")])
    rows.apply([claim("dr-b", 1, "x")])

    rows.apply([UpdateWhere("claims", ("dr-a",), {"seats": 3}), DeleteWhere("claims", ("dr-a", 1))])

    assert sorted((k, r["seats"]) for k, r in rows.rows["claims"].items()) == [
        (("dr-a", 2, "z"), 3),
        (("dr-b", 1, "x"), 1),
    ]
    assert rows.groups["claims"] == {
        ("dr-a", 2): {("dr-a", 2, "z")},
        ("dr-b", 1): {("dr-b", 1, "x")},
    }


def test_text_postgresql_cannot_store_is_replaced_and_the_rest_kept() -> None:
    assert storable({"name": "Dr\x00 A", "tags": ["ok", "bad\ud800"], "n": 3}) == {
        "name": "Dr\ufffd A",
        "tags": ["ok", "bad\ufffd"],
        "n": 3,
    }
