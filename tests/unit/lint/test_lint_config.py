"""Where ``tether lint`` finds its rules: the nearest ``tether-lint.toml`` (keys at the top
level) or ``pyproject.toml`` (``[tool.tether.lint]``) above the path, or ``--config``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tether.cli import app as cli
from tether.lint import config

ROUTER = "async def create(session):\n    await session.flush()\n"


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.tether.lint]\nrouters = ["*.views"]\n')
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "routes.py").write_text(ROUTER)
    (app / "views.py").write_text(ROUTER)
    return app


def _flagged(*args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["lint", "--json", *args])
    assert result.exit_code in (0, 1), result.output
    return sorted(Path(v["path"]).name for v in json.loads(result.stdout)["violations"])


def test_a_tether_lint_toml_next_to_the_code_wins_over_the_projects_pyproject(
    tmp_path: Path,
) -> None:
    app = _project(tmp_path)
    assert config.find_config(app) == tmp_path / "pyproject.toml"
    assert _flagged(str(app)) == ["views.py"]
    (app / "tether-lint.toml").write_text('routers = ["*.routes"]\nroots = [".."]\n')
    assert config.find_config(app) == app / "tether-lint.toml"
    assert config.find_config(app / "routes.py") == app / "tether-lint.toml"
    assert config.load(app / "tether-lint.toml").routers == ("*.routes",)
    assert _flagged(str(app)) == ["routes.py"]
    # --config still chooses, and a pyproject.toml in the same folder loses to it
    assert _flagged("--config", str(tmp_path / "pyproject.toml"), str(app)) == ["views.py"]
    (app / "pyproject.toml").write_text('[tool.tether.lint]\nrouters = ["*.views"]\n')
    assert config.find_config(app) == app / "tether-lint.toml"


def test_a_file_with_a_tool_table_is_read_as_a_pyproject(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[tool.tether.lint]\nstate_changing = ["app.*"]\n')
    assert config.load(rules).state_changing == ("app.*",)


def test_bad_keys_in_a_tether_lint_toml_are_named(tmp_path: Path) -> None:
    app = _project(tmp_path)
    (app / "tether-lint.toml").write_text('state_changes = ["app.*"]\n')
    result = CliRunner().invoke(cli, ["lint", str(app)])
    assert result.exit_code == 2
    assert "tether-lint.toml" in result.stderr and "state_changes" in result.stderr
    (app / "tether-lint.toml").write_text("routers = 'not a list'\n")
    result = CliRunner().invoke(cli, ["lint", str(app)])
    assert result.exit_code == 2 and "routers" in result.stderr
