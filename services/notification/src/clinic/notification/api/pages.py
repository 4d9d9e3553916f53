"""The pages a patient sees after following a link, in the message's language: what the link
will do (with one button), what it did, or why it cannot (the problem's title and detail).
HTML-escaped (Jinja2 autoescape), never cached, never indexed, never leaking the token in a
Referer."""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi.responses import HTMLResponse

from clinic.notification.texts import when

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "accept": "Take this appointment",
        "accept.button": "Yes, book this time for me",
        "accept.done": "It is yours: the appointment is booked.",
        "confirm": "Confirm your appointment",
        "confirm.button": "Yes, I will come",
        "confirm.done": "Thank you: your appointment is confirmed.",
        "cancel": "Cancel your appointment",
        "cancel.button": "Cancel the appointment",
        "cancel.done": "Your appointment is cancelled.",
        "reschedule": "Choose another time",
        "reschedule.button": "Move my appointment",
        "reschedule.done": "Your appointment has moved.",
        "reschedule.none": "No other time is free in the next two weeks; please call the clinic.",
        "unsubscribe": "Stop these messages",
        "unsubscribe.button": "Stop messages to this address",
        "unsubscribe.done": "You will get no more messages at this address.",
        "problem": "This did not work",
    },
    "de": {
        "accept": "Diesen Termin annehmen",
        "accept.button": "Ja, diesen Termin für mich buchen",
        "accept.done": "Er gehört Ihnen: der Termin ist gebucht.",
        "confirm": "Termin bestätigen",
        "confirm.button": "Ja, ich komme",
        "confirm.done": "Danke: Ihr Termin ist bestätigt.",
        "cancel": "Termin absagen",
        "cancel.button": "Termin absagen",
        "cancel.done": "Ihr Termin ist abgesagt.",
        "reschedule": "Andere Zeit wählen",
        "reschedule.button": "Termin verschieben",
        "reschedule.done": "Ihr Termin wurde verschoben.",
        "reschedule.none": "In den nächsten zwei Wochen ist keine andere Zeit frei; "
        "bitte rufen Sie die Praxis an.",
        "unsubscribe": "Keine Nachrichten mehr",
        "unsubscribe.button": "Nachrichten an diese Adresse beenden",
        "unsubscribe.done": "Sie erhalten an diese Adresse keine Nachrichten mehr.",
        "problem": "Das hat nicht geklappt",
    },
    "es": {
        "accept": "Aceptar esta cita",
        "accept.button": "Sí, reservar esta hora para mí",
        "accept.done": "Es suya: la cita está reservada.",
        "confirm": "Confirme su cita",
        "confirm.button": "Sí, asistiré",
        "confirm.done": "Gracias: su cita está confirmada.",
        "cancel": "Cancelar su cita",
        "cancel.button": "Cancelar la cita",
        "cancel.done": "Su cita está cancelada.",
        "reschedule": "Elija otra hora",
        "reschedule.button": "Cambiar mi cita",
        "reschedule.done": "Su cita se ha cambiado.",
        "reschedule.none": "No hay otra hora libre en las próximas dos semanas; "
        "llame a la clínica.",
        "unsubscribe": "Dejar de recibir mensajes",
        "unsubscribe.button": "No enviar más mensajes a esta dirección",
        "unsubscribe.done": "No recibirá más mensajes en esta dirección.",
        "problem": "No ha funcionado",
    },
}


def text(language: str, key: str) -> str:
    return TEXT.get(language, TEXT["en"]).get(key) or TEXT["en"][key]


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("clinic.notification", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def visit_line(row: dict[str, Any], language: str) -> str:
    facing = (row.get("facing") or {}).get(language, {})
    name = facing.get("name") or row.get("type_name") or ""
    at = when(row["start_at"], ZoneInfo(row["time_zone"]), language if language in TEXT else "en")
    return f"{name}, {at}, {row.get('location', '')}"


def page(
    status: int,
    language: str,
    title: str,
    *,
    visit: str = "",
    message: str = "",
    problem: str = "",
    button: str = "",
    choices: list[dict[str, str]] | None = None,
    organization: str = "",
    one_click: bool = False,
) -> HTMLResponse:
    values = {
        "language": language,
        "title": title,
        "visit": visit,
        "message": message,
        "problem": problem,
        "form": bool(button),
        "button": button,
        "choices": choices or [],
        "organization": organization,
        "one_click": one_click,
    }
    body = _environment().get_template("page.html").render(values)
    return HTMLResponse(body, status_code=status, headers=HEADERS)
