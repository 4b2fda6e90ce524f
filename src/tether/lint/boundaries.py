"""Rule ``module-boundary``: a business module does not import another module's services or
repositories (its models it may).

The import graph is import-linter's own (grimp), so relative imports, ``from a import b`` of a
sub-module and imports inside functions are all seen; :func:`contracts` writes the same rule as
``[[tool.importlinter.contracts]]`` for teams that run ``lint-imports`` already.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tether.core.errors import ConfigError
from tether.lint.config import LintConfig
from tether.lint.sources import Source
from tether.lint.violation import Violation

RULE = "module-boundary"


@dataclass(frozen=True, slots=True)
class Module:
    name: str  # e.g. app.modules.billing
    parent: str  # e.g. app.modules


def business_modules(graph: object, cfg: LintConfig) -> list[Module]:
    found: list[Module] = []
    for parent in cfg.modules:
        if parent not in graph.modules:  # type: ignore[attr-defined]
            continue
        for child in sorted(graph.find_children(parent)):  # type: ignore[attr-defined]
            found.append(Module(child, parent))
    return found


def _private_of(graph: object, module: Module, cfg: LintConfig) -> list[str]:
    """``<module>.services`` and friends, whichever exist (the layer may be a package)."""
    names = [f"{module.name}.{layer}" for layer in cfg.private]
    return [n for n in names if n in graph.modules]  # type: ignore[attr-defined]


def _graph(sources: Sequence[Source], cfg: LintConfig) -> object | None:
    import grimp

    packages = sorted({p.split(".", 1)[0] for p in cfg.modules} & {s.package for s in sources})
    if not packages:
        return None
    roots = {str(s.root) for s in sources if s.package in packages}
    added = [r for r in roots if r not in sys.path]
    sys.path[:0] = added
    try:
        return grimp.build_graph(*packages, cache_dir=None)
    except Exception as exc:  # grimp's errors (a package it cannot find or parse) are input's
        raise ConfigError(
            f"cannot build the import graph of {', '.join(packages)}: {exc} (check `roots` and "
            "`modules` in [tool.tether.lint])"
        ) from None
    finally:
        for root in added:
            sys.path.remove(root)


def check(sources: Sequence[Source], cfg: LintConfig) -> Iterator[Violation]:
    graph = _graph(sources, cfg)
    if graph is None:
        return
    by_module = {s.module: s for s in sources}
    modules = business_modules(graph, cfg)
    for importer in modules:
        for other in modules:
            if other.name == importer.name:
                continue
            for target in _private_of(graph, other, cfg):
                yield from _imports(graph, importer, target, by_module)


def _imports(
    graph: object, importer: Module, target: str, by_module: dict[str, Source]
) -> Iterator[Violation]:
    inside = [importer.name, *graph.find_descendants(importer.name)]  # type: ignore[attr-defined]
    targets = [target, *graph.find_descendants(target)]  # type: ignore[attr-defined]
    for source_name in inside:
        source = by_module.get(source_name)
        if source is None:
            continue  # not among the files given on the command line
        for imported in targets:
            details = graph.get_import_details(importer=source_name, imported=imported)  # type: ignore[attr-defined]
            for d in details:
                layer = target.rsplit(".", 1)[1]
                yield Violation(
                    str(source.path),
                    int(d["line_number"]),
                    RULE,
                    f"{importer.name} imports {imported}: another module's {layer}",
                    f"call {target.rsplit('.', 1)[0]} through its public API (or an event), or "
                    "import only its models",
                )


def contracts(sources: Sequence[Source], cfg: LintConfig) -> str:
    """The rule as import-linter ``forbidden`` contracts, one per business module (TOML)."""
    graph = _graph(sources, cfg)
    if graph is None:
        return ""
    modules = business_modules(graph, cfg)
    out = []
    for module in modules:
        forbidden = [
            t for other in modules if other != module for t in _private_of(graph, other, cfg)
        ]
        if not forbidden:
            continue
        listed = ", ".join(f'"{f}"' for f in forbidden)
        out.append(
            "[[tool.importlinter.contracts]]\n"
            f'name = "{module.name} does not import other modules\' {"/".join(cfg.private)}"\n'
            'type = "forbidden"\n'
            f'source_modules = ["{module.name}"]\n'
            f"forbidden_modules = [{listed}]\n"
            "allow_indirect_imports = true\n"
        )
    return "\n".join(out)
