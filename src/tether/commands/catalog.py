"""``tether catalog``: document an event catalog (AsyncAPI 3, Markdown) and guard its schemas.

``--check snapshot.json`` compares every registered (type, version) with the committed
snapshot and exits 1 listing each incompatible change (see :mod:`tether.catalog.compat`);
``--write-snapshot`` records the catalog as it is now.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tether.commands import common

if TYPE_CHECKING:
    from tether.catalog import EventCatalog

# tether.catalog (and pydantic with it) is imported inside the functions below, so the other
# commands do not pay for it when the CLI starts.

ModuleOption = Annotated[
    str,
    typer.Option(
        "--module",
        "-m",
        help="Import path of the catalog object: package.module:attribute.",
        show_default=False,
    ),
]


@contextlib.contextmanager
def _cwd_importable() -> Iterator[None]:
    # The console script's sys.path starts at its own directory: make the project's modules
    # importable as `python -m` would, for this import only.
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(here)


def load_catalog(spec: str) -> EventCatalog:
    """The catalog ``spec`` (``module:attribute``) names; exits 2 saying what failed."""
    from tether.catalog import EventCatalog

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        common.bad_input(f"--module {spec!r} must be module:attribute, e.g. app.events:catalog")
    try:
        with _cwd_importable():
            module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: any error in it is bad input to us
        common.bad_input(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}")
    found = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            common.bad_input(f"module {module_name!r} has no attribute {attribute!r}")
        found = getattr(found, part)
    if not isinstance(found, EventCatalog):
        common.bad_input(f"{spec} is a {type(found).__name__}, not a tether.catalog.EventCatalog")
    return found


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        common.fail(f"cannot write {path}: {exc.strerror or exc}")


def _asyncapi(catalog: EventCatalog, path: Path) -> None:
    from tether.catalog import asyncapi as asyncapi_doc
    from tether.catalog import render

    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        common.bad_input(f"--asyncapi {path} must end in .yaml, .yml or .json")
    doc = asyncapi_doc.build(catalog)
    _write(path, render.to_json(doc) if suffix == ".json" else render.to_yaml(doc))
    common.out.print(
        f"wrote {path}: AsyncAPI {asyncapi_doc.ASYNCAPI_VERSION}, "
        f"{len(doc['components']['messages'])} messages on {len(doc['channels'])} channels",
        soft_wrap=True,
    )


def _read_snapshot(path: Path) -> dict[str, object]:
    from tether.catalog import compat

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        common.bad_input(f"snapshot {path} does not exist: create it with --write-snapshot")
    except OSError as exc:
        common.bad_input(f"cannot read snapshot {path}: {exc.strerror or exc}")
    return compat.loads(text, str(path))


def _check(catalog: EventCatalog, path: Path) -> None:
    from tether.catalog import compat

    old = _read_snapshot(path)
    found = compat.breaks(old, catalog)
    for item in found:
        common.err.print(f"breaking: {item}", soft_wrap=True, markup=False)
    if found:
        common.fail(
            f"{len(found)} incompatible schema change(s) against {path}: register a new "
            "version (with an upcaster) instead, or accept them with --write-snapshot"
        )
    changed = compat.stale(old, catalog)
    if changed:
        common.out.print(
            f"compatible; snapshot {path} is out of date for {', '.join(changed)}: "
            "update it with --write-snapshot",
            markup=False,
            soft_wrap=True,
        )
    else:
        common.out.print(
            f"compatible: {len(catalog.types())} event versions match {path}", soft_wrap=True
        )


def catalog(
    module: ModuleOption,
    asyncapi: Annotated[
        Path | None,
        typer.Option("--asyncapi", help="Write an AsyncAPI 3.0 document (.yaml or .json)."),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write a Markdown page of every type.")
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option(
            "--check", help="Exit 1 if a schema changed incompatibly since this snapshot."
        ),
    ] = None,
    write_snapshot: Annotated[
        bool,
        typer.Option("--write-snapshot", help="Write the --check snapshot instead of checking."),
    ] = False,
) -> None:
    """Document an event catalog and check its schemas against a committed snapshot."""
    from tether.catalog import compat, render

    if write_snapshot and check is None:
        common.bad_input("--write-snapshot needs --check PATH: the snapshot file to write")
    if asyncapi is None and markdown is None and check is None:
        common.bad_input("nothing to do: give --asyncapi, --markdown and/or --check")
    events = load_catalog(module)
    if not events.types():
        common.bad_input(f"{module} has no registered event types")
    if asyncapi is not None:
        _asyncapi(events, asyncapi)
    if markdown is not None:
        _write(markdown, render.to_markdown(events))
        common.out.print(f"wrote {markdown}: {len(events.types())} event versions", soft_wrap=True)
    if check is not None and write_snapshot:
        _write(check, compat.dumps(compat.snapshot(events)))
        common.out.print(
            f"wrote snapshot {check}: {len(events.types())} event versions", soft_wrap=True
        )
    elif check is not None:
        _check(events, check)
