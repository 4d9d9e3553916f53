"""The Grafana dashboards under deploy/observability/grafana: the committed JSON is what the
generator (grafana-foundation-sdk) makes, every panel says what it shows and in which unit,
and every query follows Prometheus' conventions. No platform needed."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest
from monitoring_queries import (
    DASHBOARDS,
    OBSERVABILITY,
    as_run,
    dashboards,
    panels,
    rules,
    selectors,
    targets,
    variables,
)

EXPECTED = {"platform-health", "booking-flow", "clinic-kpis", "notification", "emr-bridge"}


def _generator() -> ModuleType:
    path = OBSERVABILITY / "grafana" / "dashboards.py"
    spec = importlib.util.spec_from_file_location("clinic_dashboards", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_five_dashboards_are_committed() -> None:
    assert set(dashboards()) == EXPECTED


def test_regenerating_the_dashboards_gives_the_committed_files() -> None:
    generator = _generator()
    for name in EXPECTED:
        committed = (DASHBOARDS / f"{name}.json").read_text()
        assert generator.render(name) == committed, (
            f"{name}.json is stale: run python deploy/observability/grafana/dashboards.py"
        )


def test_every_dashboard_has_its_own_uid_and_a_description() -> None:
    found = dashboards()
    uids = [d["uid"] for d in found.values()]
    assert len(uids) == len(set(uids))
    for name, dashboard in found.items():
        assert dashboard["description"].strip(), name
        assert dashboard["title"].startswith("Clinic / "), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_panel_has_a_title_a_description_a_unit_and_queries(name: str) -> None:
    for panel in panels(dashboards()[name]):
        if panel["type"] == "row":
            continue
        where = f"{name} / {panel.get('title')}"
        assert panel.get("title"), where
        assert len(panel.get("description", "")) > 20, f"{where}: no description"
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        assert panel.get("targets"), f"{where}: no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), where
            assert target["datasource"]["uid"] == "${datasource}", where


def test_every_template_variable_a_query_uses_is_defined_and_matches_as_a_regex() -> None:
    for name, dashboard in dashboards().items():
        defined = variables(dashboard)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable in defined:
                    if f"${variable}" in expr and variable != "datasource":
                        assert f'=~"${variable}"' in expr, f"{name}: ${variable} in {expr}"
                as_run(expr, defined)  # no variable left undefined


def test_rate_and_increase_read_only_counters_and_histogram_buckets() -> None:
    import promql_parser

    expressions = [as_run(t.expr, variables(dashboards()[t.dashboard])) for t in targets()]
    expressions += [r.expr for r in rules()]
    for expr in expressions:

        def visit(node: object, expr: str = expr) -> None:
            if isinstance(node, promql_parser.Call) and node.func.name in ("rate", "increase"):
                (matrix,) = node.args
                name = matrix.vector_selector.name
                assert name.endswith(("_total", "_bucket", "_count", "_sum")), (
                    f"{node.func.name}() over {name}, not a counter: {expr}"
                )

        promql_parser.walk(promql_parser.parse(expr), visit)


def test_every_histogram_quantile_sums_buckets_by_le() -> None:
    import promql_parser

    expressions = [as_run(t.expr, variables(dashboards()[t.dashboard])) for t in targets()]
    expressions += [r.expr for r in rules()]
    quantiles = 0
    for expr in expressions:

        def visit(node: object, expr: str = expr) -> None:
            nonlocal quantiles
            if isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
                quantiles += 1
                inner = node.args[1]
                assert isinstance(inner, promql_parser.AggregateExpr), expr
                assert inner.modifier is not None, expr
                assert "le" in inner.modifier.labels, expr
                assert all(s.metric.endswith("_bucket") for s in selectors(str(inner))), expr

        promql_parser.walk(promql_parser.parse(expr), visit)
    assert quantiles > 5


def test_panels_whose_counter_appears_with_its_first_event_say_they_show_zero() -> None:
    for target in targets():
        if "or vector(0)" in target.expr.replace("\n", " "):
            assert "0 while" in target.description, (
                f"{target}: falls back to 0 without saying so in its description"
            )
