"""`python -m clinic.availability`: serve on AVAILABILITY_HOST:AVAILABILITY_PORT."""

from clinic.availability.main import create_app
from clinic.availability.settings import AvailabilitySettings
from clinic.platform.service import serve

serve(create_app, AvailabilitySettings())
