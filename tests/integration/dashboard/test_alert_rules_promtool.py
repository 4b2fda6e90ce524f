"""deploy/prometheus/tether-alerts.yml under promtool (Debian's prometheus package): the rules
check, and they fire when fed the metrics of a real dead-letter burst.

The burst is real: events go through a relay whose sink refuses them for good, so they are
dead-lettered by the relay itself; after each simulated minute the dead-letter monitor checks
the database and its gauges are read from the Prometheus registry. Those readings become the
input series of a ``promtool test rules`` file, with the expected alerts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from prometheus_client import REGISTRY

from tests.support.scripted_sink import ScriptedSink
from tether.core.clock import FrozenClock
from tether.ops.alerts_state import MemoryAlertState
from tether.ops.deadletters import DeadLetterMonitor, OutboxDeadLetters
from tether.ops.runners import MemoryRunnerRegistry
from tether.ops.runners.metrics import export
from tether.outbox import add_event
from tether.outbox.relay import Relay
from tether.outbox.store_pg import PostgresOutboxStore
from tether.outbox.table import OUTBOX
from tether.queue.postgres import PostgresQueue
from tether.sinks.base import Outcome

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "tether-alerts.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
BURST = [0, 0, 0, 40, 120, 200, 0, 0, 0, 0, 0, 0]  # events dead-lettered in each minute


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert Path(PROMTOOL).exists(), "promtool is missing: run scripts/install (Debian's prometheus)"
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_carries_a_runbook() -> None:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            runbook = rule["annotations"].get("runbook", "")
            assert len(runbook) > 40, f"{rule['alert']}: no runbook text"


def gauge(name: str, source: str) -> float:
    value = REGISTRY.get_sample_value(name, {"source": source})
    assert value is not None, name
    return value


async def real_burst(dsn: str) -> list[int]:
    """The monitor's tether_dead_letters{source="outbox"} after each minute of BURST."""
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("broker rejected: unknown schema v2", retryable=False)
    store = await PostgresOutboxStore.connect(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    relay = Relay(store, [sink])
    monitor = DeadLetterMonitor(
        [OutboxDeadLetters(PostgresQueue(pool, spec=OUTBOX, queue=None))], [], MemoryAlertState()
    )
    readings = []
    try:
        for n in BURST:
            async with pool.acquire() as conn, conn.transaction():
                for i in range(n):
                    await add_event(conn, "OrderPlaced", {"i": i}, topic="orders")
            while (await relay.run_once()).claimed:
                pass
            await monitor.check_once()
            readings.append(int(gauge("tether_dead_letters", "outbox")))
    finally:
        await pool.close()
        await store.close()
    return readings


def annotations(alert: str, value: str, source: str) -> dict[str, Any]:
    rule = next(
        r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
        if r.get("alert") == alert
    )  # fmt: skip

    def render(text: str) -> str:
        text = text.replace("{{ $labels.source }}", source).replace("{{ $value }}", value)
        assert "{{" not in text, f"{alert}: template this test does not render: {text}"
        return text

    return {k: render(v) for k, v in rule["annotations"].items()}


async def test_the_rules_fire_on_a_real_dead_letter_burst(pg_dsn: str, tmp_path: Path) -> None:
    dead = await real_burst(pg_dsn)
    assert dead == [0, 0, 0, 40, 160, 360, 360, 360, 360, 360, 360, 360]
    series = " ".join(str(v) for v in dead)
    minutes = len(dead)
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'tether_dead_letters{source="outbox"}', "values": series},
                    {
                        "series": 'tether_oldest_pending_age_seconds{source="outbox"}',
                        "values": f"0x{minutes}",
                    },
                    {
                        "series": "tether_deadletter_monitor_last_check_timestamp_seconds",
                        "values": f"0+60x{minutes}",
                    },
                    {
                        "series": 'up{job="tether-relay", instance="relay:9100"}',
                        "values": f"1x{minutes}",
                    },
                    {"series": "tether_relay_batch_seconds_count", "values": f"0+5x{minutes}"},
                ],
                "alert_rule_test": [
                    # Below the threshold: nothing yet.
                    {
                        "eval_time": "3m",
                        "alertname": "TetherDeadLettersOverThreshold",
                        "exp_alerts": [],
                    },
                    # 160 at 4m, held for the rule's minute: firing at 5m, with its runbook.
                    {
                        "eval_time": "6m",
                        "alertname": "TetherDeadLettersOverThreshold",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "source": "outbox"},
                                "exp_annotations": annotations(
                                    "TetherDeadLettersOverThreshold", "360", "outbox"
                                ),
                            }
                        ],
                    },
                    {"eval_time": "6m", "alertname": "TetherRelayDown", "exp_alerts": []},
                ],
                "promql_expr_test": [
                    # Growing while the burst lasts (the annotation carries a rate, so the
                    # firing is read from the ALERTS series the rule evaluation writes).
                    {
                        "expr": 'ALERTS{alertname="TetherDeadLettersGrowing", alertstate="firing"}',
                        "eval_time": "5m",
                        "exp_samples": [
                            {
                                "labels": 'ALERTS{alertname="TetherDeadLettersGrowing",'
                                'alertstate="firing",severity="warning",'
                                'source="outbox"}',
                                "value": 1,
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "tether-alerts.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr + path.read_text()
    assert re.search(r"SUCCESS", result.stdout), result.stdout


def firing(alert: str, at: str, **labels: str) -> dict[str, Any]:
    """A promql_expr_test: ``alert`` is firing at ``at`` with ``labels`` (read from the ALERTS
    series the rule evaluation writes, so rate-valued annotations need no rendering)."""
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {
        "expr": f'ALERTS{{alertname="{alert}", alertstate="firing"}}',
        "eval_time": at,
        "exp_samples": [
            {"labels": f'ALERTS{{alertname="{alert}",alertstate="firing",{shown}}}', "value": 1}
        ],
    }


def quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def test_workers_dispatchers_rescues_and_429s_fire(tmp_path: Path) -> None:
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {   # A worker and a dispatcher stop answering their scrapes; jobs stop finishing
                # while jobs wait; one limit refuses 5 requests a second.
                "interval": "1m",
                "input_series": [
                    {"series": 'up{job="tether-worker", instance="w1:9100"}', "values": "1 1 0x20"},
                    {"series": 'up{job="tether-dispatcher", instance="d1:9100"}', "values": "1x20"},
                    {"series": 'tether_jobs_finished_total{queue="mail", outcome="done"}',
                     "values": "0+10x3 30x20"},
                    {"series": 'tether_oldest_pending_age_seconds{source="jobs"}',
                     "values": "0x3 400+60x20"},
                    {"series": 'tether_ratelimit_rejected_total{limit="login"}',
                     "values": "0+300x25"},
                    {"series": 'tether_http_responses_total{job="api", status_class="2xx", method="GET"}',
                     "values": "0+6000x25"},
                    {"series": 'tether_http_responses_total{job="api", status_class="5xx", method="GET"}',
                     "values": "0x5 0+300x20"},
                    {"series": 'tether_realtime_disconnects_total{job="rt", reason="slow"}',
                     "values": "0x5 0+5x25"},
                ],
                "alert_rule_test": [
                    quiet("TetherJobWorkerDown", "3m"),
                    quiet("TetherWebhookDispatcherDown", "10m"),
                    quiet("TetherRateLimitedOften", "5m"),
                    quiet("TetherHttpServerErrors", "5m"),
                    quiet("TetherRealtimeSlowClients", "5m"),
                ],
                "promql_expr_test": [
                    firing("TetherJobWorkerDown", "5m", severity="critical", job="tether-worker",
                           instance="w1:9100"),
                    firing("TetherJobsStalled", "20m", severity="critical"),
                    firing("TetherRateLimitedOften", "15m", severity="warning", limit="login"),
                    firing("TetherHttpServerErrors", "15m", severity="critical", job="api"),
                    firing("TetherRealtimeSlowClients", "25m", severity="warning", job="rt"),
                ],
            },
            {   # Stale-job rescues: 2 an hour on one queue, none on another.
                "interval": "1h",
                "input_series": [
                    {"series": 'tether_jobs_recovered_total{queue="mail"}', "values": "0+2x30"},
                    {"series": 'tether_jobs_recovered_total{queue="billing"}', "values": "0x30"},
                ],
                "promql_expr_test": [
                    firing("TetherJobsRescuedTooOften", "1d", severity="warning", queue="mail"),
                ],
            },
        ],
    }  # fmt: skip
    path = tmp_path / "tether-alerts-parts.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


async def lost_relay_readings(minutes: int) -> list[int]:
    """tether_runners{kind="relay",status="lost"} as the monitor exports it after each minute:
    two relays beat every 10 s; after 5 minutes one is killed (no more beats, never stopped)."""
    clock = FrozenClock(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    registry = MemoryRunnerRegistry(clock=clock)
    killed = await registry.register("relay", "relay-a", 10.0, {"published_total": 0.0})
    kept = await registry.register("relay", "relay-b", 10.0, {"published_total": 0.0})
    readings = []
    for minute in range(minutes):
        for step in range(6):
            clock.advance(10)
            published = {"published_total": (minute * 6 + step) * 10.0}
            await registry.beat(kept, published)
            if minute < 5:
                await registry.beat(killed, published)
        counts = await export(registry, clock.now())
        readings.append(counts["relay", "lost"])
    return readings


async def test_a_lost_runner_fires_for_the_hour_after(tmp_path: Path) -> None:
    lost = await lost_relay_readings(80)
    # Silent for 60 s at 6m is late (6 intervals); lost from 7m.
    assert lost[:6] == [0] * 6 and lost[6:] == [1] * 74
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # Minute i's reading at i + 1 minutes (the export after the minute).
                    {"series": 'tether_runners{kind="relay",status="lost"}',
                     "values": "0 " + " ".join(str(v) for v in lost)},
                    {"series": 'tether_runners{kind="job-worker",status="lost"}',
                     "values": f"0x{len(lost)}"},
                ],
                "alert_rule_test": [
                    quiet("TetherRunnerLost", "6m"),
                    quiet("TetherRunnerLost", "75m"),  # an hour after: resolved
                ],
                "promql_expr_test": [
                    firing("TetherRunnerLost", "7m", severity="warning", kind="relay"),
                    firing("TetherRunnerLost", "60m", severity="warning", kind="relay"),
                ],
            }
        ],
    }  # fmt: skip
    path = tmp_path / "tether-alerts-runners.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
