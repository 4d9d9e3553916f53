"""Deploy tests import their helpers (``manifests``) from this folder. They need no PostgreSQL
and no Kafka: kustomize, kubernetes-validate, the operators' models (node) and hadolint."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
