"""deploy/grafana/tether.json: a Grafana dashboard that loads (valid JSON, unique panel ids,
panels on the grid, a Prometheus datasource variable) and whose every query is PromQL over
metrics Tether really exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from prometheus_client import REGISTRY

import tether.consume.runner
import tether.guard.metrics
import tether.http.ratelimit.metrics
import tether.jobs.metrics
import tether.ops.deadletters
import tether.ops.metrics
import tether.ops.runners.metrics  # noqa: F401 (each import registers its metrics)

BOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "tether.json"
PROMETHEUS_OWN = {"up"}


def board() -> dict[str, Any]:
    return json.loads(BOARD.read_text())


def targets() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in board()["panels"] for t in p["targets"]]


def metric_names(expr: str) -> list[str]:
    names: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.append(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def test_the_board_loads() -> None:
    b = board()
    assert b["title"] and b["uid"] and isinstance(b["schemaVersion"], int)
    ids = [p["id"] for p in b["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    (var,) = b["templating"]["list"]
    assert (var["type"], var["query"]) == ("datasource", "prometheus")
    for p in b["panels"]:
        grid = p["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]


@pytest.mark.parametrize(("title", "expr"), targets(), ids=[t for t, _ in targets()])
def test_every_query_reads_metrics_tether_exports(title: str, expr: str) -> None:
    exported = set(REGISTRY._names_to_collectors)
    names = metric_names(expr)
    assert names, expr
    for name in names:
        assert name in exported or name in PROMETHEUS_OWN, f"{title}: {name} is not exported"


def test_the_parts_the_issue_names_are_on_the_board() -> None:
    read = {n for _, e in targets() for n in metric_names(e)}
    assert {"tether_dead_letters", "tether_oldest_pending_age_seconds", "tether_relay_events_total",
            "tether_jobs_recovered_total", "tether_ratelimit_rejected_total", "tether_runners",
            "up"} <= read  # fmt: skip
