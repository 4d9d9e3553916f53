"""The prometheus.yml ``make up OBS=1`` and the observability tests run Prometheus with:
one job per service with its 127.0.0.1 target and a ``service`` label, the services' own
labels kept, the repository's alert rules loaded."""

from pathlib import Path

import pytest
import yaml

from clinic.devstack.prometheus import (
    RULES_GLOB,
    PrometheusError,
    prometheus_config,
    scrape_address,
)


def test_each_service_is_a_job_of_its_own_labelled_with_its_name() -> None:
    config = yaml.safe_load(
        prometheus_config({"booking": "http://127.0.0.1:8081", "emr-bridge": "127.0.0.1:8084"})
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"booking", "emr-bridge"}
    booking = jobs["booking"]
    assert booking["static_configs"] == [
        {"targets": ["127.0.0.1:8081"], "labels": {"service": "booking"}}
    ]
    assert booking["metrics_path"] == "/metrics"
    assert booking["scheme"] == "http"
    # A service's own `service` label (the gateway's upstream calls) is kept as it is.
    assert booking["honor_labels"] is True
    assert jobs["emr-bridge"]["static_configs"][0]["labels"] == {"service": "emr-bridge"}


def test_scrapes_and_rule_evaluations_are_frequent_and_the_repository_rules_are_loaded() -> None:
    config = yaml.safe_load(prometheus_config({"booking": "http://127.0.0.1:8081"}))
    assert config["global"]["scrape_interval"] == "5s"
    assert config["global"]["evaluation_interval"] == "5s"
    assert config["rule_files"] == [str(RULES_GLOB)]
    assert Path(str(RULES_GLOB)).parent.is_dir()


def test_a_service_behind_a_path_is_scraped_under_it() -> None:
    assert scrape_address("https://10.0.0.5:9443/booking/") == (
        "https",
        "10.0.0.5:9443",
        "/booking/metrics",
    )


def test_a_target_without_a_port_is_refused_with_its_address() -> None:
    with pytest.raises(PrometheusError, match="needs a host and a port"):
        scrape_address("http://127.0.0.1")


def test_no_target_is_still_a_valid_configuration() -> None:
    assert yaml.safe_load(prometheus_config({}))["scrape_configs"] == []
