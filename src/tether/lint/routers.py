"""Rule ``router-session``: routers do not call ``commit()``, ``execute()`` or ``flush()`` on a
database session; that work belongs to a service, which writes its event in the same transaction.

A receiver is a session when its name is one of ``session_names`` (``session``, ``db``, ...,
also as ``self.session``) or a parameter of the enclosing function annotated with a type whose
name holds ``Session`` or ``Connection``.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterator

from tether.lint.config import LintConfig
from tether.lint.sources import Source
from tether.lint.violation import Violation

RULE = "router-session"
CALLS = frozenset({"commit", "execute", "flush"})
_SESSION_TYPES = ("Session", "Connection")


def is_router(module: str, cfg: LintConfig) -> bool:
    return any(fnmatch.fnmatchcase(module, pattern) for pattern in cfg.routers)


def check(source: Source, tree: ast.Module, cfg: LintConfig) -> Iterator[Violation]:
    if not is_router(source.module, cfg):
        return
    yield from _Visitor(source, cfg).found(tree)


def _name_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _typed_sessions(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    args = fn.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        if arg.annotation is not None and any(
            t in ast.unparse(arg.annotation) for t in _SESSION_TYPES
        ):
            names.add(arg.arg)
    return names


class _Visitor(ast.NodeVisitor):
    def __init__(self, source: Source, cfg: LintConfig) -> None:
        self.source = source
        self.names = set(cfg.session_names)
        self.scopes: list[set[str]] = [set()]
        self.violations: list[Violation] = []

    def found(self, tree: ast.Module) -> list[Violation]:
        self.visit(tree)
        return self.violations

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scopes.append(self.scopes[-1] | _typed_sessions(node))
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in CALLS:
            receiver = _name_of(func.value)
            if receiver is not None and (receiver in self.names or receiver in self.scopes[-1]):
                self.violations.append(
                    Violation(
                        str(self.source.path),
                        node.lineno,
                        RULE,
                        f"a router calls {receiver}.{func.attr}()",
                        "move the database work into a service function the route calls; the "
                        "service writes its event and the transaction commits there",
                    )
                )
        self.generic_visit(node)
