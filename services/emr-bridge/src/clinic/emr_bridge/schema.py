"""Every table of the bridge, in the order they are created at start-up (and by the tests)."""

from clinic.emr_bridge import audit, credentials, inbound, operations, outbox, store

MIGRATIONS: list[str] = [
    *store.DDL,
    *operations.PROPOSALS_DDL,
    *outbox.DDL,
    *inbound.DDL,
    *credentials.CREDENTIALS_DDL,
    *audit.AUDIT_DDL,
]
