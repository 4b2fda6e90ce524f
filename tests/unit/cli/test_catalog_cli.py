"""``tether catalog``: writes AsyncAPI and Markdown, checks schemas against a snapshot."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.unit.cli.conftest import invoke

V1 = """
from pydantic import BaseModel
from tether.catalog import EventCatalog

catalog = EventCatalog(title="Shop")


@catalog.event("OrderPlaced", version=1, topic="order", example={"order_id": "o", "total": 1})
class OrderPlaced(BaseModel):
    order_id: str
    total: int
"""

# total becomes a string and order_id goes: two breaks, no new version.
V1_BROKEN = """
from pydantic import BaseModel
from tether.catalog import EventCatalog

catalog = EventCatalog(title="Shop")


@catalog.event("OrderPlaced", version=1, topic="order")
class OrderPlaced(BaseModel):
    total: str
"""

# The same change, as version 2 with an upcaster: compatible.
V2 = (
    V1
    + """

@catalog.event("OrderPlaced", version=2, topic="order")
class OrderPlacedV2(BaseModel):
    total: str


@catalog.upcaster("OrderPlaced", from_version=1)
def up(p):
    return {"total": str(p["total"])}
"""
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:  # the test's own modules: each test imports anew
        if name.startswith(("events_", "plain_module", "broken_module")):
            del sys.modules[name]


def module(project: Path, source: str) -> str:
    """A fresh module name each time, so an edited catalog is imported anew."""
    name = f"events_{uuid.uuid4().hex[:12]}"
    (project / f"{name}.py").write_text(source)
    return f"{name}:catalog"


def test_writes_asyncapi_yaml_json_and_markdown(cli: CliRunner, project: Path) -> None:
    spec = module(project, V1)
    result = invoke(cli, "catalog", "--module", spec, "--asyncapi", "a.yaml", "--markdown", "e.md")
    assert result.exit_code == 0, result.output
    assert "wrote a.yaml: AsyncAPI 3.0.0, 1 messages on 1 channels" in result.output
    doc = yaml.safe_load((project / "a.yaml").read_text())
    assert doc["asyncapi"] == "3.0.0" and doc["info"]["title"] == "Shop"
    assert invoke(cli, "catalog", "-m", spec, "--asyncapi", "a.json").exit_code == 0
    assert json.loads((project / "a.json").read_text()) == doc
    page = (project / "e.md").read_text()
    assert "| OrderPlaced | 1 | `order` |" in page
    assert "### OrderPlaced v1" in page and '"order_id": "o"' in page


def test_check_passes_then_catches_a_breaking_change(cli: CliRunner, project: Path) -> None:
    first = module(project, V1)
    wrote = invoke(cli, "catalog", "-m", first, "--check", "snap.json", "--write-snapshot")
    assert wrote.exit_code == 0 and "wrote snapshot snap.json: 1 event versions" in wrote.output
    ok = invoke(cli, "catalog", "-m", first, "--check", "snap.json")
    assert ok.exit_code == 0 and "compatible: 1 event versions match snap.json" in ok.output

    broken = invoke(cli, "catalog", "-m", module(project, V1_BROKEN), "--check", "snap.json")
    assert broken.exit_code == 1
    assert "breaking: OrderPlaced v1 at order_id: field removed" in broken.output
    assert "breaking: OrderPlaced v1 at total: type changed from integer to string" in broken.output
    assert "2 incompatible schema change(s) against snap.json" in broken.output

    bumped = invoke(cli, "catalog", "-m", module(project, V2), "--check", "snap.json")
    assert bumped.exit_code == 0, bumped.output
    assert "snapshot snap.json is out of date for OrderPlaced v2" in bumped.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "events", "--check", "s.json"], "must be module:attribute"),
        (
            ["-m", "no_such_module_x:catalog", "--check", "s.json"],
            "cannot import module 'no_such_module_x': ModuleNotFoundError",
        ),
        (
            ["-m", "broken_module:catalog", "--check", "s.json"],
            "cannot import module 'broken_module': ZeroDivisionError",
        ),
        (
            ["-m", "plain_module:catalg", "--check", "s.json"],
            "module 'plain_module' has no attribute 'catalg'",
        ),
        (
            ["-m", "plain_module:thing", "--check", "s.json"],
            "plain_module:thing is a dict, not a tether.catalog.EventCatalog",
        ),
        (
            ["-m", "plain_module:empty", "--check", "s.json"],
            "plain_module:empty has no registered event types",
        ),
        (["-m", "plain_module:catalog"], "nothing to do"),
        (["-m", "plain_module:catalog", "--write-snapshot"], "--write-snapshot needs --check PATH"),
        (["-m", "plain_module:catalog", "--asyncapi", "a.txt"], "must end in .yaml, .yml or .json"),
        (
            ["-m", "plain_module:catalog", "--check", "missing.json"],
            "snapshot missing.json does not exist",
        ),
        (["-m", "plain_module:catalog", "--check", "junk.json"], "snapshot junk.json is not JSON"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    cli: CliRunner, project: Path, args: list[str], message: str
) -> None:
    (project / "broken_module.py").write_text("1 / 0\n")
    (project / "plain_module.py").write_text(V1 + "\nthing = {}\nempty = EventCatalog()\n")
    (project / "junk.json").write_text("{")
    result = invoke(cli, "catalog", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_an_unwritable_output_is_a_failure(cli: CliRunner, project: Path) -> None:
    spec = module(project, V1)
    result = invoke(cli, "catalog", "-m", spec, "--markdown", str(project / "no" / "dir" / "e.md"))
    assert result.exit_code == 1
    assert "cannot write" in result.output and "No such file or directory" in result.output
