"""The Prometheus rules shipped in deploy/prometheus: valid rule groups, every expression parsed
as PromQL (promql-parser), every metric they read one that Tether really exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

import tether.http.ratelimit.metrics  # the 429 counter (tether-http rules)
import tether.http.status_metrics  # responses by status class (tether-http rules)
import tether.jobs.metrics  # the jobs' counters (tether-workers rules)
import tether.ops.deadletters
import tether.ops.metrics  # registers the relay's metrics
import tether.ops.runners.metrics  # the runner registry's gauge (tether-runners rules)
import tether.realtime.metrics  # the gateway's disconnects (tether-realtime rules)
from tether.ops.alerts import DEFAULT_THRESHOLD

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "tether-alerts.yml"
PROMETHEUS_OWN = {"up"}  # written by Prometheus for every scrape target


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> list[str]:
    names: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.append(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def test_groups_are_well_formed() -> None:
    doc = yaml.safe_load(RULES.read_text())
    assert set(doc) == {"groups"}
    names = [g["name"] for g in doc["groups"]]
    assert len(names) == len(set(names))
    alerts = [r["alert"] for r in rules()]
    assert len(alerts) == len(set(alerts))
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_every_expression_is_promql_over_metrics_tether_exports(rule: dict[str, Any]) -> None:
    exported = set(REGISTRY._names_to_collectors)
    names = metric_names(rule["expr"])
    assert names, rule["expr"]
    for name in names:
        assert name in exported or name in PROMETHEUS_OWN, (
            f"{rule['alert']}: {name} is not exported"
        )


def test_the_conditions_the_issue_asks_for_are_covered() -> None:
    by_metric = {name: r["alert"] for r in rules() for name in metric_names(r["expr"])}
    assert "tether_dead_letters" in by_metric
    assert "tether_oldest_pending_age_seconds" in by_metric
    assert "up" in by_metric
    threshold = next(r for r in rules() if r["alert"] == "TetherDeadLettersOverThreshold")
    assert f">= {DEFAULT_THRESHOLD}" in threshold["expr"]  # the monitor's default, kept in step
    assert any("delta(tether_dead_letters" in r["expr"] for r in rules())
    assert tether.ops.deadletters.DEAD_LETTERS is not None
