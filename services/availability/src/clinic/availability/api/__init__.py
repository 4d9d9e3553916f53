"""The availability service's internal HTTP API."""
