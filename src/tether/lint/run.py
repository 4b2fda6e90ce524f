"""Run every rule over the given paths: ``module-boundary`` on the import graph, the others on
each file's syntax tree."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tether.core.errors import ConfigError
from tether.lint import boundaries, events, routers
from tether.lint.config import LintConfig
from tether.lint.sources import collect
from tether.lint.violation import Violation

RULES = (boundaries.RULE, routers.RULE, events.RULE)


def lint(paths: Iterable[Path], cfg: LintConfig) -> list[Violation]:
    sources = collect(paths, cfg.exclude, cfg.root_paths())
    found: set[Violation] = set(boundaries.check(sources, cfg))
    for source in sources:
        try:
            tree = source.parse()
        except (SyntaxError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source.path}: cannot parse it: {exc}") from None
        found.update(routers.check(source, tree, cfg))
        found.update(events.check(source, tree, cfg))
    return sorted(found)
