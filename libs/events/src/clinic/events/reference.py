"""Reference data events, on ``booking.reference.v1``. Filled in by the booking issue."""
