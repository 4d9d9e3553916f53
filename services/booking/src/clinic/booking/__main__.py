"""`python -m clinic.booking`: serve on BOOKING_HOST:BOOKING_PORT."""

from clinic.booking.main import create_app
from clinic.booking.settings import BookingSettings
from clinic.platform.service import serve

serve(create_app, BookingSettings())
