"""``tether audit`` reads the live app: the reference app's true coverage, and a fixture app's
known gaps, exactly."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tether.cli import app as cli
from tether.core.errors import ConfigError
from tether.lint import audit

GAPS = {
    ("POST", "/legacy/ping"): ("capability", "rate_limit"),
    ("PATCH", "/notes/{note_id}"): ("capability",),
    ("DELETE", "/orders/{order_id}"): ("idempotency",),
    ("POST", "/orders/{order_id}/cancel"): ("idempotency",),
    ("POST", "/webhooks/inbound"): ("rate_limit",),
}


def test_the_reference_app_is_covered_on_every_state_changing_route() -> None:
    from examples.tradedesk.app import demo_app

    report = audit.audit(demo_app())
    assert report.summary() == "covered 8/8"
    modes = {(r.method, r.path): r.idempotency for r in report.routes}
    assert modes[("POST", "/matches")] == "required"
    assert {m for k, m in modes.items() if k != ("POST", "/matches")} == {"optional"}
    by_route = {(r.method, r.path): r for r in report.routes}
    assert by_route[("POST", "/matches/{match_id}/approve")].capabilities == ("trade:approve",)
    assert by_route[("PATCH", "/availabilities/{availability_id}")].capabilities == (
        "availability:edit:own",
        "availability:edit:any",
    )
    assert all("middleware:per-ip" in r.rate_limits for r in report.routes)


def test_the_fixture_apps_gaps_are_listed_exactly() -> None:
    from tests.fixtures.audit_app import app

    report = audit.audit(app)
    assert {(r.method, r.path): r.missing for r in report.routes if not r.covered} == GAPS
    assert report.summary() == "covered 3/8"
    reports = next(r for r in report.routes if r.path == "/reports")
    assert reports.capabilities == ("partner:signed",)  # the application's own, marked
    assert ("GET", "/orders") not in {(r.method, r.path) for r in report.routes}


@pytest.mark.parametrize(("text", "needed"), [("3", 3), ("0", 0), ("37.5%", 3), ("100%", 8)])
def test_require_takes_a_count_or_a_share(text: str, needed: int) -> None:
    assert audit.parse_requirement(text, 8) == needed


@pytest.mark.parametrize("text", ["", "-1", "x", "101%", "5.5"])
def test_require_refuses_anything_else(text: str) -> None:
    with pytest.raises(ConfigError, match="--require"):
        audit.parse_requirement(text, 8)


def test_the_command_gates_on_require_and_prints_json() -> None:
    runner = CliRunner()
    spec = "tests.fixtures.audit_app:create_app"  # a factory
    ok = runner.invoke(cli, ["audit", spec, "--json", "--require", "3"])
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert (body["covered"], body["total"], body["required"]) == (3, 8, 3)
    assert {(r["method"], r["path"]) for r in body["routes"] if not r["covered"]} == set(GAPS)
    short = runner.invoke(cli, ["audit", spec, "--require", "50%"])
    assert short.exit_code == 1
    assert "covered 3/8: fewer than the 4 required" in short.stderr
    assert "covered 3/8" in short.stdout


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "module:attribute"),
        ("tests.fixtures.nowhere:app", "cannot import"),
        ("tests.fixtures.audit_app:nothing", "no attribute"),
        ("tests.fixtures.audit_app:limiter", "not a Starlette/FastAPI app"),
    ],
)
def test_an_app_that_cannot_be_loaded_is_bad_input(spec: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["audit", spec])
    assert result.exit_code == 2
    assert message in result.stderr


def test_middleware_wrapped_around_the_app_counts() -> None:
    from tests.fixtures.audit_app import wrapped

    report = audit.audit(wrapped())
    gaps = {(r.method, r.path): r.missing for r in report.routes if not r.covered}
    expected = {k: tuple(a for a in v if a != "rate_limit") for k, v in GAPS.items()}
    assert gaps == {k: v for k, v in expected.items() if v}
    assert all("middleware:edge" in r.rate_limits for r in report.routes)
    result = CliRunner().invoke(cli, ["audit", "tests.fixtures.audit_app:wrapped", "--json"])
    assert json.loads(result.stdout)["covered"] == report.covered == 4
