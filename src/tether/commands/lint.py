"""``tether lint PATHS``: the architecture rules of ``[tool.tether.lint]`` (pyproject.toml) or
of a ``tether-lint.toml``.

Prints ``file:line: rule: message`` and a fix for each violation. Exit codes: 0 clean,
1 violations found, 2 bad input (no such path, bad configuration, a file that does not parse).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tether.commands import common
from tether.core.errors import ConfigError
from tether.lint import boundaries, config, run
from tether.lint.sources import collect


def lint(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to check.")],
    *,
    pyproject: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The pyproject.toml whose tool.tether.lint table holds the rules, or a "
            "tether-lint.toml (default: the nearest of either above the first path).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    contracts: Annotated[
        bool,
        typer.Option(
            "--contracts",
            help="Print the module-boundary rule as import-linter contracts and exit.",
        ),
    ] = False,
) -> None:
    """Check business-module boundaries, database calls in routers, events on commit."""
    try:
        path = pyproject if pyproject is not None else config.find_config(paths[0])
        if pyproject is not None and not pyproject.is_file():
            raise ConfigError(f"{pyproject}: no such file")
        cfg = config.load(path)
        if contracts:
            typer.echo(boundaries.contracts(collect(paths, cfg.exclude, cfg.root_paths()), cfg))
            return
        found = run.lint(paths, cfg)
    except ConfigError as exc:
        common.bad_input(str(exc))
    if as_json:
        body = {"violations": [v.as_dict() for v in found], "rules": list(run.RULES)}
        common.out.print_json(json.dumps(body))
    else:
        for v in found:
            common.out.print(v.format(), markup=False, soft_wrap=True)
        common.out.print(f"{len(found)} violation(s)" if found else "clean", markup=False)
    if found:
        raise typer.Exit(common.FAILURE)
