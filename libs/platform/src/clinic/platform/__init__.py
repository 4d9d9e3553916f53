"""Wiring shared by clinic services: settings, logs, telemetry, metrics, health, PostgreSQL,
Kafka, idempotent consumers, and the local infrastructure ladder. No domain logic lives here."""
