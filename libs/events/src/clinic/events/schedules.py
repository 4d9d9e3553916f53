"""Schedule events, on ``booking.schedules.v1``. Filled in by the booking issue."""
