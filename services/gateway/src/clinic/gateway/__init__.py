"""The gateway service: The one public REST API (/v1): authentication, roles, tenancy,
idempotency, validation, audit.
"""
