"""The gateway's process-level tests share one running platform per session."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from gateway_platform import gateway_platform

__all__ = ["gateway_platform"]
