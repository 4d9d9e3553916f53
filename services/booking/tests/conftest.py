"""Booking test fixtures: an in-memory application with a controllable clock."""

import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from scenario import MONDAY, Clinic, Clock, at, build_clinic

from clinic.booking.application import Bookings


@pytest.fixture
def clock() -> Clock:
    return Clock(at(MONDAY, 7) - dt.timedelta(days=7))


@pytest.fixture
def app(clock: Clock) -> Bookings:
    return Bookings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)


@pytest.fixture
def clinic(app: Bookings, clock: Clock) -> Clinic:
    return build_clinic(app, clock)
