"""A database for notification's projection in a schema of its own, migrated."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from clinic.devstack.sinks import Sinks
from clinic.notification.settings import NotificationSettings
from clinic.notification.store import DDL
from clinic.platform.consumer import CONSUMER_DDL
from clinic.platform.database import Database


@pytest.fixture
async def database(settings_for: Callable[..., Any]) -> AsyncIterator[Database]:
    settings = settings_for(NotificationSettings)
    db = Database(settings.database_url, settings.schema_name, "notification-test", 4)
    await db.migrate([*CONSUMER_DDL, *DDL])
    await db.pool.open(wait=True)
    yield db
    await db.close()


@pytest.fixture
async def sinks() -> AsyncIterator[Sinks]:
    """The local SMTP server and SMS API, on free ports of 127.0.0.1."""
    running = await Sinks(refuse={}).start()
    yield running
    await running.stop()
