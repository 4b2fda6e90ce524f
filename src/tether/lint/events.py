"""Rule ``event-on-commit``: a configured state-changing function writes an event (``add_event``
or a registered helper) on every path that commits.

A commit is a ``.commit()`` call, or the end of a ``with``/``async with`` block over a call named
in ``transactions`` (``session.begin()``, ``store.transaction()``), including a ``return``
inside it. The check follows the function's structure (branches, loops, ``try``): at each
commit, an event must have been written on every way there; a branch that raises commits
nothing. Calls are matched by name, so a helper that calls ``add_event`` is registered in
``event_helpers``.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from tether.lint.config import LintConfig
from tether.lint.sources import Source
from tether.lint.violation import Violation

RULE = "event-on-commit"

# The analysis state: True when every path so far wrote an event, False when one did not,
# None when no path reaches here (after return or raise).
State = bool | None


def _join(*states: State) -> State:
    live = [s for s in states if s is not None]
    return None if not live else all(live)


def _called(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def functions(tree: ast.Module, module: str) -> Iterator[tuple[str, ast.AST]]:
    """Top-level functions and methods with their qualified names."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{module}.{node.name}", node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield f"{module}.{node.name}.{item.name}", item


def check(source: Source, tree: ast.Module, cfg: LintConfig) -> Iterator[Violation]:
    if not cfg.state_changing:
        return
    for name, fn in functions(tree, source.module):
        if any(fnmatch.fnmatchcase(name, p) for p in cfg.state_changing):
            assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from _Flow(source, cfg, name).run(fn)


@dataclass
class _Flow:
    source: Source
    cfg: LintConfig
    name: str
    open_transactions: list[int] = field(default_factory=list)
    lines: dict[int, None] = field(default_factory=dict)  # commit lines without an event

    def run(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Violation]:
        self.block(fn.body, False)
        helpers = ", ".join(self.cfg.event_helpers)
        return [
            Violation(
                str(self.source.path),
                line,
                RULE,
                f"{self.name} commits on a path that writes no event",
                f"call {helpers.split(', ')[0]}() (or one of: {helpers}) before this commit on "
                "every branch, in the same transaction",
            )
            for line in self.lines
        ]

    def commit(self, line: int, state: State) -> None:
        if state is False:
            self.lines.setdefault(line)

    def block(self, body: Sequence[ast.stmt], state: State) -> State:
        for stmt in body:
            if state is None:
                return None  # unreachable
            state = self.stmt(stmt, state)
        return state

    def stmt(self, s: ast.stmt, state: State) -> State:
        if isinstance(s, ast.Return):
            state = self.expr(s.value, state) if s.value is not None else state
            if self.open_transactions:  # leaving the block commits it
                self.commit(s.lineno, state)
            return None
        if isinstance(s, ast.Raise):
            return None  # the transaction rolls back: nothing commits on this path
        if isinstance(s, ast.If):
            state = self.expr(s.test, state)
            return _join(self.block(s.body, state), self.block(s.orelse, state))
        if isinstance(s, ast.For | ast.AsyncFor | ast.While):
            head = s.iter if isinstance(s, ast.For | ast.AsyncFor) else s.test
            state = self.expr(head, state)
            looped = self.block(s.body, state)
            return self.block(s.orelse, _join(state, looped))
        if isinstance(s, ast.Try | ast.TryStar):
            done = self.block(s.orelse, self.block(s.body, state))
            handled = [self.block(h.body, state) for h in s.handlers]
            after = _join(done, *handled)
            return self.block(s.finalbody, after) if s.finalbody else after
        if isinstance(s, ast.With | ast.AsyncWith):
            return self.with_block(s, state)
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return state  # defined here, run elsewhere
        return self.expr(s, state)

    def with_block(self, s: ast.With | ast.AsyncWith, state: State) -> State:
        commits = False
        for item in s.items:
            state = self.expr(item.context_expr, state)
            call = item.context_expr
            if isinstance(call, ast.Call) and _called(call) in self.cfg.transactions:
                commits = True
        if commits:
            self.open_transactions.append(s.lineno)
        try:
            inner = self.block(s.body, state)
        finally:
            if commits:
                self.open_transactions.pop()
        if commits:
            self.commit(s.lineno, inner)
        return inner

    def expr(self, node: ast.AST, state: State) -> State:
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
        calls.sort(key=lambda c: (c.lineno, c.col_offset))
        for call in calls:
            name = _called(call)
            if name in self.cfg.event_helpers:
                state = True
            elif name == "commit" and isinstance(call.func, ast.Attribute):
                self.commit(call.lineno, state)
        return state
