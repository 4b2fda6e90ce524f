"""Every Python block in docs/ is copied from a file under examples/, which the tests run.

A block is split at blank lines: each chunk of code must appear verbatim (up to indentation) in
some example, and import lines must each appear somewhere, since examples group imports at the top.
So the documentation cannot drift from code that works.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _lines(code: str) -> list[str]:
    return [line.strip() for line in code.splitlines() if line.strip()]


def _examples() -> tuple[str, set[str]]:
    texts = [p.read_text() for p in sorted((ROOT / "examples").rglob("*.py"))]
    flat = "\n".join("\n".join(_lines(t)) for t in texts)
    return flat, set(flat.splitlines())


def _chunks(block: str) -> list[str]:
    return [c for c in re.split(r"\n\s*\n", textwrap.dedent(block)) if c.strip()]


def _imported(flat_lines: set[str]) -> set[tuple[str, str]]:
    """(module, name) for every ``from module import a, b`` line in the examples."""
    found = set()
    for line in flat_lines:
        match = re.match(r"from (\S+) import (.+)", line)
        if match:
            found |= {(match.group(1), n.strip()) for n in match.group(2).split(",")}
    return found


def _import_found(line: str, flat_lines: set[str]) -> bool:
    match = re.match(r"from (\S+) import (.+)", line)
    if not match:
        return line in flat_lines
    names = {(match.group(1), n.strip()) for n in match.group(2).split(",")}
    return names <= _imported(flat_lines)


BLOCKS = [
    pytest.param(doc, n, block, id=f"{doc.name}#{n}")
    for doc in sorted((ROOT / "docs").glob("*.md"))
    for n, block in enumerate(BLOCK.findall(doc.read_text()))
]


@pytest.mark.parametrize(("doc", "n", "block"), BLOCKS)
def test_block_comes_from_an_example(doc: Path, n: int, block: str) -> None:
    flat, lines = _examples()
    for chunk in _chunks(block):
        code = _lines(chunk)
        imports = [ln for ln in code if ln.startswith(("import ", "from "))]
        rest = [ln for ln in code if ln not in imports]
        missing = [ln for ln in imports if not _import_found(ln, lines)]
        assert not missing, f"{doc.name} block {n}: imports not in any example: {missing}"
        assert "\n".join(rest) in flat, (
            f"{doc.name} block {n}: this code is in no example:\n{chunk}"
        )
