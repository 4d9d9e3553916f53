"""The booking service's internal HTTP API."""
