"""The schedule KPIs as Prometheus gauges, for the ops dashboards: per organisation and
location (never per patient or provider: those would be unbounded labels), over the trailing
``kpi_gauge_days`` up to today, computed every ``kpi_gauge_seconds``. A KPI with nothing to
measure (no denominator) is NaN."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from clinic.availability.kpis import KpiQuery, kpis
from clinic.availability.refresher import IndexRefresher
from clinic.platform.database import Database

log = logging.getLogger(__name__)
LABELS = ["organization", "location"]
RATES = (
    "no_show_rate",
    "utilisation",
    "cancellation_rate",
    "late_cancellation_rate",
    "reschedule_rate",
    "fill_rate",
)


class KpiGauges:
    def __init__(
        self,
        registry: CollectorRegistry,
        database: Database,
        refresher: IndexRefresher,
        interval: float,
        days: int,
    ) -> None:
        self.database = database
        self.refresher = refresher
        self.interval = interval
        self.days = days
        self.rates = {
            name: Gauge(
                f"clinic_kpi_{name}",
                f"Schedule KPI {name} over the trailing days (see clinic.availability.kpis).",
                LABELS,
                registry=registry,
            )
            for name in RATES
        }
        self.lead_time = Gauge(
            "clinic_kpi_lead_time_minutes",
            "Booking lead time (booked to start) over the trailing days.",
            [*LABELS, "quantile"],
            registry=registry,
        )
        self.holds = Gauge(
            "clinic_kpi_holds",
            "Holds placed over the trailing days, by what became of them.",
            [*LABELS, "outcome"],
            registry=registry,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kpi-gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                if self.refresher.loaded.is_set():
                    await self.update()
            except Exception:  # the gauges keep their last values; the next round retries
                log.exception("KPI gauges could not be computed")
            await asyncio.sleep(self.interval)

    async def update(self, today: dt.date | None = None) -> None:
        index = self.refresher.index
        last = today or dt.datetime.now(dt.UTC).date()
        first = last - dt.timedelta(days=self.days - 1)
        organizations = {location.organization_id for location in index.locations.values()}
        for organization in sorted(organizations, key=str):
            query = KpiQuery(organization, first, last, period="all", group_by="location")
            async with self.database.pool.connection() as conn:
                found = await kpis(conn, index, query)
            for bucket in found["buckets"]:
                self._set(str(organization), bucket["group"], bucket)

    def _set(self, organization: str, location: str, bucket: dict[str, Any]) -> None:
        labels = {"organization": organization, "location": location}
        for name in RATES:
            value = bucket[name]
            self.rates[name].labels(**labels).set(math.nan if value is None else value)
        for quantile, key in (("0.5", "median"), ("0.9", "p90")):
            value = bucket["lead_time_minutes"][key]
            self.lead_time.labels(**labels, quantile=quantile).set(
                math.nan if value is None else value
            )
        funnel = bucket["funnel"]
        for outcome in ("placed", "confirmed", "lapsed", "released"):
            self.holds.labels(**labels, outcome=outcome).set(funnel[f"holds_{outcome}"])
