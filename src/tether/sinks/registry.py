"""Sinks by name: each brings its settings model and a factory, found through entry points.

A package adds a sink by declaring a :class:`SinkPlugin` in the ``tether.sinks`` entry-point
group (``[project.entry-points."tether.sinks"] webhook = "acme.tether_webhook:PLUGIN"``);
``tether relay`` then reads ``[sinks.webhook]`` with the plugin's model and opens the sink
with its factory. :func:`register` adds one in code (tests, applications that embed Tether).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tether.core.errors import ConfigError
from tether.sinks.base import Sink

GROUP = "tether.sinks"
S = TypeVar("S", bound=BaseModel)


class SinkSettings(BaseModel):
    """A convenient base for a ``[sinks.<name>]`` model: frozen, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def hint(text: str, **constraints: Any) -> Any:
    """A field whose configuration error reads ``must be <text>`` (``Field`` otherwise)."""
    return Field(json_schema_extra={"hint": text}, **constraints)


@dataclass(frozen=True)
class SinkPlugin(Generic[S]):
    """One kind of sink.

    ``settings`` is the pydantic model of its ``[sinks.<name>]`` section; every field needs a
    default, because the section may be absent. ``enabled`` says whether a section turns the
    sink on (a URL is set, ``enabled = true``); ``open`` builds the sink from the section and
    may raise :class:`~tether.core.errors.SinkUnavailableError` or ``OSError`` while its
    target is down (the relay retries). ``enable_hint`` tells a user how to turn it on.
    """

    name: str
    settings: type[S]
    open: Callable[[S], Awaitable[Sink]]
    enabled: Callable[[S], bool]
    enable_hint: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ConfigError(
                f"sink name {self.name!r}: use lower-case letters, digits and underscores"
            )
        try:
            self.settings()
        except ValidationError as exc:
            raise ConfigError(
                f"sink {self.name!r}: every field of {self.settings.__name__} needs a default "
                f"(the [sinks.{self.name}] section may be absent): {exc}"
            ) from None

    async def open_sink(self, settings: BaseModel) -> Sink:
        if not isinstance(settings, self.settings):
            raise ConfigError(
                f"sink {self.name!r} takes {self.settings.__name__}, not {type(settings).__name__}"
            )
        sink = await self.open(settings)
        if sink.name != self.name:
            await sink.close()
            raise ConfigError(
                f"sink {self.name!r}: its factory made a sink named {sink.name!r}; routes "
                "refer to sinks by the plugin's name, so the two must match"
            )
        return sink

    def is_enabled(self, settings: BaseModel) -> bool:
        return isinstance(settings, self.settings) and self.enabled(settings)


_discovered: dict[str, SinkPlugin[Any]] | None = None
_in_code: dict[str, SinkPlugin[Any]] = {}


def _load(entry: EntryPoint) -> SinkPlugin[Any]:
    where = f"entry point {entry.name!r} ({entry.value}) of group {GROUP!r}"
    try:
        plugin = entry.load()
    except Exception as exc:  # a broken third-party package must not break the rest
        raise ConfigError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from None
    if not isinstance(plugin, SinkPlugin):
        raise ConfigError(f"{where} gives {type(plugin).__name__}, not a SinkPlugin")
    if plugin.name != entry.name:
        raise ConfigError(f"{where} names its plugin {plugin.name!r}; the two must match")
    return plugin


def _from_entry_points() -> dict[str, SinkPlugin[Any]]:
    global _discovered
    if _discovered is None:
        _discovered = {e.name: _load(e) for e in entry_points(group=GROUP)}
    return _discovered


def plugins() -> dict[str, SinkPlugin[Any]]:
    """Every known sink by name, sorted; plugins registered in code win over entry points."""
    found = {**_from_entry_points(), **_in_code}
    return dict(sorted(found.items()))


def names() -> tuple[str, ...]:
    return tuple(plugins())


def get(name: str) -> SinkPlugin[Any]:
    """The plugin called ``name``; a :class:`ConfigError` listing the known ones if none is."""
    found = plugins()
    if name not in found:
        raise ConfigError(f"unknown sink {name!r}: known sinks are {', '.join(found)}")
    return found[name]


def register(plugin: SinkPlugin[Any]) -> None:
    """Make ``plugin`` known under its name in this process (replacing one of that name)."""
    _in_code[plugin.name] = plugin


def unregister(name: str) -> None:
    _in_code.pop(name, None)


@contextmanager
def registered(plugin: SinkPlugin[Any]) -> Iterator[SinkPlugin[Any]]:
    """``register`` for the length of a ``with`` block; a replaced plugin comes back after."""
    previous = _in_code.get(plugin.name)
    register(plugin)
    try:
        yield plugin
    finally:
        if previous is None:
            unregister(plugin.name)
        else:
            register(previous)
