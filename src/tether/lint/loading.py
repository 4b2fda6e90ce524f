"""Load a live ASGI app from ``module:attr`` (an app, or a factory that takes no argument)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from tether.core.errors import ConfigError


def load_app(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"app {spec!r}: give it as module:attribute, e.g. myapp.main:app")
    if os.getcwd() not in sys.path:  # as uvicorn does: the app's package is found from here
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"app {spec!r}: cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"app {spec!r}: {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if _is_app(target):
        return target
    if callable(target):
        try:
            made = target()
        except TypeError as exc:
            raise ConfigError(f"app {spec!r}: a factory must take no argument ({exc})") from None
        if _is_app(made):
            return made
        raise ConfigError(f"app {spec!r}: the factory returned {type(made).__name__}, not an app")
    raise ConfigError(f"app {spec!r} is a {type(target).__name__}, not a Starlette/FastAPI app")


def _is_app(value: Any) -> bool:
    """A Starlette/FastAPI app, or plain ASGI middleware wrapped around one (``.app``)."""
    for _ in range(50):  # a wrapper chain this long is a cycle, not an app
        if hasattr(value, "routes") and hasattr(value, "user_middleware"):
            return True
        value = getattr(value, "app", None)
        if value is None:
            return False
    return False
