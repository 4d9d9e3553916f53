"""Write the JSON Schema of every event to tests/contract/schemas/ and each service's OpenAPI
document to tests/contract/openapi/ (``make contract-snapshot``).

Run it after an additive change and commit the result; the contract tests refuse a breaking
change against the committed snapshot whatever this script writes.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from openapi_contract import SERVICES, current, openapi_breaking_changes

from clinic.events.schema import breaking_changes, event_schemas

SCHEMAS = Path(__file__).parent / "schemas"
OPENAPI = Path(__file__).parent / "openapi"


def main() -> int:
    SCHEMAS.mkdir(exist_ok=True)
    refused = 0
    for name, schema in event_schemas().items():
        path = SCHEMAS / f"{name}.json"
        if path.exists():
            problems = breaking_changes(json.loads(path.read_text()), schema)
            if problems:
                print(f"NOT rewriting {path.name}: breaking change {problems}", file=sys.stderr)
                refused += 1
                continue
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    OPENAPI.mkdir(exist_ok=True)
    for service in SERVICES:
        document = json.loads(json.dumps(current(service)))
        path = OPENAPI / f"{service}.json"
        if path.exists():
            problems = openapi_breaking_changes(json.loads(path.read_text()), document)
            if problems:
                print(f"NOT rewriting {path.name}: breaking change {problems}", file=sys.stderr)
                refused += 1
                continue
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path.name}")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
