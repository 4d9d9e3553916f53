"""The Prometheus alert rules under deploy/observability/prometheus: promtool accepts them
and their unit tests pass, every alert is tested firing and not firing, and every alert
tells on call what it means for a clinic, what to check first and what to run.

Prometheus' own promtool runs them (Debian's package, fetched by
``clinic.devstack.prometheus`` into ``.local/prometheus``); no PostgreSQL or Kafka."""

from __future__ import annotations

import subprocess
from collections import defaultdict

import pytest
from monitoring_queries import RULE_TESTS, RULES, Rule, rule_tests, rules

from clinic.devstack.prometheus import fetch


@pytest.fixture(scope="module")
def promtool() -> str:
    return str(fetch().promtool)


def _run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_every_rule_file(promtool: str) -> None:
    files = sorted(str(p) for p in RULES.glob("*.yml"))
    assert files
    result = _run(promtool, "check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def test_every_alert_rule_unit_test_passes_in_promtool(promtool: str) -> None:
    files = sorted(p.name for p in RULE_TESTS.glob("*.yml"))
    assert files
    result = subprocess.run(
        [promtool, "test", "rules", *files],
        cwd=RULE_TESTS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def _tested() -> tuple[dict[str, set[str]], set[str]]:
    """Per alert, the severities a test saw firing; and the alerts a test saw quiet."""
    firing: dict[str, set[str]] = defaultdict(set)
    quiet: set[str] = set()
    for document in rule_tests().values():
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                if not case.get("exp_alerts"):
                    quiet.add(case["alertname"])
                for alert in case.get("exp_alerts") or []:
                    firing[case["alertname"]].add(alert["exp_labels"]["severity"])
    return firing, quiet


def test_every_alert_is_unit_tested_both_firing_and_not_firing() -> None:
    firing, quiet = _tested()
    for rule in rules():
        severity = rule.labels["severity"]
        assert severity in firing.get(rule.alert, set()), f"no test sees {rule} fire"
        assert rule.alert in quiet, f"no test shows {rule.alert} quiet"


def test_every_rule_file_has_a_unit_test_file_that_loads_it() -> None:
    for path in RULES.glob("*.yml"):
        tests = rule_tests().get(path.name)
        assert tests is not None, f"no tests/{path.name}"
        assert f"../rules/{path.name}" in tests["rule_files"]


@pytest.mark.parametrize("rule", rules(), ids=lambda r: f"{r.alert}-{r.labels.get('severity')}")
def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook(rule: Rule) -> None:
    assert rule.labels.get("severity") in ("critical", "warning"), rule
    assert rule.alert.startswith("Clinic"), rule
    for annotation in ("summary", "description", "runbook"):
        assert rule.annotations.get(annotation, "").strip(), f"{rule.alert}: no {annotation}"
    runbook = rule.annotations["runbook"]
    # What it means for a clinic, what to check first, and what to do about it.
    for part in ("For the clinic:", "Check first:", "Do:"):
        assert part in runbook, f"{rule.alert}: the runbook says no {part!r}"
    assert any(tool in runbook for tool in ("curl ", "psql ", "make ", "nc ")), (
        f"{rule.alert}: the runbook names no command to run"
    )


def test_alert_names_and_severities_are_unique() -> None:
    seen = [(r.alert, r.labels["severity"]) for r in rules()]
    assert len(seen) == len(set(seen)), seen
