"""Every FHIR example in the bridge's README is valid R4 (the models of fhir.resources and the
value sets the models leave unchecked), including the resources inside Parameters."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from clinic.emr_bridge.fhir import validated

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", README.read_text(), re.S)]


def test_the_readme_has_fhir_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("example", BLOCKS, ids=[b.get("resourceType", "?") for b in BLOCKS])
def test_each_example_is_valid_fhir_r4(example: dict[str, Any]) -> None:
    validated(example)
    for parameter in example.get("parameter", ()):
        if "resource" in parameter:
            validated(parameter["resource"])
