"""A database for availability's projection in a schema of its own, migrated."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from clinic.availability.settings import AvailabilitySettings
from clinic.availability.store import DDL
from clinic.platform.consumer import CONSUMER_DDL
from clinic.platform.database import Database


@pytest.fixture
async def database(settings_for: Callable[..., Any]) -> AsyncIterator[Database]:
    settings = settings_for(AvailabilitySettings)
    db = Database(settings.database_url, settings.schema_name, "availability-test", 4)
    await db.migrate([*CONSUMER_DDL, *DDL])
    await db.pool.open(wait=True)
    yield db
    await db.close()
