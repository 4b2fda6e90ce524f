"""Every Python block in docs/ is copied from a file under examples/, which the tests run.

So the documentation cannot drift from code that works.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _normalize(code: str) -> str:
    return "\n".join(line.rstrip() for line in textwrap.dedent(code).strip().splitlines())


def _examples() -> str:
    texts = [p.read_text() for p in sorted((ROOT / "examples").rglob("*.py"))]
    return "\n".join(_normalize(t) for t in texts) + "\n" + "\n".join(texts)


BLOCKS = [
    pytest.param(doc, n, block, id=f"{doc.name}#{n}")
    for doc in sorted((ROOT / "docs").glob("*.md"))
    for n, block in enumerate(BLOCK.findall(doc.read_text()))
]


@pytest.mark.parametrize(("doc", "n", "block"), BLOCKS)
def test_block_comes_from_an_example(doc: Path, n: int, block: str) -> None:
    examples = _examples()
    wanted = _normalize(block)
    dedented_examples = "\n".join(_normalize(chunk) for chunk in examples.split("\n\n"))
    assert (
        wanted in examples or wanted in dedented_examples or textwrap.dedent(block) in examples
    ), f"{doc.name} code block {n} is not taken from any file under examples/"
