"""The CapabilityStatement (``/metadata``), written from what the code supports: the search
parameters and includes of ``search``, the operations the routes serve. Nothing is listed
that the server does not do."""

from __future__ import annotations

from typing import Any

from clinic.emr_bridge.api.auth import capability_security
from clinic.emr_bridge.audit import SEARCH_PARAMETERS as AUDIT_SEARCH
from clinic.emr_bridge.fhir import SYSTEM, validated
from clinic.emr_bridge.search import COMMON, INCLUDES, PARAMETERS

SOFTWARE_VERSION = "1.0.0"

OPERATIONS: dict[str, list[tuple[str, str]]] = {
    "Appointment": [
        (
            "find",
            "Proposed appointments between start and end (IHE ITI-115; startTime and "
            "endTime accepted); GET or POST.",
        ),
        ("hold", "Hold a proposed appointment (ITI-116): pending, blocking the time."),
        ("book", "Book a proposal, a hold or a whole Appointment; modify or cancel one (ITI-117)."),
        ("cancel", "Cancel an appointment (instance level; a vendor spelling)."),
    ]
}
"""Resource type -> (operation name, what it does), as the routes serve them."""

SYSTEM_OPERATIONS: list[tuple[str, str]] = []
UPDATES = frozenset({"Patient"})
"""Types an EMR may update (where the organisation made it the source of truth)."""


def _interactions(resource_type: str) -> list[dict[str, Any]]:
    codes = ["read", "vread", "history-instance", "search-type"]
    if resource_type in UPDATES:
        codes.append("update")
    return [{"code": c} for c in codes]


def capability_statement(base_url: str, published: str) -> dict[str, Any]:
    resources = []
    for resource_type, parameters in sorted(PARAMETERS.items()):
        entry: dict[str, Any] = {
            "type": resource_type,
            "interaction": _interactions(resource_type),
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": False,
            "conditionalRead": "not-supported",
            "conditionalUpdate": False,
            "searchParam": [
                {"name": p.name, "type": p.type, "documentation": p.documentation}
                for p in (*COMMON, *parameters)
            ],
        }
        if resource_type in INCLUDES:
            entry["searchInclude"] = list(INCLUDES[resource_type])
        operations = OPERATIONS.get(resource_type, [])
        if operations:
            entry["operation"] = [
                {
                    "name": name,
                    "definition": f"{SYSTEM}/OperationDefinition/{name}",
                    "documentation": doc,
                }
                for name, doc in operations
            ]
        resources.append(entry)
    resources.append(
        {
            "type": "AuditEvent",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": name, "type": "token" if name != "date" else "date", "documentation": doc}
                for name, doc in AUDIT_SEARCH.items()
            ],
        }
    )
    resources.sort(key=lambda r: str(r["type"]))
    rest: dict[str, Any] = {
        "mode": "server",
        "security": capability_security(f"{base_url}/auth/token"),
        "documentation": "Scheduling for EMRs: booking decides every change; searches read "
        "the bridge's projection of booking's facts.",
        "resource": resources,
    }
    if SYSTEM_OPERATIONS:
        rest["operation"] = [
            {
                "name": name,
                "definition": f"{SYSTEM}/OperationDefinition/{name}",
                "documentation": doc,
            }
            for name, doc in SYSTEM_OPERATIONS
        ]
    return validated(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": published,
            "publisher": "clinic platform",
            "kind": "instance",
            "software": {"name": "clinic emr-bridge", "version": SOFTWARE_VERSION},
            "implementation": {
                "description": "clinic emr-bridge FHIR R4 endpoint",
                "url": base_url,
            },
            "fhirVersion": "4.0.1",
            "format": ["json", "application/fhir+json"],
            "rest": [rest],
        }
    )
