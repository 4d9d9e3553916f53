"""Booking's use cases by subject: each a short function ``(command, attempt) -> Decision``
(see ``clinic.booking.decision``), composed in ``clinic.booking.application``."""
