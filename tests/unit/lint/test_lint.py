"""``tether lint``: each rule found once in a project with one violation of each, nothing in a
clean project nor in Tether's own ``src/``, and the event-on-commit flow rule case by case."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app as cli
from tether.lint import config, events, routers, run
from tether.lint.sources import Source

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "lint"


def lint(project: Path) -> list[tuple[str, int, str]]:
    cfg = config.load(project / "pyproject.toml")
    found = run.lint([project], cfg)
    return [(Path(v.path).relative_to(project).as_posix(), v.line, v.rule) for v in found]


def test_one_violation_of_each_rule_is_found_once() -> None:
    assert lint(FIXTURES / "dirty") == [
        ("dirtyshop/modules/billing/services.py", 19, "event-on-commit"),
        ("dirtyshop/modules/orders/routers.py", 11, "router-session"),
        ("dirtyshop/modules/orders/services.py", 2, "module-boundary"),
    ]


def test_the_clean_project_has_none() -> None:
    assert lint(FIXTURES / "clean") == []


def test_tethers_own_source_passes_its_rules() -> None:
    cfg = config.load(ROOT / "pyproject.toml")
    assert cfg.modules == ("tether",) and cfg.state_changing  # the rules do apply
    assert run.lint([ROOT / "src"], cfg) == []


def flow(code: str, **options: object) -> list[int]:
    cfg = config.LintConfig(state_changing=("m.*",), event_helpers=("add_event", "emit"), **options)  # type: ignore[arg-type]
    tree = ast.parse(textwrap.dedent(code))
    source = Source(Path("m.py"), "m", Path())
    return [v.line for v in events.check(source, tree, cfg)]


@pytest.mark.parametrize(
    ("code", "lines"),
    [
        # an event before the block ends: fine
        ("async def f(s):\n async with s.begin():\n  await add_event(s, 't', {})\n", []),
        # no event at all
        ("async def f(s):\n async with s.begin():\n  s.add(1)\n", [2]),
        # an event on one branch only
        ("def f(s, x):\n with s.begin():\n  if x:\n   emit(s)\n", [2]),
        # the other branch raises: it commits nothing
        ("def f(s, x):\n with s.begin():\n  if x:\n   raise ValueError\n  emit(s)\n", []),
        # a return inside the block commits
        ("def f(s, x):\n with s.begin():\n  if x:\n   return 1\n  emit(s)\n", [4]),
        # a commit() call after the event, and one before it
        ("def f(s):\n emit(s)\n s.commit()\n", []),
        ("def f(s):\n s.commit()\n emit(s)\n", [2]),
        # a loop body may not run: the event inside it does not cover the commit after it
        ("def f(s, xs):\n for x in xs:\n  emit(s)\n s.commit()\n", [4]),
        # each iteration's own transaction with its own event
        ("def f(s, xs):\n for x in xs:\n  with s.begin():\n   emit(s)\n", []),
        # an exception handler may run before the event
        ("def f(s):\n try:\n  emit(s)\n except KeyError:\n  pass\n s.commit()\n", [6]),
        # a function that commits nothing has nothing to check
        ("def f(s):\n return s.get(1)\n", []),
        # a nested function runs elsewhere
        ("def f(s):\n def g():\n  s.commit()\n emit(s)\n s.commit()\n", []),
    ],
)
def test_event_on_commit_follows_every_path(code: str, lines: list[int]) -> None:
    assert flow(code) == lines


def test_transactions_and_methods_are_configurable() -> None:
    code = "class S:\n async def f(self):\n  async with self.store.unit_of_work():\n   pass\n"
    assert flow(code) == []
    assert flow(code, transactions=("unit_of_work",)) == [3]


def routers_found(code: str, module: str = "app.orders.routers") -> list[str]:
    tree = ast.parse(textwrap.dedent(code))
    return [
        v.message
        for v in routers.check(Source(Path("r.py"), module, Path()), tree, config.LintConfig())
    ]


def test_router_rule_sees_named_and_typed_sessions_only_in_routers() -> None:
    code = """
        async def a(db_handle: AsyncSession):
            await db_handle.execute("x")
        async def b(self):
            await self.session.flush()
        async def c(cache):
            cache.commit()
    """
    assert routers_found(code) == [
        "a router calls db_handle.execute()",
        "a router calls session.flush()",
    ]
    assert routers_found(code, module="app.orders.services") == []


def test_the_command_prints_file_line_rule_and_fix_and_exits_1() -> None:
    result = CliRunner().invoke(cli, ["lint", str(FIXTURES / "dirty")])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    violations = [
        line
        for line in lines
        if ": module-boundary: " in line
        or ": router-session: " in line
        or ": event-on-commit: " in line
    ]
    assert len(violations) == 3
    assert all(line.split(":")[1].isdigit() for line in violations)
    assert sum(line.strip().startswith("fix: ") for line in lines) == 3
    assert lines[-1] == "3 violation(s)"
    clean = CliRunner().invoke(cli, ["lint", "--json", str(FIXTURES / "clean")])
    assert clean.exit_code == 0 and json.loads(clean.stdout)["violations"] == []


def test_bad_input_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["lint", str(tmp_path / "missing")]).exit_code == 2
    (tmp_path / "pyproject.toml").write_text("[tool.tether.lint]\nmodule = ['x']\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    bad = runner.invoke(cli, ["lint", str(tmp_path)])
    assert bad.exit_code == 2 and "module" in bad.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.tether.lint]\n")
    (tmp_path / "a.py").write_text("def (:\n")
    broken = runner.invoke(cli, ["lint", str(tmp_path)])
    assert broken.exit_code == 2 and "cannot parse" in broken.stderr


def test_the_generated_contracts_make_import_linter_find_the_same_import(tmp_path: Path) -> None:
    project = FIXTURES / "dirty"
    printed = CliRunner().invoke(cli, ["lint", "--contracts", str(project)])
    assert printed.exit_code == 0
    contracts = printed.stdout
    assert len(tomllib.loads(contracts)["tool"]["importlinter"]["contracts"]) == 2
    settings = tmp_path / "importlinter.toml"
    settings.write_text('[tool.importlinter]\nroot_package = "dirtyshop"\n\n' + contracts)
    checked = subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            "--config",
            str(settings),
            "--no-cache",
        ],
        check=False,
        cwd=project,
        env={"PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1
    assert (
        "dirtyshop.modules.orders.services -> dirtyshop.modules.billing.services" in checked.stdout
    )
