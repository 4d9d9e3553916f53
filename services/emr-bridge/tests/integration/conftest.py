"""A database for the bridge's projection in a schema of its own, migrated."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from clinic.emr_bridge.schema import MIGRATIONS
from clinic.emr_bridge.settings import EmrBridgeSettings
from clinic.platform.consumer import CONSUMER_DDL
from clinic.platform.database import Database


@pytest.fixture
async def database(settings_for: Callable[..., Any]) -> AsyncIterator[Database]:
    settings = settings_for(EmrBridgeSettings)
    db = Database(settings.database_url, settings.schema_name, "emr-bridge-test", 4)
    await db.migrate([*CONSUMER_DDL, *MIGRATIONS])
    await db.pool.open(wait=True)
    yield db
    await db.close()
