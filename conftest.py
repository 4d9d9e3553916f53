"""Root pytest configuration: the shared fixtures live in clinic.devstack.testing."""

pytest_plugins = ["clinic.devstack.testing"]
