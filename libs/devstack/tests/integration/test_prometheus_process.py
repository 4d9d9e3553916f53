"""The local Prometheus as `make up OBS=1` runs it: Debian's package unpacked under .local
(never installed system-wide), started on 127.0.0.1 scraping a service, found again by a
second start, stopped by pid leaving no process and no port; a rule file it refuses is
named. Needs no PostgreSQL or Kafka."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clinic.devstack.components import free_port, pid_alive, port_open
from clinic.devstack.prometheus import (
    PrometheusError,
    fetch,
    running_prometheus,
    start_prometheus,
    stop_prometheus,
)

EXPOSITION = b"""# HELP clinic_things_total Things.
# TYPE clinic_things_total counter
clinic_things_total{service="booking",kind="a"} 3.0
"""


class Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(EXPOSITION)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_package_is_unpacked_under_local_with_prometheus_and_promtool() -> None:
    binaries = fetch()
    assert binaries.prometheus.name == "prometheus"
    assert binaries.promtool.exists()
    assert ".local" in binaries.prometheus.parts
    assert binaries.version.startswith("2.")


def test_prometheus_scrapes_a_service_is_found_again_and_stops_by_pid(
    tmp_path: Path, service: str
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n"
        "      - alert: ThingsSeen\n        expr: clinic_things_total > 0\n"
        "        labels: {severity: warning}\n"
    )
    running = start_prometheus(tmp_path / "prom", {"booking": service}, rule_files=[rules])
    try:
        assert port_open("127.0.0.1", running.port)
        deadline = time.monotonic() + 30
        while not running.query("clinic_things_total"):
            assert time.monotonic() < deadline, "no scrape within 30 s"
            time.sleep(0.5)
        (series,) = running.query("clinic_things_total")
        # The service's own labels are kept; the job is the service's name.
        assert series["metric"]["service"] == "booking"
        assert series["metric"]["job"] == "booking"
        assert series["metric"]["kind"] == "a"
        assert [r["name"] for g in running.rules() for r in g["rules"]] == ["ThingsSeen"]
        # A second start finds it running and starts nothing new.
        again = start_prometheus(tmp_path / "prom", {"booking": service}, rule_files=[rules])
        assert again.pid == running.pid
        assert running_prometheus(tmp_path / "prom") is not None
    finally:
        stopped = stop_prometheus(tmp_path / "prom")
    assert stopped is not None
    assert str(running.pid) in stopped
    assert not pid_alive(running.pid)
    assert not port_open("127.0.0.1", running.port)
    assert (tmp_path / "prom" / "data").is_dir()  # its data stays
    assert stop_prometheus(tmp_path / "prom") is None


def test_a_rule_file_prometheus_refuses_is_named_and_nothing_keeps_running(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: sum(\n")
    port = free_port()
    with pytest.raises(PrometheusError, match=r"prometheus: exited.*broken\.yml"):
        start_prometheus(tmp_path / "prom", {}, port, rule_files=[broken])
    assert not port_open("127.0.0.1", port)
    assert running_prometheus(tmp_path / "prom") is None


def test_a_port_already_taken_is_named(tmp_path: Path, service: str) -> None:
    taken = int(service.rsplit(":", 1)[1])
    with pytest.raises(PrometheusError, match=f"port 127.0.0.1:{taken} is already in use"):
        start_prometheus(tmp_path / "prom", {}, taken)
