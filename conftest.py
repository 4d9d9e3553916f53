"""Root pytest configuration: the shared fixtures live in clinic.platform.testing."""

pytest_plugins = ["clinic.platform.testing"]
