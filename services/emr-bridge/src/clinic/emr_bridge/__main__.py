"""`python -m clinic.emr_bridge`: serve on EMR_BRIDGE_HOST:EMR_BRIDGE_PORT."""

from clinic.emr_bridge.main import create_app
from clinic.emr_bridge.settings import EmrBridgeSettings
from clinic.platform.service import serve

serve(create_app, EmrBridgeSettings())
