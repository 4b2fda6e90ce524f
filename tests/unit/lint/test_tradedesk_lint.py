"""The reference app passes Tether's own rules: ``tether lint examples/tradedesk`` (with the
app's ``tether-lint.toml``) finds nothing, the rules it lists do apply to its services, and
``tether audit`` still counts every state-changing route as covered."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app as cli
from tether.lint import config, events, routers
from tether.lint.sources import collect

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "tradedesk"


def test_tether_lint_finds_nothing_in_the_reference_app() -> None:
    result = CliRunner().invoke(cli, ["lint", "--json", str(APP)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["violations"] == []


def test_the_apps_own_config_is_the_one_found_and_names_real_service_functions() -> None:
    found = config.find_config(APP)
    assert found == APP / "tether-lint.toml"
    cfg = config.load(found)
    assert len(cfg.state_changing) == 8 and "record" in cfg.event_helpers
    defined = set()
    for source in collect([APP], cfg.exclude, cfg.root_paths()):
        defined.update(name for name, _ in events.functions(source.parse(), source.module))
    assert set(cfg.state_changing) <= defined  # a typo would check nothing
    with_routes = ["routes.partners", "routes.matches", "authz", "live"]
    assert all(routers.is_router(f"examples.tradedesk.{m}", cfg) for m in with_routes)
    assert not routers.is_router("examples.tradedesk.services.matches", cfg)


@pytest.mark.parametrize("service", ["partners", "availabilities", "requirements", "matches"])
def test_a_service_that_forgets_its_event_is_reported(service: str) -> None:
    cfg = config.load(APP / "tether-lint.toml")
    path = APP / "services" / f"{service}.py"
    (source,) = collect([path], roots=cfg.root_paths())
    assert source.module == f"examples.tradedesk.services.{service}"
    assert list(events.check(source, source.parse(), cfg)) == []
    forgetful = ast.parse(path.read_text().replace("await record(", "await print("))
    found = list(events.check(source, forgetful, cfg))
    listed = [name for name in cfg.state_changing if name.startswith(f"{source.module}.")]
    assert len(found) == len(listed) and {v.rule for v in found} == {"event-on-commit"}


def test_tether_audit_still_counts_every_state_changing_route_covered() -> None:
    result = CliRunner().invoke(cli, ["audit", "examples.tradedesk.app:demo_app", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["covered"], report["total"]) == (8, 8)
    modes = {(r["method"], r["path"]): r["idempotency"] for r in report["routes"]}
    assert modes.pop(("POST", "/matches")) == "required"
    assert set(modes.values()) == {"optional"}
