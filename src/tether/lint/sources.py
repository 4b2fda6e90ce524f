"""The Python files under the given paths, each with its dotted module name.

A module's name is its path below the first source root that holds it (``roots`` of the
configuration, ``src`` and the project folder by default), so namespace packages without
``__init__.py`` are named right; a file outside every root is named from the package folders
above it. The root is what goes on ``sys.path`` for the import graph.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Source:
    path: Path
    module: str
    root: Path  # the folder that holds the top package

    def parse(self) -> ast.Module:
        return ast.parse(self.path.read_text(encoding="utf-8"), filename=str(self.path))

    @property
    def package(self) -> str:
        return self.module.split(".", 1)[0]


def module_of(path: Path) -> tuple[str, Path]:
    parts = [] if path.name == "__init__.py" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), folder


def _named(path: Path, roots: Sequence[Path]) -> tuple[str, Path]:
    for root in roots:
        if path.is_relative_to(root):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts and parts[-1] == "__init__":
                parts.pop()
            if parts and all(p.isidentifier() for p in parts):
                return ".".join(parts), root
    return module_of(path)


_SKIPPED = frozenset({"__pycache__", "node_modules", "venv", "build", "dist"})


def _skipped(file: Path, under: Path) -> bool:
    """Hidden folders (.venv, .git, .tox) and build output are not the project's code."""
    parts = file.relative_to(under).parts[:-1]
    return any(p.startswith(".") or p in _SKIPPED for p in parts)


def collect(
    paths: Iterable[Path], exclude: Iterable[str] = (), roots: Sequence[Path] = ()
) -> list[Source]:
    files: list[Path] = []
    for given in paths:
        if not given.exists():
            raise ConfigError(f"{given}: no such file or folder")
        if given.is_dir():
            files.extend(f for f in sorted(given.rglob("*.py")) if not _skipped(f, given))
        elif given.suffix == ".py":
            files.append(given)
    skipped = tuple(exclude)
    found: dict[Path, Source] = {}
    for file in files:
        resolved = file.resolve()
        shown = file.as_posix()
        if any(fnmatch.fnmatch(shown, pattern) for pattern in skipped):
            continue
        module, root = _named(resolved, [r.resolve() for r in roots])
        if module:
            found[resolved] = Source(file, module, root)
    return list(found.values())
