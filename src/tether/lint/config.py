"""``[tool.tether.lint]`` in ``pyproject.toml``: which rules apply to which code.

A ``tether-lint.toml`` holds the same keys at its top level, for code that is not a project of
its own (an example app inside a repository): the nearest of the two above the linted path wins,
``tether-lint.toml`` first in one folder.

[tool.tether.lint]
modules = ["app.modules"]            # each sub-package is a business module
private = ["services", "repositories"]   # what other modules may not import (models may)
routers = ["*.routers", "*.routers.*", "*.routes", "*.routes.*"]  # router modules (globs)
session_names = ["session", "db"]    # receivers of commit()/execute()/flush() in routers
state_changing = ["app.modules.*.services.*"]   # functions that must write an event
event_helpers = ["add_event", "record_event"]   # calls that write one
transactions = ["begin", "transaction"]   # `with x.begin():` commits when the block ends
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tether.core.errors import ConfigError


class LintConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    modules: tuple[str, ...] = ()
    private: tuple[str, ...] = ("services", "service", "repositories", "repository")
    routers: tuple[str, ...] = (
        "*.routers", "*.routers.*", "*.routes", "*.routes.*", "*.router", "*.api", "*.api.*",
    )  # fmt: skip
    session_names: tuple[str, ...] = ("session", "db", "db_session", "conn", "connection", "tx")
    state_changing: tuple[str, ...] = ()
    event_helpers: tuple[str, ...] = ("add_event", "add_event_sync")
    transactions: tuple[str, ...] = ("begin", "begin_nested", "transaction")
    exclude: tuple[str, ...] = Field(default=())  # path globs left out, e.g. "*/migrations/*"
    # Folders (relative to pyproject.toml) that module names start from, first match wins.
    roots: tuple[str, ...] = ("src", ".")
    base: Path | None = Field(default=None, exclude=True)  # the folder of pyproject.toml

    def root_paths(self) -> list[Path]:
        if self.base is None:
            return []
        return [self.base / r for r in self.roots if (self.base / r).is_dir()]


CONFIG_FILES = ("tether-lint.toml", "pyproject.toml")  # looked for in this order per folder


def find_config(start: Path) -> Path | None:
    """The nearest ``tether-lint.toml`` or ``pyproject.toml`` in ``start`` or above it."""
    here = start.resolve()
    for folder in (here, *here.parents) if here.is_dir() else here.parents:
        for name in CONFIG_FILES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def load(path: Path | None) -> LintConfig:
    """The rules in ``path``: the ``[tool.tether.lint]`` table of a ``pyproject.toml`` (or of
    any file with a ``tool`` table), else the file's top level; defaults when absent."""
    if path is None:
        return LintConfig()
    try:
        table = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as TOML: {exc}") from None
    nested = path.name == "pyproject.toml" or "tool" in table
    section = table.get("tool", {}).get("tether", {}).get("lint", {}) if nested else table
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.tether.lint] must be a table")
    try:
        return LintConfig.model_validate({**section, "base": path.parent})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'lint'}: {e['msg']}" for e in exc.errors()
        )
        where = "[tool.tether.lint] " if nested else ""
        raise ConfigError(f"{path}: {where}{problems}") from None
