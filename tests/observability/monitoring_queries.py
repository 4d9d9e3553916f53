"""Every PromQL expression the dashboards and alert rules run, and the metric and label
names each one reads (parsed with ``promql-parser``, so label names, functions, keywords,
``by``/``without`` lists and string literals are never taken for metrics)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
DASHBOARDS = OBSERVABILITY / "grafana" / "dashboards"
RULES = OBSERVABILITY / "prometheus" / "rules"
RULE_TESTS = OBSERVABILITY / "prometheus" / "tests"

GENERATED_BY_PROMETHEUS = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})
"""Series Prometheus makes itself, not read from a service."""
TARGET_LABELS = frozenset({"service", "job", "instance"})
"""Labels the scrape adds to every series (``clinic.devstack.prometheus``)."""
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# What Grafana puts in place of its variables when it runs a query: every template variable
# is "All" (".*"), the rate window and the range are the test's.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}


@dataclass(frozen=True)
class Target:
    """One query of one dashboard panel."""

    dashboard: str
    panel: str
    description: str
    expr: str
    instant: bool

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel}: {self.expr}"


@dataclass(frozen=True)
class Rule:
    file: str
    group: str
    alert: str
    expr: str
    labels: dict[str, str]
    annotations: dict[str, str]
    for_: str | None

    def __str__(self) -> str:
        return f"{self.file} / {self.alert} ({self.labels.get('severity')}): {self.expr}"


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def targets() -> list[Target]:
    return [
        Target(
            name, panel["title"], panel.get("description", ""), t["expr"], bool(t.get("instant"))
        )
        for name, dashboard in dashboards().items()
        for panel in panels(dashboard)
        for t in panel.get("targets", [])
    ]


def rules() -> list[Rule]:
    found = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append(
                    Rule(
                        path.name,
                        group["name"],
                        rule["alert"],
                        rule["expr"],
                        rule.get("labels", {}),
                        rule.get("annotations", {}),
                        rule.get("for"),
                    )
                )
    return found


def rule_tests() -> dict[str, Any]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(RULE_TESTS.glob("*.yml"))}


def as_run(expr: str, variables: dict[str, str]) -> str:
    """The query as Grafana sends it: its variables replaced (every template variable by
    "All", ``.*``)."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    for name in variables:
        expr = re.sub(rf"\$\{{?{name}\}}?(?![A-Za-z0-9_])", ".*", expr)
    if "$" in expr.replace("$1", ""):
        raise ValueError(f"a Grafana variable is left in {expr!r}")
    return expr


def variables(dashboard: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v.get("query", "") for v in dashboard["templating"]["list"]}


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: frozenset[str]
    """Label names the selector matches on."""


@dataclass(frozen=True)
class Grouping:
    labels: frozenset[str]
    """``by (...)`` labels of an aggregation."""
    metrics: frozenset[str]
    """The metrics under that aggregation."""


def _selector_name(node: Any) -> str:
    if node.name:
        return str(node.name)
    for matcher in node.matchers.matchers:
        if matcher.name == "__name__":
            return str(matcher.value)
    raise ValueError(f"a selector without a metric name: {node}")


def _selectors(tree: Any) -> list[Selector]:
    found: list[Selector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            labels = frozenset(m.name for m in node.matchers.matchers if m.name != "__name__")
            found.append(Selector(_selector_name(node), labels))

    promql_parser.walk(tree, visit)
    return found


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of ``expr``: its metric and the label names it matches."""
    return _selectors(promql_parser.parse(expr))


def groupings(expr: str) -> list[Grouping]:
    """Every ``by (...)`` aggregation of ``expr`` with the metrics it aggregates."""
    found: list[Grouping] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            modifier = node.modifier
            if modifier.type == promql_parser.AggModifierType.By and modifier.labels:
                inner = frozenset(s.metric for s in _selectors(node.expr))
                found.append(Grouping(frozenset(modifier.labels), inner))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def metric_names(expr: str) -> set[str]:
    return {s.metric for s in selectors(expr)}


def family(name: str) -> str:
    """A histogram's series name as its family: ``x_bucket`` -> ``x``."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class Exposition:
    """What one service's ``/metrics`` says: each family's type, each sample name, and the
    label names seen on each."""

    types: dict[str, str]
    labels: dict[str, set[str]]

    @property
    def names(self) -> set[str]:
        names = set(self.labels)
        for name, kind in self.types.items():
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}{s}" for s in HISTOGRAM_SUFFIXES}
            elif kind == "summary":
                names |= {f"{name}_sum", f"{name}_count"}
            elif kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        return names


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


def parse_exposition(text: str) -> Exposition:
    exposition = Exposition({}, {})
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            exposition.types[name] = kind
            continue
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = exposition.labels.setdefault(match.group(1), set())
            labels |= set(LABEL.findall(match.group(2) or ""))
    return exposition


def merge(expositions: list[Exposition]) -> Exposition:
    merged = Exposition({}, {})
    for exposition in expositions:
        merged.types.update(exposition.types)
        for name, labels in exposition.labels.items():
            merged.labels.setdefault(name, set()).update(labels)
    return merged
