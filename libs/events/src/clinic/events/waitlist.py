"""Waitlist events, on ``booking.waitlist.v1``. Filled in by the booking issue."""
