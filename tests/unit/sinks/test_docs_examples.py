"""The code blocks of docs/sinks.md run (the JetStream one in tests/integration/sinks)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[3] / "docs" / "sinks.md"


def doc_block(containing: str, replace: dict[str, str] | None = None) -> dict[str, Any]:
    """Execute the ```python block of docs/sinks.md that contains ``containing``, with
    ``replace`` applied (e.g. unique stream names)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    [code] = [b for b in blocks if containing in b]
    for old, new in (replace or {}).items():
        code = code.replace(old, new)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


async def test_memory_sink_example() -> None:
    await doc_block("MemorySink()")["demo"]()
