"""Wiring shared by clinic services at run time: settings, logs, telemetry, metrics, health,
PostgreSQL, Kafka, idempotent consumers. No domain logic and no development tooling (that is
``clinic.devstack``) lives here."""
