"""Every dashboard panel shows data on a platform under load: a local Prometheus
(``clinic.devstack.prometheus``, Debian's package) scrapes every service every 5 s, a short
load runs through the gateway, and each panel's PromQL, run as Grafana runs it (every
template variable "All"), returns series. The alert rules are loaded, healthy, and quiet on
a healthy platform."""

from __future__ import annotations

import math

import httpx
import pytest
from monitoring_queries import as_run, dashboards, rules, targets, variables
from platform_load import Load, Platform

from clinic.devstack.prometheus import RunningPrometheus

pytestmark = pytest.mark.integration


def test_prometheus_scrapes_every_service_and_labels_each_with_its_name(
    prometheus: RunningPrometheus, platform: Platform, load: Load
) -> None:
    assert prometheus.targets_health() == dict.fromkeys(platform.scraped, "up")
    found = prometheus.query("count by (job, service) (http_requests_total)")
    assert {(s["metric"]["job"], s["metric"]["service"]) for s in found} == {
        (name, name) for name in platform.scraped
    }


def test_every_dashboard_query_returns_series_after_the_load(
    prometheus: RunningPrometheus, load: Load
) -> None:
    found = dashboards()
    empty, only_nan = [], []
    for target in targets():
        result = prometheus.query(as_run(target.expr, variables(found[target.dashboard])))
        values = [float(series["value"][1]) for series in result]
        if not result:
            empty.append(str(target))
        elif all(math.isnan(v) for v in values) and "NaN" not in target.description:
            only_nan.append(str(target))
    assert not empty, "no data:\n" + "\n".join(empty)
    assert not only_nan, "only NaN, and the description does not say why:\n" + "\n".join(only_nan)


def test_every_alert_rule_is_loaded_healthy_and_quiet_on_a_healthy_platform(
    prometheus: RunningPrometheus, load: Load
) -> None:
    loaded = {
        (rule["name"], rule["labels"].get("severity")): rule
        for group in prometheus.rules()
        for rule in group["rules"]
    }
    assert set(loaded) == {(r.alert, r.labels["severity"]) for r in rules()}
    for key, rule in loaded.items():
        assert rule["health"] == "ok", (key, rule.get("lastError"))
    firing = prometheus.query('ALERTS{alertstate="firing"}')
    assert not firing, [s["metric"] for s in firing]


def test_the_prometheus_summary_names_its_version(prometheus: RunningPrometheus) -> None:
    build = httpx.get(f"{prometheus.url}/api/v1/status/buildinfo", timeout=10).json()
    assert build["data"]["version"].split("+")[0] in prometheus.flavor
