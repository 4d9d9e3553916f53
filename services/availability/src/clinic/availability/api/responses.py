"""What the availability API answers, as schemas for its OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clinic.events.free_start import FreeStart


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotsView(View):
    slots: list[FreeStart] = Field(description="Free starts, earliest first.")
    count: int


class NextAvailableView(View):
    by_location: dict[str, FreeStart | None] = Field(
        description="Location id -> its earliest free start (null when none is free)."
    )
    earliest: FreeStart | None


class RebuildFigures(View):
    source: Literal["booking", "topics"]
    events: int
    position: int | dict[str, int] = Field(
        description="Where the read ended: booking's notification id, or the end offset of "
        "each topic partition."
    )
    seconds: float
    read_seconds: float
    tail_seconds: float
    write_seconds: float
    log_seconds: float
    events_per_second: int | None
    rows: dict[str, int]
