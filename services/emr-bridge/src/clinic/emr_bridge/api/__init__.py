"""The bridge's HTTP API: FHIR R4 under /fhir/{organization}."""
