"""Every metric a dashboard query or an alert rule reads is one the services really export,
with the labels the query names: read from each service's ``/metrics`` on a running
platform after a short load (the package's one platform, ``conftest.py``)."""

from __future__ import annotations

import pytest
from monitoring_queries import (
    GENERATED_BY_PROMETHEUS,
    TARGET_LABELS,
    Exposition,
    as_run,
    dashboards,
    family,
    groupings,
    merge,
    rules,
    selectors,
    targets,
    variables,
)

pytestmark = pytest.mark.integration


def _expressions() -> list[tuple[str, str]]:
    """(where, PromQL as Prometheus runs it) for every dashboard query and alert rule."""
    found = dashboards()
    queries = [(str(t), as_run(t.expr, variables(found[t.dashboard]))) for t in targets()]
    return queries + [(str(r), r.expr) for r in rules()]


def _labels_of(union: Exposition, metric: str) -> set[str] | None:
    """Label names seen on the metric's samples (a histogram's buckets add ``le``); None
    when it exported no sample yet (a labelled counter before its first event)."""
    seen = union.labels.get(metric)
    return None if seen is None else seen | TARGET_LABELS


def test_every_metric_a_dashboard_or_alert_reads_is_exported_by_a_service(
    exported: dict[str, Exposition],
) -> None:
    union = merge(list(exported.values()))
    names = union.names | GENERATED_BY_PROMETHEUS
    missing: dict[str, list[str]] = {}
    for where, expr in _expressions():
        for selector in selectors(expr):
            if selector.metric not in names:
                missing.setdefault(selector.metric, []).append(where)
    assert not missing, "read but exported by no service:\n" + "\n".join(
        f"  {metric} (family {family(metric)}), in:\n    " + "\n    ".join(places)
        for metric, places in sorted(missing.items())
    )


def test_every_label_a_query_matches_or_groups_by_is_on_the_metric_it_reads(
    exported: dict[str, Exposition],
) -> None:
    union = merge(list(exported.values()))
    wrong = []
    for where, expr in _expressions():
        for selector in selectors(expr):
            known = _labels_of(union, selector.metric)
            if selector.metric in GENERATED_BY_PROMETHEUS or known is None:
                continue
            for label in selector.labels - known:
                wrong.append(f"{selector.metric} has no label {label!r}: {where}")
        for grouping in groupings(expr):
            known = [_labels_of(union, m) for m in grouping.metrics]
            if not known or any(k is None for k in known):
                continue
            labels = set().union(*(k for k in known if k is not None))
            for label in grouping.labels - labels:
                wrong.append(f"by ({label}) over {sorted(grouping.metrics)}: {where}")
    assert not wrong, "\n".join(wrong)
