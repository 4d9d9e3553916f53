"""`python -m clinic.gateway`: serve on GATEWAY_HOST:GATEWAY_PORT."""

from clinic.gateway.main import create_app
from clinic.gateway.settings import GatewaySettings
from clinic.platform.service import serve

serve(create_app, GatewaySettings())
