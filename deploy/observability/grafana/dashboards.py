"""The platform's Grafana dashboards as code (grafana-foundation-sdk), written as JSON into
``dashboards/`` beside this file:

    python deploy/observability/grafana/dashboards.py          # write the JSON files
    python deploy/observability/grafana/dashboards.py --check  # fail if they are stale

Every query reads only metrics the services export (``tests/observability`` checks each name
against the services' real ``/metrics`` and runs every query against a Prometheus scraping a
platform under load). Conventions: ``rate()`` over counters, ``histogram_quantile()`` over
``_bucket`` summed ``by (le, ...)``, ``$__rate_interval`` as the rate window, template
variables with an "All" of ``.*`` matched with ``=~``. A panel whose counter only appears
with its first event (dead letters, ACK failures, ...) ends in ``or vector(0)`` and says so.
"""

# ruff: noqa: E501 -- a PromQL query reads best on one line, as Grafana shows it.

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grafana_foundation_sdk.builders.bargauge import Panel as BarGauge
from grafana_foundation_sdk.builders.common import ReduceDataOptions, StackingConfig
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    BigValueColorMode,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
TAGS = ["clinic"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """One panel: what it shows (title), what it is for and how to read it (description),
    its unit (a Grafana unit id) and its queries."""

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"  # or "stat", "bargauge"
    span: int = 12
    height: int = 8
    thresholds: tuple[tuple[float, str], ...] = ()
    """(from value, colour) steps beyond the base green, for stat and bar gauges."""
    up_down: bool = False
    """Map 0 to "down" (red) and 1 to "up" (green)."""
    stack: bool = False


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str
    """A Grafana ``label_values(...)`` query."""


@dataclass
class Board:
    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    rows: list[tuple[str, list[Panel]]] = field(default_factory=list)


def q(expr: str, legend: str = "") -> Query:
    return Query(" ".join(expr.split()), legend)


# -- platform health ---------------------------------------------------------------------

SERVICE = 'service=~"$service"'


def platform_health() -> Board:
    board = Board(
        "clinic-platform-health",
        "Clinic / Platform health",
        "On call: is every service up, answering without errors and in time, and are "
        "booking's facts flowing through Kafka to every consumer?",
        (Variable("service", "Service", "label_values(http_requests_total, service)"),),
    )
    board.rows.append(
        (
            "Services",
            [
                Panel(
                    "Services up",
                    "1 when Prometheus scraped the service's /metrics at its last attempt. "
                    "A service down pages on call (alert ClinicServiceDown).",
                    "none",
                    (q(f"up{{{SERVICE}}}", "{{service}} {{instance}}"),),
                    kind="stat",
                    span=24,
                    height=4,
                    up_down=True,
                ),
                Panel(
                    "Requests per second by service",
                    "Every HTTP request each service answered (health checks and /metrics left "
                    "out), per second.",
                    "reqps",
                    (
                        q(
                            f"sum by (service) (rate(http_requests_total{{{SERVICE}}}[{RATE}]))",
                            "{{service}}",
                        ),
                    ),
                ),
                Panel(
                    "Server errors (5xx) by service",
                    "Share of each service's requests answered with a 5xx. 0 while none fail "
                    "(the 5xx series appears with the first one). Alert ClinicHttpErrorsHigh "
                    "above 5% for 5 minutes.",
                    "percentunit",
                    (
                        q(
                            f"""
                    (sum by (service) (rate(http_requests_total{{{SERVICE},status="5xx"}}[{RATE}]))
                      or sum by (service) (rate(http_requests_total{{{SERVICE}}}[{RATE}])) * 0)
                    / sum by (service) (rate(http_requests_total{{{SERVICE}}}[{RATE}]))
                """,
                            "{{service}}",
                        ),
                    ),
                ),
                Panel(
                    "Client errors (4xx) by service",
                    "Share of each service's requests refused as the client's mistake: "
                    "validation, not found, conflicts (a time already taken is a 409). A rise "
                    "after a release of an app points at that app.",
                    "percentunit",
                    (
                        q(
                            f"""
                    (sum by (service) (rate(http_requests_total{{{SERVICE},status="4xx"}}[{RATE}]))
                      or sum by (service) (rate(http_requests_total{{{SERVICE}}}[{RATE}])) * 0)
                    / sum by (service) (rate(http_requests_total{{{SERVICE}}}[{RATE}]))
                """,
                            "{{service}}",
                        ),
                    ),
                ),
                Panel(
                    "p99 latency by service",
                    "The time within which 99 in 100 requests were answered. Alert "
                    "ClinicHttpLatencyHigh above 1 s for 10 minutes.",
                    "s",
                    (
                        q(
                            f"""
                    histogram_quantile(0.99, sum by (service, le)
                      (rate(http_request_duration_seconds_bucket{{{SERVICE}}}[{RATE}])))
                """,
                            "{{service}}",
                        ),
                    ),
                ),
                Panel(
                    "p99 latency by route",
                    "The slowest routes: 99th percentile per service and route template "
                    "(10 slowest). Empty for a route with no request in the window.",
                    "s",
                    (
                        q(
                            f"""
                    topk(10, histogram_quantile(0.99, sum by (service, route, le)
                      (rate(http_request_duration_seconds_bucket{{{SERVICE}}}[{RATE}]))))
                """,
                            "{{service}} {{route}}",
                        ),
                    ),
                ),
                Panel(
                    "Server errors by route",
                    "5xx answers per second by service and route: where the errors of "
                    "ClinicHttpErrorsHigh come from. 0 while there are none.",
                    "reqps",
                    (
                        q(
                            f"""
                    sum by (service, route) (rate(http_requests_total{{{SERVICE},status="5xx"}}[{RATE}]))
                    or vector(0)
                """,
                            "{{service}} {{route}}",
                        ),
                    ),
                ),
                Panel(
                    "Requests by route and status",
                    "Requests per second by service, route and status class.",
                    "reqps",
                    (
                        q(
                            f"""
                    sum by (service, route, status) (rate(http_requests_total{{{SERVICE}}}[{RATE}]))
                """,
                            "{{service}} {{route}} {{status}}",
                        ),
                    ),
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Gateway",
            [
                Panel(
                    "Calls to the services behind the gateway",
                    "Calls from the gateway per second by service and outcome: the status "
                    "class of the final answer, or unavailable (no answer, or 502/503/504 after "
                    "the retries; alert ClinicGatewayUpstreamUnavailable).",
                    "reqps",
                    (
                        q(
                            f"sum by (service, outcome) (rate(gateway_upstream_requests_total[{RATE}]))",
                            "{{service}} {{outcome}}",
                        ),
                    ),
                ),
                Panel(
                    "p99 of calls to the services behind the gateway",
                    "How long each service took to answer the gateway, retries included.",
                    "s",
                    (
                        q(
                            f"""
                    histogram_quantile(0.99, sum by (service, le)
                      (rate(gateway_upstream_request_duration_seconds_bucket[{RATE}])))
                """,
                            "{{service}}",
                        ),
                    ),
                ),
                Panel(
                    "Refused before any route: tokens and rate limits",
                    "Requests the gateway refused per second: by token problem (missing, "
                    "invalid, expired, identity-provider-unavailable) and by rate limit met "
                    "(client, organization). 0 while none.",
                    "reqps",
                    (
                        q(
                            f"sum by (reason) (rate(gateway_auth_failures_total[{RATE}])) or vector(0)",
                            "token {{reason}}",
                        ),
                        q(
                            f"sum by (scope) (rate(gateway_rate_limited_total[{RATE}])) or vector(0)",
                            "rate limit {{scope}}",
                        ),
                    ),
                ),
                Panel(
                    "Retries and idempotent replays",
                    "Calls the gateway sent again (a refused connection, a timeout, a "
                    "502/503/504; 0 while none) and POSTs answered from the stored first answer "
                    "to their Idempotency-Key (a client retrying safely).",
                    "reqps",
                    (
                        q(
                            f"sum by (service) (rate(gateway_upstream_retries_total[{RATE}])) or vector(0)",
                            "retries {{service}}",
                        ),
                        q(f"sum(rate(gateway_idempotent_replays_total[{RATE}]))", "replays"),
                    ),
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Event flow",
            [
                Panel(
                    "Relay: events waiting to be published",
                    "Events booking recorded but has not yet published to Kafka, and the age of "
                    "the oldest. Near 0 when healthy; alert ClinicRelayStalled when the oldest "
                    "waits over a minute.",
                    "short",
                    (q("max(relay_lag_events)", "events waiting"),),
                    span=8,
                ),
                Panel(
                    "Relay: age of the oldest unpublished event",
                    "0 when caught up. Alert ClinicRelayStalled above 60 s for 2 minutes.",
                    "s",
                    (q("max(relay_lag_seconds)", "oldest waiting"),),
                    span=8,
                ),
                Panel(
                    "Relay: leader",
                    "Booking replicas holding the relay lock: exactly 1 when healthy (alert "
                    "ClinicRelayNoLeader at 0).",
                    "none",
                    (q("sum(relay_leader)", "leaders"),),
                    kind="stat",
                    span=8,
                    thresholds=((1, "green"), (2, "red")),
                ),
                Panel(
                    "Relay: published per topic",
                    "Events per second the broker acknowledged, by topic; failed batches "
                    "(retried) and republishes from the event store.",
                    "ops",
                    (
                        q(f"sum by (topic) (rate(relay_published_total[{RATE}]))", "{{topic}}"),
                        q(f"sum(rate(relay_errors_total[{RATE}]))", "failed batches"),
                        q(f"sum(rate(relay_republish_total[{RATE}]))", "republishes"),
                    ),
                ),
                Panel(
                    "Consumer lag in records",
                    "Records on the broker each consumer group has not consumed, summed over "
                    "partitions (measured from the broker). Alert ClinicConsumerLagMessages "
                    "above 1000 for 10 minutes.",
                    "short",
                    (q("sum by (group) (kafka_consumer_lag_messages)", "{{group}}"),),
                ),
                Panel(
                    "Consumer lag in seconds",
                    "Age of the oldest record each group has not consumed (0 when caught up): "
                    "how late search, notifications and the EMR feed are. Alert "
                    "ClinicConsumerLagSeconds above 2 minutes (15: critical).",
                    "s",
                    (q("max by (group) (kafka_consumer_lag_seconds)", "{{group}}"),),
                ),
                Panel(
                    "Events applied by consumer",
                    "Events per second each projection handled, by outcome: applied, duplicate "
                    "(a redelivery, changed nothing) or dead_lettered.",
                    "ops",
                    (
                        q(
                            f"sum by (consumer, outcome) (rate(projection_events_total[{RATE}]))",
                            "{{consumer}} {{outcome}}",
                        ),
                    ),
                ),
                Panel(
                    "p99 time to apply an event",
                    "99th percentile of the time a projection took to apply one event, retries "
                    "included.",
                    "s",
                    (
                        q(
                            f"""
                    histogram_quantile(0.99, sum by (consumer, le)
                      (rate(projection_event_duration_seconds_bucket[{RATE}])))
                """,
                            "{{consumer}}",
                        ),
                    ),
                ),
                Panel(
                    "Dead letters and retries",
                    "Messages each projection parked after its retries (since the service "
                    "started; any new one alerts ClinicProjectionDeadLetters; GET "
                    "/operations/dead-letters on the service lists them, POST "
                    "/operations/dead-letters/replay applies them again) and handler retries "
                    "per second. 0 while none: these counters appear with their first event.",
                    "short",
                    (
                        q(
                            "sum by (consumer, event_type) (projection_dead_letters_total) or vector(0)",
                            "dead letters {{consumer}} {{event_type}}",
                        ),
                        q(
                            f"sum by (consumer) (rate(projection_retries_total[{RATE}])) or vector(0)",
                            "retries/s {{consumer}}",
                        ),
                    ),
                ),
                Panel(
                    "Projection freshness",
                    "Age of the newest event in each projection's last applied batch, and the "
                    "time since it last applied one (grows on an idle platform: not an error by "
                    "itself).",
                    "s",
                    (
                        q(
                            "max by (consumer) (projection_event_lag_seconds)",
                            "event age {{consumer}}",
                        ),
                        q(
                            "time() - max by (consumer) (projection_last_applied_timestamp_seconds)",
                            "since last applied {{consumer}}",
                        ),
                    ),
                ),
                Panel(
                    "Projection rebuilds",
                    "Projection rebuilds run (availability's POST /projection/rebuild) in "
                    "the dashboard's time range, by projection, source (booking or topics) "
                    "and outcome (ok, failed). 0 while none.",
                    "short",
                    (
                        q(
                            "sum by (projection, source, outcome) (increase(projection_rebuilds_total[$__range])) or vector(0)",
                            "{{projection}} from {{source}}: {{outcome}}",
                        ),
                    ),
                    kind="stat",
                    span=6,
                    height=6,
                ),
                Panel(
                    "Lag measured ago",
                    "Time since each consuming service last measured its group's lag from the "
                    "broker (every CONSUMER_LAG_INTERVAL_SECONDS). Alert "
                    "ClinicConsumerLagNotMeasured above 2 minutes.",
                    "s",
                    (
                        q(
                            "time() - max by (group) (kafka_consumer_lag_measured_timestamp_seconds)",
                            "{{group}}",
                        ),
                    ),
                    kind="stat",
                    span=6,
                    height=6,
                    thresholds=((60, "orange"), (120, "red")),
                ),
                Panel(
                    "Kafka messages received and published (FastStream)",
                    "Messages each service's Kafka subscribers received and its publishers "
                    "sent, per second, by topic (FastStream's own instrumentation).",
                    "ops",
                    (
                        q(
                            f"sum by (service, handler) (rate(faststream_received_messages_total{{{SERVICE}}}[{RATE}]))",
                            "received {{service}} {{handler}}",
                        ),
                        q(
                            f"sum by (service, destination) (rate(faststream_published_messages_total{{{SERVICE}}}[{RATE}]))",
                            "published {{service}} {{destination}}",
                        ),
                    ),
                    span=12,
                    height=6,
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Processes",
            [
                Panel(
                    "CPU by service",
                    "CPU seconds each service's processes used per second (1 = one core busy).",
                    "short",
                    (
                        q(
                            f"sum by (service) (rate(process_cpu_seconds_total{{{SERVICE}}}[{RATE}]))",
                            "{{service}}",
                        ),
                    ),
                    span=8,
                ),
                Panel(
                    "Resident memory by service",
                    "Memory each service's processes hold in RAM.",
                    "bytes",
                    (
                        q(
                            f"sum by (service) (process_resident_memory_bytes{{{SERVICE}}})",
                            "{{service}}",
                        ),
                    ),
                    span=8,
                ),
                Panel(
                    "Open file descriptors",
                    "Share of the allowed file descriptors each process has open (sockets "
                    "included); near 1, new connections fail.",
                    "percentunit",
                    (
                        q(
                            f"max by (service) (process_open_fds{{{SERVICE}}} / process_max_fds{{{SERVICE}}})",
                            "{{service}}",
                        ),
                    ),
                    span=8,
                ),
            ],
        )
    )
    return board


# -- booking flow ------------------------------------------------------------------------

CONFLICTS = "slot-taken|slot-contended|session-full"
COMMAND = 'command=~"$command"'


def booking_flow() -> Board:
    board = Board(
        "clinic-booking-flow",
        "Clinic / Booking flow",
        "Operations and product: are patients and front desks finding times and booking "
        "them? How many bookings, conflicts, holds, cancellations; how fast booking decides "
        "and how soon a booking leaves search.",
        (Variable("command", "Command", "label_values(booking_commands_total, command)"),),
    )
    board.rows.append(
        (
            "Bookings",
            [
                Panel(
                    "New appointments per minute",
                    "Appointments booked directly (book) and holds confirmed (confirm), per "
                    "minute, as booking decided them.",
                    "opm",
                    (
                        q(
                            f'sum by (command) (rate(booking_commands_total{{command=~"book|confirm",outcome="ok"}}[{RATE}])) * 60',
                            "{{command}}",
                        ),
                    ),
                    stack=True,
                ),
                Panel(
                    "Conflicts: a time already taken",
                    f"Share of book, hold and reschedule commands refused because the time was "
                    f"taken ({CONFLICTS.replace('|', ', ')}); the client was offered "
                    f"alternatives. A few percent is normal at busy times; 0 while none.",
                    "percentunit",
                    (
                        q(
                            f"""
                    (sum(rate(booking_commands_total{{command=~"book|hold|reschedule",outcome=~"{CONFLICTS}"}}[{RATE}]))
                      or vector(0))
                    / sum(rate(booking_commands_total{{command=~"book|hold|reschedule"}}[{RATE}]))
                """,
                            "conflicts",
                        ),
                    ),
                ),
                Panel(
                    "Commands by outcome",
                    "Booking commands per second by command and outcome (ok, or the problem "
                    "that refused it: slot-taken, hold-expired, version-mismatch, ...).",
                    "ops",
                    (
                        q(
                            f"sum by (command, outcome) (rate(booking_commands_total{{{COMMAND}}}[{RATE}]))",
                            "{{command}} {{outcome}}",
                        ),
                    ),
                ),
                Panel(
                    "Refusals by problem",
                    "Commands refused per second, by command and problem. 0 while none.",
                    "ops",
                    (
                        q(
                            f'sum by (command, outcome) (rate(booking_commands_total{{{COMMAND},outcome!="ok"}}[{RATE}])) or vector(0)',
                            "{{command}} {{outcome}}",
                        ),
                    ),
                ),
                Panel(
                    "Time to decide a command (p50, p99)",
                    "How long booking took to decide and save each command (median and 99th "
                    "percentile), by command.",
                    "s",
                    (
                        q(
                            f"histogram_quantile(0.5, sum by (command, le) (rate(booking_command_seconds_bucket{{{COMMAND}}}[{RATE}])))",
                            "p50 {{command}}",
                        ),
                        q(
                            f"histogram_quantile(0.99, sum by (command, le) (rate(booking_command_seconds_bucket{{{COMMAND}}}[{RATE}])))",
                            "p99 {{command}}",
                        ),
                    ),
                ),
                Panel(
                    "Cancellations, moves and the waitlist",
                    "Appointments cancelled and rescheduled, and waitlist entries joined and "
                    "left, per minute.",
                    "opm",
                    (
                        q(
                            f'sum by (command) (rate(booking_commands_total{{command=~"cancel|reschedule|join_waitlist|leave_waitlist",outcome="ok"}}[{RATE}])) * 60',
                            "{{command}}",
                        ),
                    ),
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Holds",
            [
                Panel(
                    "Holds placed, confirmed and expired",
                    "Holds placed and confirmed per minute, and holds booking's sweeper "
                    "recorded as expired (the patient never confirmed; the time is free again).",
                    "opm",
                    (
                        q(
                            f'sum(rate(booking_commands_total{{command="hold",outcome="ok"}}[{RATE}])) * 60',
                            "placed",
                        ),
                        q(
                            f'sum(rate(booking_commands_total{{command="confirm",outcome="ok"}}[{RATE}])) * 60',
                            "confirmed",
                        ),
                        q(f"sum(rate(booking_holds_swept_total[{RATE}])) * 60", "expired"),
                    ),
                ),
                Panel(
                    "Hold sweeps failing",
                    "Sweeps that failed per minute (the database unreachable); lapsed holds "
                    "keep their time blocked meanwhile. Alert ClinicHoldSweepFailing.",
                    "opm",
                    (
                        q(
                            f"sum(rate(booking_hold_sweep_errors_total[{RATE}])) * 60",
                            "failed sweeps",
                        ),
                    ),
                    span=6,
                ),
                Panel(
                    "Appointment directory behind",
                    "Events of booking's event store its appointment directory (which the "
                    "sweeper and appointment reads use) has not applied yet.",
                    "short",
                    (q("max(booking_directory_lag_events)", "events"),),
                    span=6,
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Search",
            [
                Panel(
                    "Searches per second",
                    "Free-time searches availability answered, by route (slots, next-available).",
                    "reqps",
                    (
                        q(
                            f'sum by (route) (rate(http_requests_total{{service="availability",route=~".*/(slots|next-available)"}}[{RATE}]))',
                            "{{route}}",
                        ),
                    ),
                    span=8,
                ),
                Panel(
                    "Search p99 latency",
                    "99th percentile of availability's search routes.",
                    "s",
                    (
                        q(
                            f"""
                    histogram_quantile(0.99, sum by (route, le)
                      (rate(http_request_duration_seconds_bucket{{service="availability",route=~".*/(slots|next-available)"}}[{RATE}])))
                """,
                            "{{route}}",
                        ),
                    ),
                    span=8,
                ),
                Panel(
                    "Booked to searchable",
                    "How long a booking takes to leave search: the age of the oldest record "
                    "availability has not consumed (0 when caught up) and of the newest event "
                    "it applied.",
                    "s",
                    (
                        q(
                            'max(kafka_consumer_lag_seconds{service="availability"})',
                            "oldest not consumed",
                        ),
                        q(
                            'max(projection_event_lag_seconds{consumer="availability"})',
                            "last applied event age",
                        ),
                    ),
                    span=8,
                ),
                Panel(
                    "Public API: booking routes",
                    "Requests per second the gateway answered on the booking routes of /v1, by "
                    "route and status class.",
                    "reqps",
                    (
                        q(
                            f'sum by (route, status) (rate(http_requests_total{{service="gateway",route=~"/v1/(holds|appointments|slots|waitlist-entries).*"}}[{RATE}]))',
                            "{{route}} {{status}}",
                        ),
                    ),
                    span=24,
                ),
            ],
        )
    )
    return board


# -- clinic KPIs -------------------------------------------------------------------------

WHERE = 'organization=~"$organization",location=~"$location"'
NAN = "Empty (NaN) for a location with nothing to measure in the window (no appointment there yet)."


def clinic_kpis() -> Board:
    board = Board(
        "clinic-kpis",
        "Clinic / KPIs",
        "Clinic managers and organisation admins: per location over the trailing "
        "AVAILABILITY_KPI_GAUGE_DAYS (30 by default), how many patients do not show, how "
        "full the calendars are, how often appointments are cancelled or moved, how far "
        "ahead patients book, how freed time is refilled, and what becomes of holds. "
        "Location and organisation are ids (GET /v1/locations names them).",
        (
            Variable(
                "organization", "Organisation", "label_values(clinic_kpi_utilisation, organization)"
            ),
            Variable(
                "location",
                "Location",
                'label_values(clinic_kpi_utilisation{organization=~"$organization"}, location)',
            ),
        ),
    )

    def rate_panel(metric: str, title: str, meaning: str) -> Panel:
        return Panel(
            title,
            f"{meaning} {NAN}",
            "percentunit",
            (q(f"clinic_kpi_{metric}{{{WHERE}}}", "{{location}}"),),
            kind="bargauge",
            span=8,
        )

    board.rows.append(
        (
            "Attendance and use",
            [
                rate_panel(
                    "no_show_rate",
                    "No-show rate",
                    "Share of past appointments the patient missed (no-shows among "
                    "attended and missed).",
                ),
                rate_panel(
                    "utilisation", "Utilisation", "Share of the providers' working minutes booked."
                ),
                rate_panel(
                    "fill_rate",
                    "Fill rate of freed time",
                    "Share of the minutes freed by cancellations and moves that were "
                    "booked again (the waitlist at work).",
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Changes",
            [
                rate_panel(
                    "cancellation_rate",
                    "Cancellation rate",
                    "Share of booked appointments cancelled.",
                ),
                rate_panel(
                    "late_cancellation_rate",
                    "Late cancellation rate",
                    "Share of booked appointments cancelled after the appointment "
                    "type's cancellation cut-off.",
                ),
                rate_panel(
                    "reschedule_rate",
                    "Reschedule rate",
                    "Share of booked appointments moved to another time.",
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Lead time and holds",
            [
                Panel(
                    "Booking lead time (median, p90)",
                    f"Minutes from booking to the appointment's start: median and 90th "
                    f"percentile, per location. {NAN}",
                    "m",
                    (q(f"clinic_kpi_lead_time_minutes{{{WHERE}}}", "{{location}} p{{quantile}}"),),
                    kind="bargauge",
                ),
                Panel(
                    "Holds by what became of them",
                    "Holds placed in the window, and how many were confirmed, lapsed (expired "
                    "unconfirmed) or released, over the selected locations.",
                    "short",
                    (q(f"sum by (outcome) (clinic_kpi_holds{{{WHERE}}})", "{{outcome}}"),),
                    kind="bargauge",
                ),
                Panel(
                    "Hold conversion",
                    f"Share of holds placed in the window that were confirmed, per location. {NAN}",
                    "percentunit",
                    (
                        q(
                            f"""
                    sum by (location) (clinic_kpi_holds{{{WHERE},outcome="confirmed"}})
                    / sum by (location) (clinic_kpi_holds{{{WHERE},outcome="placed"}})
                """,
                            "{{location}}",
                        ),
                    ),
                    kind="bargauge",
                ),
                Panel(
                    "No-show and cancellation rates over time",
                    f"The same gauges over the dashboard's time range, to see a trend. {NAN}",
                    "percentunit",
                    (
                        q(f"clinic_kpi_no_show_rate{{{WHERE}}}", "no-show {{location}}"),
                        q(f"clinic_kpi_cancellation_rate{{{WHERE}}}", "cancellation {{location}}"),
                    ),
                ),
            ],
        )
    )
    return board


# -- notification ------------------------------------------------------------------------

CHANNEL = 'channel=~"$channel"'


def notification() -> Board:
    board = Board(
        "clinic-notification",
        "Clinic / Notification",
        "Operations and patient communication: are confirmations, reminders and waitlist "
        "offers reaching patients by email and SMS, on time? Is the SMTP server or the SMS "
        "provider failing? What do patients do with the links?",
        (Variable("channel", "Channel", "label_values(notification_messages_total, channel)"),),
    )
    board.rows.append(
        (
            "Messages",
            [
                Panel(
                    "Messages by channel and outcome",
                    "Messages per minute by channel and outcome: sent, retried (a temporary "
                    "failure, sent again later), failed (given up), expired (too late to send), "
                    "skipped (no consent or no address).",
                    "opm",
                    (
                        q(
                            f"sum by (channel, outcome) (rate(notification_messages_total{{{CHANNEL}}}[{RATE}])) * 60",
                            "{{channel}} {{outcome}}",
                        ),
                    ),
                ),
                Panel(
                    "Sent and failed by kind",
                    "Messages sent, retried and failed per minute by what they are for "
                    "(confirmation, reminder, offer, rescheduled, cancelled, ...).",
                    "opm",
                    (
                        q(
                            f'sum by (kind, outcome) (rate(notification_messages_total{{{CHANNEL},outcome=~"sent|retried|failed"}}[{RATE}])) * 60',
                            "{{kind}} {{outcome}}",
                        ),
                    ),
                ),
                Panel(
                    "Failing sends by channel",
                    "Share of send attempts that were retried or failed, per channel: the "
                    "SMTP server (email) or the SMS provider refusing or unreachable. 0 while "
                    "none fail. Alerts ClinicSmtpFailing, ClinicSmsFailing above 50%.",
                    "percentunit",
                    (
                        q(
                            f"""
                    (sum by (channel) (rate(notification_messages_total{{{CHANNEL},outcome=~"retried|failed"}}[{RATE}]))
                      or sum by (channel) (rate(notification_messages_total{{{CHANNEL}}}[{RATE}])) * 0)
                    / sum by (channel) (rate(notification_messages_total{{{CHANNEL},outcome=~"sent|retried|failed"}}[{RATE}]))
                """,
                            "{{channel}}",
                        ),
                    ),
                ),
                Panel(
                    "Emails failing at the SMTP server",
                    "Email sends retried or failed in the dashboard's time range, by kind. 0 "
                    "while none.",
                    "short",
                    (
                        q(
                            'sum by (kind, outcome) (increase(notification_messages_total{channel="email",outcome=~"retried|failed"}[$__range])) or vector(0)',
                            "{{kind}} {{outcome}}",
                        ),
                    ),
                    kind="stat",
                ),
                Panel(
                    "Due to sent (p50, p90, p99)",
                    "From a message's due time to the provider taking it, per channel. Alert "
                    "ClinicNotificationsLate when p90 is over 10 minutes.",
                    "s",
                    (
                        q(
                            f"histogram_quantile(0.5, sum by (channel, le) (rate(notification_dispatch_lag_seconds_bucket{{{CHANNEL}}}[{RATE}])))",
                            "p50 {{channel}}",
                        ),
                        q(
                            f"histogram_quantile(0.9, sum by (channel, le) (rate(notification_dispatch_lag_seconds_bucket{{{CHANNEL}}}[{RATE}])))",
                            "p90 {{channel}}",
                        ),
                        q(
                            f"histogram_quantile(0.99, sum by (channel, le) (rate(notification_dispatch_lag_seconds_bucket{{{CHANNEL}}}[{RATE}])))",
                            "p99 {{channel}}",
                        ),
                    ),
                ),
                Panel(
                    "Expired and skipped",
                    "Messages never sent in the dashboard's time range: expired (due over an "
                    "hour ago, or the appointment started) and skipped (no consent, no "
                    "address, opted out). 0 while none.",
                    "short",
                    (
                        q(
                            f'sum by (channel, outcome) (increase(notification_messages_total{{{CHANNEL},outcome=~"expired|skipped"}}[$__range])) or vector(0)',
                            "{{channel}} {{outcome}}",
                        ),
                    ),
                    kind="stat",
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Patients' answers and the waitlist",
            [
                Panel(
                    "Links followed",
                    "Action links patients followed per minute (confirm, move, cancel, "
                    "unsubscribe), by outcome (shown, done, or why not: link-used, "
                    "link-expired, booking-refused). 0 while none.",
                    "opm",
                    (
                        q(
                            f"sum by (action, outcome) (rate(notification_links_total[{RATE}])) * 60 or vector(0)",
                            "{{action}} {{outcome}}",
                        ),
                    ),
                ),
                Panel(
                    "Waitlist offers",
                    "Freed times noticed, and waitlist offers per minute by outcome: made, "
                    "accepted (a waitlist fill), lapsed, declined, refused. 0 while none.",
                    "opm",
                    (
                        q(f"sum(rate(notification_freed_times_total[{RATE}])) * 60", "freed times"),
                        q(
                            f"sum by (outcome) (rate(notification_waitlist_offers_total[{RATE}])) * 60 or vector(0)",
                            "offers {{outcome}}",
                        ),
                    ),
                ),
                Panel(
                    "Waitlist fills",
                    "Offers accepted in the dashboard's time range: freed time a waitlisted "
                    "patient took. 0 while none.",
                    "short",
                    (
                        q(
                            'sum(increase(notification_waitlist_offers_total{outcome="accepted"}[$__range])) or vector(0)',
                            "accepted",
                        ),
                    ),
                    kind="stat",
                    span=6,
                ),
                Panel(
                    "Notification behind booking",
                    "Age of the oldest record notification has not consumed: how late "
                    "confirmations are planned after a booking (0 when caught up).",
                    "s",
                    (
                        q(
                            'max(kafka_consumer_lag_seconds{service="notification"})',
                            "oldest not consumed",
                        ),
                    ),
                    span=6,
                ),
            ],
        )
    )
    return board


# -- EMR bridge --------------------------------------------------------------------------

ENDPOINT = 'endpoint=~"$endpoint"'


def emr_bridge() -> Board:
    board = Board(
        "clinic-emr-bridge",
        "Clinic / EMR bridge",
        "Integration engineers: are the EMRs receiving and acknowledging our HL7 SIU feed, "
        "what do they refuse, are their FHIR requests and inbound HL7 messages answered, "
        "and how far behind booking is the bridge?",
        (Variable("endpoint", "HL7 endpoint", "label_values(hl7_peer_up, endpoint)"),),
    )
    board.rows.append(
        (
            "HL7 v2 feed to the EMRs",
            [
                Panel(
                    "HL7 endpoints up",
                    "1 when the last attempt to reach the EMR behind the endpoint got an "
                    "answer. Alert ClinicHl7PeerDown at 0 for 5 minutes.",
                    "none",
                    (q(f"max by (endpoint) (hl7_peer_up{{{ENDPOINT}}})", "{{endpoint}}"),),
                    kind="stat",
                    span=24,
                    height=4,
                    up_down=True,
                ),
                Panel(
                    "SIU messages by trigger and outcome",
                    "SIU messages per minute by trigger (S12 new, S13 moved, S14 changed, S15 "
                    "cancelled, S17 deleted, S26 no-show, S23/S24 blocked) and outcome: acked, "
                    "error (AE, tried again), rejected (parked), failed (no connection or no "
                    "ACK, tried again).",
                    "opm",
                    (
                        q(
                            f"sum by (trigger, outcome) (rate(hl7_messages_total[{RATE}])) * 60",
                            "{{trigger}} {{outcome}}",
                        ),
                    ),
                ),
                Panel(
                    "ACK round trip (p50, p99)",
                    "From sending an SIU message to the EMR's ACK.",
                    "s",
                    (
                        q(
                            f"histogram_quantile(0.5, sum by (le) (rate(hl7_ack_seconds_bucket[{RATE}])))",
                            "p50",
                        ),
                        q(
                            f"histogram_quantile(0.99, sum by (le) (rate(hl7_ack_seconds_bucket[{RATE}])))",
                            "p99",
                        ),
                    ),
                ),
                Panel(
                    "ACK failures by endpoint",
                    "SIU messages an EMR answered AE or AR in the dashboard's time range, per "
                    "endpoint (alert ClinicHl7AckFailures). 0 while none: the counter appears "
                    "with the first failure.",
                    "short",
                    (
                        q(
                            f"sum by (endpoint) (increase(hl7_ack_failures_total{{{ENDPOINT}}}[$__range])) or vector(0)",
                            "{{endpoint}}",
                        ),
                    ),
                    kind="stat",
                ),
                Panel(
                    "Parked messages",
                    "SIU messages parked (the EMR rejected them) in the dashboard's time "
                    "range, by trigger; each waits for ops to replay or skip it (alert "
                    "ClinicHl7MessagesParked). 0 while none.",
                    "short",
                    (
                        q(
                            'sum by (trigger) (increase(hl7_messages_total{outcome="rejected"}[$__range])) or vector(0)',
                            "{{trigger}}",
                        ),
                    ),
                    kind="stat",
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Requests from the EMRs",
            [
                Panel(
                    "Inbound HL7 messages",
                    "HL7 messages the EMRs sent us per minute (SRM booking requests, ADT "
                    "demographics), by type and our answer (AA, AE, AR).",
                    "opm",
                    (
                        q(
                            f"sum by (type, ack) (rate(hl7_inbound_messages_total[{RATE}])) * 60",
                            "{{type}} {{ack}}",
                        ),
                    ),
                ),
                Panel(
                    "FHIR requests",
                    "FHIR API requests per second by route and status class.",
                    "reqps",
                    (
                        q(
                            f'sum by (route, status) (rate(http_requests_total{{service="emr-bridge",route=~"/fhir/.*"}}[{RATE}]))',
                            "{{route}} {{status}}",
                        ),
                    ),
                ),
                Panel(
                    "FHIR p99 latency",
                    "99th percentile of the FHIR API's answers, by route.",
                    "s",
                    (
                        q(
                            f"""
                    histogram_quantile(0.99, sum by (route, le)
                      (rate(http_request_duration_seconds_bucket{{service="emr-bridge",route=~"/fhir/.*"}}[{RATE}])))
                """,
                            "{{route}}",
                        ),
                    ),
                ),
                Panel(
                    "FHIR resource versions written",
                    "New versions of FHIR resources the bridge's projection wrote per minute, "
                    "by resource type.",
                    "opm",
                    (
                        q(
                            f"sum by (resource_type) (rate(fhir_resource_versions_total[{RATE}])) * 60",
                            "{{resource_type}}",
                        ),
                    ),
                ),
            ],
        )
    )
    board.rows.append(
        (
            "Behind booking",
            [
                Panel(
                    "Bridge behind booking",
                    "Age of the oldest record the bridge has not consumed (0 when caught up): "
                    "how late EMRs learn of bookings.",
                    "s",
                    (
                        q(
                            'max(kafka_consumer_lag_seconds{service="emr-bridge"})',
                            "oldest not consumed",
                        ),
                    ),
                ),
                Panel(
                    "Bridge dead letters",
                    "Messages the bridge's projection parked since it started (alert "
                    "ClinicProjectionDeadLetters). 0 while none.",
                    "short",
                    (
                        q(
                            'sum by (event_type) (projection_dead_letters_total{consumer="emr-bridge"}) or vector(0)',
                            "{{event_type}}",
                        ),
                    ),
                    kind="stat",
                ),
            ],
        )
    )
    return board


BOARDS = {
    "platform-health": platform_health,
    "booking-flow": booking_flow,
    "clinic-kpis": clinic_kpis,
    "notification": notification,
    "emr-bridge": emr_bridge,
}


# -- building ----------------------------------------------------------------------------


def _thresholds(steps: tuple[tuple[float, str], ...], base: str = "green") -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [Threshold(value=None, color=base), *(Threshold(value=v, color=c) for v, c in steps)]
        )
    )


UP_DOWN = [
    ValueMap(
        options={
            "0": ValueMappingResult(text="down", color="red", index=0),
            "1": ValueMappingResult(text="up", color="green", index=1),
        }
    )
]


LAST = ReduceDataOptions().calcs(["lastNotNull"]).values(False)
"""A stat or bar gauge shows each series' last value (its queries are instant)."""


def _panel(panel: Panel) -> Timeseries | Stat | BarGauge:
    builder: Timeseries | Stat | BarGauge
    if panel.kind == "stat":
        builder = Stat().color_mode(BigValueColorMode.BACKGROUND).reduce_options(LAST)
    elif panel.kind == "bargauge":
        builder = BarGauge().display_mode(BarGaugeDisplayMode.GRADIENT).min(0).reduce_options(LAST)
    else:
        builder = Timeseries().fill_opacity(10).line_width(1)
        if panel.stack:
            builder = builder.stacking(StackingConfig().mode(StackingMode.NORMAL))
    builder = (
        builder.title(panel.title)
        .description(panel.description)
        .unit(panel.unit)
        .datasource(DATASOURCE)
        .span(panel.span)
        .height(panel.height)
    )
    if panel.unit == "percentunit" and panel.kind == "bargauge":
        builder = builder.max(1)
    if panel.thresholds:
        builder = builder.thresholds(_thresholds(panel.thresholds))
    if panel.up_down:
        builder = builder.mappings(UP_DOWN).thresholds(_thresholds(((1, "green"),), base="red"))
    for index, query in enumerate(panel.queries):
        target = (
            PrometheusQuery()
            .expr(query.expr)
            .legend_format(query.legend or "__auto")
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
        )
        target = target.instant() if panel.kind in ("stat", "bargauge") else target.range()
        builder = builder.with_target(target)
    return builder


def build(board: Board) -> Dashboard:
    dashboard = (
        Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(TAGS)
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    for variable in board.variables:
        dashboard = dashboard.with_variable(
            QueryVariable(variable.name)
            .label(variable.label)
            .query(variable.query)
            .datasource(DATASOURCE)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
        )
    for title, panels in board.rows:
        dashboard = dashboard.with_row(Row(title))
        for panel in panels:
            dashboard = dashboard.with_panel(_panel(panel))
    return dashboard


def render(name: str) -> str:
    """The JSON of one dashboard, as committed."""
    model = build(BOARDS[name]()).build()
    return JSONEncoder(sort_keys=True, indent=2).encode(model) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    stale = []
    for name in BOARDS:
        path = OUT / f"{name}.json"
        text = render(name)
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if args.check:
            stale.append(path)
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True), str(path), "generated", n=1
                )
            )
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(
            f"stale: {', '.join(p.name for p in stale)}; run {Path(__file__).name}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
