"""Signed action links: only what this service signed, unchanged and unexpired, is
accepted; nothing in a token can be altered to reach another organisation or appointment."""

import base64
import datetime as dt
import string
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinic.notification.links import ACTIONS, Link, LinkRefused, Signer, digest

NOW = dt.datetime(2027, 3, 1, 12, tzinfo=dt.UTC)
SIGNER = Signer("a-secret-of-sixteen-bytes-or-more")


def a_link(action: str = "confirm", expires: dt.datetime = NOW + dt.timedelta(days=2)) -> Link:
    return Link(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), action, expires)  # type: ignore[arg-type]


@pytest.mark.parametrize("action", ACTIONS)
def test_a_signed_link_reads_back_as_itself_until_it_expires(action: str) -> None:
    link = a_link(action, NOW + dt.timedelta(hours=1))
    token = SIGNER.sign(link)
    assert len(token) == 94
    assert token.replace("-", "").replace("_", "").isalnum()
    assert SIGNER.verify(token, NOW) == link
    with pytest.raises(LinkRefused) as refused:
        SIGNER.verify(token, NOW + dt.timedelta(hours=1))
    assert refused.value.reason == "expired"


@given(position=st.integers(0, 93), replacement=st.sampled_from("AQgw-_09"))
def test_changing_any_character_of_a_token_makes_it_refused(
    position: int, replacement: str
) -> None:
    token = SIGNER.sign(a_link())
    changed = token[:position] + replacement + token[position + 1 :]
    if changed != token:
        with pytest.raises(LinkRefused) as refused:
            SIGNER.verify(changed, NOW)
        assert refused.value.reason in ("tampered", "malformed")


def test_a_token_moved_to_another_organisation_or_appointment_fails_its_signature() -> None:
    link = a_link()
    raw = bytearray(base64.urlsafe_b64decode(SIGNER.sign(link) + "=="))
    raw[2:18] = uuid.uuid4().bytes  # another organisation, same tag
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(LinkRefused) as refused:
        SIGNER.verify(forged, NOW)
    assert refused.value.reason == "tampered"


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = Signer("another-secret-of-enough-length").sign(a_link())
    with pytest.raises(LinkRefused) as refused:
        SIGNER.verify(token, NOW)
    assert refused.value.reason == "tampered"


@pytest.mark.parametrize("token", ["", "x", "not a token", "%%%%", "é" * 94, "A" * 5000])
def test_anything_that_is_not_a_token_is_refused_as_malformed(token: str) -> None:
    with pytest.raises(LinkRefused) as refused:
        SIGNER.verify(token, NOW)
    assert refused.value.reason == "malformed"


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Signer("short")


def test_a_link_has_one_spelling_so_single_use_cannot_be_dodged() -> None:
    link = a_link()
    token = SIGNER.sign(link)
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    last = alphabet.index(token[-1])
    # 70 bytes leave four unused bits in base64's last character: 15 other spellings.
    others = [c for i, c in enumerate(alphabet) if i >> 4 == last >> 4 and i != last]
    assert len(others) == 15
    for other in others:
        with pytest.raises(LinkRefused):
            SIGNER.verify(token[:-1] + other, NOW)
    assert digest(link) == digest(SIGNER.verify(token, NOW))
    assert digest(link) != digest(Link(**{**link.__dict__, "action": "cancel"}))
