"""A local Prometheus from Debian's ``prometheus`` package, never installed system-wide.

:func:`fetch` runs ``apt-get download prometheus`` into a cache directory
(``.local/prometheus/<version>/``, or ``CLINIC_PROMETHEUS_CACHE_DIR``) and unpacks the
package there with ``dpkg -x``: no maintainer script runs, nothing is started, no file
outside the cache is written. A finished copy is reused by every later start and every state
directory. When the package lists are missing or stale, ``apt-get update`` runs once (as
root) and the download is tried again.

:func:`start_prometheus` writes ``prometheus.yml`` (one job per service, scraping its
``/metrics`` on 127.0.0.1 every few seconds, with a ``service`` label, and the repository's
alert rules), starts the server on 127.0.0.1 with its TSDB under the state directory, waits
until ``/-/ready`` answers and saves its pid; :func:`stop_prometheus` stops it by that pid.
:class:`LocalPrometheus` does both as a context manager, for tests.

``make up OBS=1`` calls :func:`start_prometheus` with the services it started; the
observability tests use :class:`LocalPrometheus` against the platform they run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from clinic.devstack.components import (
    InfrastructureError,
    free_port,
    pid_alive,
    port_open,
    stop_pid,
    tail,
)

PACKAGE = "prometheus"
REPO_ROOT = Path(__file__).resolve().parents[5]
RULES_GLOB = REPO_ROOT / "deploy" / "observability" / "prometheus" / "rules" / "*.yml"
DEFAULT_PORT = 9090
SCRAPE_INTERVAL = "5s"
"""Short, for a local platform: a panel's ``rate()`` has two samples within seconds."""
RETENTION = "7d"
START_TIMEOUT_SECONDS = 60.0
APT_TIMEOUT_SECONDS = 300.0
STATE_FILE = "prometheus.json"


class PrometheusError(InfrastructureError):
    def __init__(self, reason: str) -> None:
        super().__init__("prometheus", reason)


# -- the binaries -------------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusBinaries:
    """``prometheus`` and ``promtool`` of one unpacked Debian package."""

    version: str
    """The Debian version, e.g. ``2.42.0+ds-5+deb12u1``."""
    prometheus: Path
    promtool: Path

    @property
    def flavor(self) -> str:
        return f"prometheus {self.version} (Debian package, local)"


def default_cache_dir() -> Path:
    """``<repository>/.local/prometheus`` (or ``CLINIC_PROMETHEUS_CACHE_DIR``)."""
    configured = os.environ.get("CLINIC_PROMETHEUS_CACHE_DIR")
    return Path(configured) if configured else REPO_ROOT / ".local" / "prometheus"


def _unpacked(directory: Path) -> PrometheusBinaries | None:
    marker = directory / ".complete"
    prometheus, promtool = directory / "usr/bin/prometheus", directory / "usr/bin/promtool"
    if marker.exists() and prometheus.exists() and promtool.exists():
        return PrometheusBinaries(marker.read_text().strip(), prometheus, promtool)
    return None


def cached(cache_dir: Path | None = None) -> PrometheusBinaries | None:
    """The newest complete copy in the cache, or None."""
    root = cache_dir or default_cache_dir()
    if not root.is_dir():
        return None
    found = [b for d in root.iterdir() if d.is_dir() and (b := _unpacked(d)) is not None]
    return max(found, key=lambda b: _version_key(b.version), default=None)


def _version_key(version: str) -> list[Any]:
    """Orders ``2.42.0+ds-5`` before ``2.45.3+ds-2`` (enough for the copies one cache holds)."""
    return [int(p) if p.isdigit() else p for p in re.split(r"[^0-9A-Za-z]+", version) if p]


def _apt(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise PrometheusError(f"{' '.join(command)} took over {APT_TIMEOUT_SECONDS:.0f}s") from None


def _download(staging: Path) -> Path:
    """``apt-get download prometheus`` into ``staging``; runs ``apt-get update`` once (as
    root) when the package lists do not know the package or point at files gone from the
    mirror."""
    if shutil.which("apt-get") is None:
        raise PrometheusError(
            "apt-get is not available: Prometheus is taken from Debian's 'prometheus' package. "
            "On another system, install Prometheus 2.x and put 'prometheus' and 'promtool' in "
            "a directory named by CLINIC_PROMETHEUS_BIN_DIR"
        )
    download = _apt(["apt-get", "download", "-q", PACKAGE], staging)
    if download.returncode != 0:
        if os.geteuid() != 0:
            raise PrometheusError(
                f"apt-get download {PACKAGE} failed ({_last_line(download.stderr)}); the "
                "package lists may be missing or stale: run 'sudo apt-get update' and try again"
            )
        update = _apt(["apt-get", "update", "-q"], staging)
        if update.returncode != 0:
            raise PrometheusError(f"apt-get update failed: {update.stderr[-500:]}")
        download = _apt(["apt-get", "download", "-q", PACKAGE], staging)
        if download.returncode != 0:
            raise PrometheusError(f"apt-get download {PACKAGE} failed: {download.stderr[-500:]}")
    debs = sorted(staging.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        raise PrometheusError(f"apt-get download {PACKAGE} left no .deb in {staging}")
    return debs[-1]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def fetch(cache_dir: Path | None = None) -> PrometheusBinaries:
    """The binaries: from ``CLINIC_PROMETHEUS_BIN_DIR`` when set, else the cache, else
    downloaded and unpacked into it. Two processes fetching at once wait for each other (a
    file lock); a half-unpacked copy is never used (it is moved into place when complete)."""
    configured = os.environ.get("CLINIC_PROMETHEUS_BIN_DIR")
    if configured:
        prometheus, promtool = Path(configured) / "prometheus", Path(configured) / "promtool"
        if not (prometheus.exists() and promtool.exists()):
            raise PrometheusError(
                f"CLINIC_PROMETHEUS_BIN_DIR={configured} has no prometheus and promtool"
            )
        return PrometheusBinaries(_reported_version(prometheus), prometheus, promtool)
    root = cache_dir or default_cache_dir()
    found = cached(root)
    if found is not None:
        return found
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = cached(root)
        if found is not None:
            return found
        with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as work:
            staging = Path(work)
            deb = _download(staging)
            version = _deb_field(deb, "Version")
            unpacked = staging / "unpacked"
            result = subprocess.run(
                ["dpkg", "-x", str(deb), str(unpacked)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise PrometheusError(f"dpkg -x {deb.name} failed: {result.stderr[-500:]}")
            if not (unpacked / "usr/bin/prometheus").exists():
                raise PrometheusError(f"{deb.name} has no usr/bin/prometheus")
            (unpacked / ".complete").write_text(version)
            target = root / version.replace(":", "_")
            shutil.rmtree(target, ignore_errors=True)
            unpacked.rename(target)
    found = cached(root)
    assert found is not None
    return found


def _deb_field(deb: Path, field: str) -> str:
    result = subprocess.run(
        ["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        match = re.match(rf"{PACKAGE}_([^_]+)_", deb.name)
        if match is None:
            raise PrometheusError(f"cannot read the version of {deb.name}")
        return match.group(1).replace("%3a", ":")
    return result.stdout.strip()


def _reported_version(prometheus: Path) -> str:
    result = subprocess.run(
        [str(prometheus), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"version (\S+)", result.stdout + result.stderr)
    return match.group(1) if match else "?"


# -- the configuration --------------------------------------------------------------------


def _quoted(value: str) -> str:
    """A YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(value)


def scrape_address(url: str) -> tuple[str, str, str]:
    """``http://127.0.0.1:8081`` (or ``127.0.0.1:8081``) as scheme, host:port and path."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    if not parts.hostname or parts.port is None:
        raise PrometheusError(f"a scrape target needs a host and a port: {url!r}")
    path = parts.path.rstrip("/") or ""
    return parts.scheme or "http", f"{parts.hostname}:{parts.port}", f"{path}/metrics"


def prometheus_config(
    targets: Mapping[str, str],
    rule_files: Iterable[str | Path] = (RULES_GLOB,),
    scrape_interval: str = SCRAPE_INTERVAL,
) -> str:
    """``prometheus.yml`` (pure, so it is unit-tested): one job per service named after it,
    scraping ``<url>/metrics``, its samples labelled ``service``. ``honor_labels`` keeps the
    labels a service exports itself: ``http_requests_total`` already names its service, and
    the gateway's ``gateway_upstream_requests_total{service}`` names the service behind it."""
    lines = [
        "# Written by clinic.devstack.prometheus; rewritten at every start.",
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  scrape_timeout: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
        "rule_files:",
        *(f"  - {_quoted(str(path))}" for path in rule_files),
        "scrape_configs:",
    ]
    for name, url in targets.items():
        scheme, address, path = scrape_address(url)
        lines += [
            f"  - job_name: {_quoted(name)}",
            "    honor_labels: true",
            f"    scheme: {scheme}",
            f"    metrics_path: {_quoted(path)}",
            "    static_configs:",
            f"      - targets: [{_quoted(address)}]",
            f"        labels: {{service: {_quoted(name)}}}",
        ]
    if not targets:
        lines[-1] = "scrape_configs: []"
    return "\n".join(lines) + "\n"


# -- the server ---------------------------------------------------------------------------


@dataclass
class RunningPrometheus:
    """A Prometheus started by :func:`start_prometheus`; saved as ``prometheus.json`` in its
    state directory, from which :func:`stop_prometheus` stops it."""

    pid: int
    port: int
    state_dir: str
    config_file: str
    log_file: str
    flavor: str
    targets: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """An instant query's result (``data.result``); a query Prometheus refuses raises
        :class:`PrometheusError` with its message."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=timeout)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"query {expr!r} failed: {body.get('error', response.text)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets_health(self, timeout: float = 10.0) -> dict[str, str]:
        """Each active target's job and health (``up``, ``down``, ``unknown``)."""
        response = httpx.get(f"{self.url}/api/v1/targets", timeout=timeout)
        response.raise_for_status()
        return {t["labels"]["job"]: t["health"] for t in response.json()["data"]["activeTargets"]}

    def rules(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The rule groups Prometheus loaded (``/api/v1/rules``)."""
        response = httpx.get(f"{self.url}/api/v1/rules", timeout=timeout)
        response.raise_for_status()
        groups: list[dict[str, Any]] = response.json()["data"]["groups"]
        return groups


def _errors(log_file: Path) -> str:
    """The errors Prometheus logged (its log is JSON lines), else its last lines."""
    errors = []
    for line in tail(log_file, 40).splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            entry = json.loads(line)
            if entry.get("level") == "error":
                errors.append(f"{entry.get('msg', '')}: {entry.get('err', '')}".strip(": "))
    return "; ".join(errors[:2]) if errors else tail(log_file)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _load(state_dir: Path) -> RunningPrometheus | None:
    with contextlib.suppress(OSError, ValueError, TypeError):
        return RunningPrometheus(**json.loads((state_dir / STATE_FILE).read_text()))
    return None


def _port(state_dir: Path, port: int | None) -> int:
    """``port`` when given (it must be free); else the last start's while free, else 9090
    while free, else any free port."""
    if port is not None:
        if port_open("127.0.0.1", port):
            raise PrometheusError(f"port 127.0.0.1:{port} is already in use by another process")
        return port
    with contextlib.suppress(OSError, ValueError):
        remembered = int((state_dir / "port").read_text())
        if not port_open("127.0.0.1", remembered):
            return remembered
    return DEFAULT_PORT if not port_open("127.0.0.1", DEFAULT_PORT) else free_port()


def start_prometheus(
    state_dir: Path,
    targets: Mapping[str, str],
    port: int | None = None,
    *,
    rule_files: Iterable[str | Path] = (RULES_GLOB,),
    scrape_interval: str = SCRAPE_INTERVAL,
    cache_dir: Path | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> RunningPrometheus:
    """Start Prometheus on 127.0.0.1 scraping ``targets`` (service name -> base URL, e.g.
    ``{"booking": "http://127.0.0.1:8081"}``), its TSDB and log under ``state_dir``, and wait
    until it is ready. When the one started earlier from ``state_dir`` still runs, its
    configuration is rewritten and reloaded (SIGHUP) and it is returned: nothing new starts.
    Fails with :class:`PrometheusError` naming the reason (no apt-get, a port taken, a rule
    file Prometheus refuses: the last lines of its log)."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    config_file = state_dir / "prometheus.yml"
    config_file.write_text(prometheus_config(targets, rule_files, scrape_interval))
    running = _load(state_dir)
    if running is not None and pid_alive(running.pid):
        if _ready(running.url):
            os.kill(running.pid, signal.SIGHUP)
            running.targets = dict(targets)
            (state_dir / STATE_FILE).write_text(json.dumps(asdict(running), indent=2))
            return running
        stop_pid(running.pid, timeout=30)  # alive but not answering: start afresh
    binaries = fetch(cache_dir)
    port = _port(state_dir, port)
    (state_dir / "port").write_text(str(port))
    data = state_dir / "data"
    data.mkdir(exist_ok=True)
    log_file = state_dir / "prometheus.log"
    command = [
        str(binaries.prometheus),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.format=json",
    ]
    with open(log_file, "ab") as out:
        process = subprocess.Popen(
            command,
            cwd=state_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    started = RunningPrometheus(
        pid=process.pid,
        port=port,
        state_dir=str(state_dir),
        config_file=str(config_file),
        log_file=str(log_file),
        flavor=binaries.flavor,
        targets=dict(targets),
    )
    deadline = time.monotonic() + timeout
    while not _ready(started.url):
        if process.poll() is not None:
            raise PrometheusError(f"exited with {process.returncode}: {_errors(log_file)}")
        if time.monotonic() > deadline:
            stop_pid(process.pid)
            raise PrometheusError(f"not ready within {timeout:.0f}s: {_errors(log_file)}")
        time.sleep(0.2)
    (state_dir / STATE_FILE).write_text(json.dumps(asdict(started), indent=2))
    return started


def stop_prometheus(state_dir: Path) -> str | None:
    """Stop the Prometheus started from ``state_dir``, by its saved pid (its data stays);
    what was stopped, or None when nothing ran."""
    state_dir = state_dir.resolve()
    running = _load(state_dir)
    if running is None:
        return None
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    if not pid_alive(running.pid):
        return None
    stop_pid(running.pid, timeout=30)
    if pid_alive(running.pid):
        raise PrometheusError(f"pid {running.pid} did not stop")
    return f"prometheus (pid {running.pid}, {running.url})"


def running_prometheus(state_dir: Path) -> RunningPrometheus | None:
    """The Prometheus started from ``state_dir`` when it still runs (for ``make status``)."""
    running = _load(state_dir.resolve())
    return running if running is not None and pid_alive(running.pid) else None


class LocalPrometheus:
    """Prometheus for the length of a ``with`` block: started on a free 127.0.0.1 port
    scraping ``targets``, stopped by pid at the end (its state directory is the caller's)."""

    def __init__(
        self,
        state_dir: Path,
        targets: Mapping[str, str],
        *,
        rule_files: Iterable[str | Path] = (RULES_GLOB,),
        scrape_interval: str = SCRAPE_INTERVAL,
    ) -> None:
        self.state_dir = state_dir
        self.targets = dict(targets)
        self.rule_files = list(rule_files)
        self.scrape_interval = scrape_interval
        self.running: RunningPrometheus | None = None

    def __enter__(self) -> RunningPrometheus:
        self.running = start_prometheus(
            self.state_dir,
            self.targets,
            free_port(),
            rule_files=self.rule_files,
            scrape_interval=self.scrape_interval,
        )
        return self.running

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stop_prometheus(self.state_dir)
        self.running = None
