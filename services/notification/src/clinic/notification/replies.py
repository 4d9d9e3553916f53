"""What a patient's SMS reply asks for, by the keywords carriers and SMS providers
recognise (CTIA; Twilio's defaults): opting out, opting back in, help, and ``C`` to confirm
the coming appointment. Pure."""

from __future__ import annotations

from typing import Literal

Intent = Literal["opt-out", "opt-in", "help", "confirm", "other"]

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN = frozenset({"START", "UNSTOP", "YES", "OPTIN"})
HELP = frozenset({"HELP", "INFO"})
CONFIRM = frozenset({"C", "CONFIRM", "JA", "SI", "SÍ"})


def intent(body: str) -> Intent:
    """The keyword is the whole reply, in any case, with spaces and punctuation around it."""
    word = body.strip().strip(".!").strip().upper()
    if word in OPT_OUT:
        return "opt-out"
    if word in OPT_IN:
        return "opt-in"
    if word in HELP:
        return "help"
    if word in CONFIRM:
        return "confirm"
    return "other"
