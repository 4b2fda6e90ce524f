"""The event catalog: which event types exist, their payload models, versions and topics.

Types are registered in code with a pydantic model. ``add_event`` (through
``ProducerPolicy(catalog=...)``) validates payloads against the model before anything is
written; consumers (``Consumer(catalog=...)``) turn older versions into the current shape with
the registered upcasters before their handler runs.
"""

from __future__ import annotations

import builtins
import dataclasses
import difflib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from tether.core import jsonutil
from tether.core.envelope import Event, is_name
from tether.core.errors import ConfigError, EventValidationError
from tether.ops import instruments

Unknown = Literal["accept", "refuse"]
log = logging.getLogger("tether.catalog")
UNKNOWN_ACCEPTED = instruments.counter(
    "tether_catalog_unknown_events_total",
    "Events of a type the event catalog does not register, let through because it accepts "
    "unknown types, by where they were seen (produce or consume)",
    ["where"],
)
# Types are logged once each; past this many distinct names (a flood of made-up types from a
# broker), further ones are only counted.
_LOGGED_UNKNOWN_MAX = 1_000
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Takes a payload of version ``n`` (a dict) and returns it in the shape of version ``n + 1``."""
M = TypeVar("M", bound=type[BaseModel])
U = TypeVar("U", bound=Upcaster)

# PascalCase: a capital first, letters and digits only, some lower case (no SHOUTING).
_PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]{0,127}$")
_MAX_VERSION = 10_000


@dataclass(frozen=True, slots=True)
class EventType:
    """One registered (type, version): its payload model, topic and example."""

    type: str
    version: int
    topic: str
    model: builtins.type[BaseModel]  # `type` is a field name here
    example: dict[str, Any] | None = None
    description: str | None = None

    @property
    def key(self) -> str:
        """``OrderPlacedV2``: the name of this version in generated documents."""
        return f"{self.type}V{self.version}"

    def json_schema(self, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
        """The payload's JSON schema (pydantic's, nested models under ``$defs``)."""
        schema: dict[str, Any] = self.model.model_json_schema(
            ref_template=ref_template, mode="validation"
        )
        return schema


def check_type_name(name: object) -> str:
    """``name`` if it is a PascalCase event type name, else a :class:`ConfigError` naming it."""
    if (
        not isinstance(name, str)
        or not _PASCAL.fullmatch(name)
        or not any(c.islower() for c in name)
    ):
        raise ConfigError(
            f"event type name {name!r} is not PascalCase: start with a capital letter, then "
            "letters and digits only, e.g. 'OrderPlaced' (no dots, dashes or underscores)"
        )
    return name


def _check_version(version: object) -> int:
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= _MAX_VERSION
    ):
        raise ConfigError(f"event version must be an integer 1..{_MAX_VERSION}, got {version!r}")
    return version


def _check_topic(topic: object) -> str:
    if not is_name(topic):  # the envelope's rule: topics travel into subjects and headers
        raise ConfigError(
            f"event topic {topic!r} is invalid: use 1-255 characters from letters, digits and "
            ". _ : - / (starting with a letter or digit)"
        )
    return topic


def _loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(payload)"


def _describe(exc: ValidationError) -> str:
    """Pydantic's errors as ``field.path: message``, one after the other on one line."""
    parts = [f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)[:5]]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _as_object(payload: object) -> object:
    """A payload as ``add_event`` accepts it (model, JSON value, JSON bytes) as plain JSON."""
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json", by_alias=True)
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            return orjson.loads(bytes(payload))
        except orjson.JSONDecodeError as exc:
            raise EventValidationError(f"payload bytes are not valid JSON: {exc}") from None
    return payload


class EventCatalog:
    """Registered event types. ``unknown`` says what happens to a type not registered here:
    ``"accept"`` lets it through unchecked, ``"refuse"`` raises naming it and close matches."""

    def __init__(
        self, *, unknown: Unknown = "accept", title: str = "Events", version: str = "1.0.0"
    ) -> None:
        if unknown not in ("accept", "refuse"):
            raise ConfigError(f"unknown must be 'accept' or 'refuse', got {unknown!r}")
        if not isinstance(title, str) or not title.strip():
            raise ConfigError("catalog title must be a non-empty string")
        if not isinstance(version, str) or not version.strip():
            raise ConfigError("catalog version must be a non-empty string, e.g. '1.0.0'")
        self.unknown: Unknown = unknown
        self.title = title
        self.version = version
        self._types: dict[str, dict[int, EventType]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._unknown_logged: set[str] = set()

    # -- registration ---------------------------------------------------------------------

    def register(
        self,
        *,
        model: type[BaseModel],
        type: str,
        version: int = 1,
        topic: str,
        example: BaseModel | Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> EventType:
        """Register ``model`` as the payload of ``type`` at ``version`` on ``topic``."""
        name = check_type_name(type)
        number = _check_version(version)
        where = _check_topic(topic)
        if not (isinstance(model, builtins.type) and issubclass(model, BaseModel)):
            raise ConfigError(f"event type {name} v{number}: model must be a pydantic model class")
        versions = self._types.setdefault(name, {})
        if number in versions:
            raise ConfigError(f"event type {name} version {number} is already registered")
        for other in versions.values():
            if other.topic != where:
                raise ConfigError(
                    f"event type {name} v{number} is on topic {where!r} but v{other.version} is "
                    f"on {other.topic!r}: every version of a type goes on one topic"
                )
        entry = EventType(name, number, where, model, None, description or _doc(model))
        if example is not None:
            try:
                checked = self.check(entry, _as_object(example))
            except EventValidationError as exc:
                raise ConfigError(f"the example of {name} v{number} is invalid: {exc}") from None
            entry = dataclasses.replace(entry, example=checked)
        versions[number] = entry
        return entry

    def event(
        self,
        type: str,
        *,
        version: int = 1,
        topic: str,
        example: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Callable[[M], M]:
        """Decorator form of :meth:`register`: ``@catalog.event("OrderPlaced", topic="order")``."""
        check_type_name(type)

        def decorate(model: M) -> M:
            self.register(
                model=model,
                type=type,
                version=version,
                topic=topic,
                example=example,
                description=description,
            )
            return model

        return decorate

    def upcaster(self, type: str, from_version: int) -> Callable[[U], U]:
        """Decorator: the function turns a ``from_version`` payload into ``from_version + 1``."""
        name = check_type_name(type)
        number = _check_version(from_version)

        def decorate(fn: U) -> U:
            self.add_upcaster(name, number, fn)
            return fn

        return decorate

    def add_upcaster(self, type: str, from_version: int, fn: Upcaster) -> None:
        name = check_type_name(type)
        number = _check_version(from_version)
        if not callable(fn):
            raise ConfigError(f"upcaster for {name} v{number} must be callable")
        if (name, number) in self._upcasters:
            raise ConfigError(f"an upcaster from {name} v{number} is already registered")
        self._upcasters[(name, number)] = fn

    # -- lookup ---------------------------------------------------------------------------

    def types(self) -> list[EventType]:
        """Every registered (type, version), sorted by topic, type and version."""
        found = [e for versions in self._types.values() for e in versions.values()]
        return sorted(found, key=lambda e: (e.topic, e.type, e.version))

    def get(self, type: str, version: int | None = None) -> EventType | None:
        """The registered entry (the current version when ``version`` is None), or None."""
        versions = self._types.get(type)
        if not versions:
            return None
        return versions.get(max(versions) if version is None else version)

    def current(self, type: str) -> EventType | None:
        return self.get(type)

    def __contains__(self, type: object) -> bool:
        return type in self._types

    def unknown_type(self, type: str) -> EventValidationError:
        """The error for an unregistered type, with close matches when there are any."""
        close = difflib.get_close_matches(type, list(self._types), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return EventValidationError(
            f"event type {type!r} is not in the event catalog (unknown types are refused){hint}"
        )

    # -- validation and upcasting ---------------------------------------------------------

    def validate(self, type: str, version: int | None, payload: object) -> object:
        """The payload as it will be written: the model's JSON form for a registered type,
        the payload unchanged for an unknown type the catalog accepts.

        Raises :class:`EventValidationError` naming the field path, or the unknown type.
        """
        entry = self.resolve(type, version)
        if entry is None:
            return payload
        return self.check(entry, payload)

    def resolve(self, type: str, version: int | None) -> EventType | None:
        """The entry a payload of ``type`` at ``version`` (None: current) must match; None for
        an unknown type the catalog accepts. Raises :class:`EventValidationError` otherwise."""
        versions = self._types.get(type)
        if not versions:
            if self.unknown == "refuse":
                raise self.unknown_type(type)
            self._accepted_unknown(type, "produce")
            return None
        number = max(versions) if version is None else version
        entry = versions.get(number)
        if entry is None:
            known = ", ".join(f"v{v}" for v in sorted(versions))
            raise EventValidationError(
                f"event type {type} has no version {version!r} in the catalog (known: {known})"
            )
        return entry

    def check(self, entry: EventType, payload: object) -> dict[str, Any]:
        """``payload`` validated by ``entry``'s model, in the model's JSON form."""
        try:
            model = entry.model.model_validate(_as_object(payload))
        except ValidationError as exc:
            raise EventValidationError(
                f"event {entry.type} v{entry.version} payload is invalid: {_describe(exc)}"
            ) from None
        dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
        return dumped

    def upcast(self, event: Event) -> Event:
        """``event`` with its payload upcast to the type's current version and validated.

        Unknown types pass unchanged (or raise when the catalog refuses them). Raises
        :class:`EventValidationError` when an upcaster is missing or fails, when the event is
        newer than the catalog knows, or when the result does not fit the current model.
        """
        versions = self._types.get(event.type)
        if not versions:
            if self.unknown == "refuse":
                raise self.unknown_type(event.type)
            self._accepted_unknown(event.type, "consume")
            return event
        current = versions[max(versions)]
        if event.version > current.version:
            raise EventValidationError(
                f"event {event.type} v{event.version} is newer than the catalog's current "
                f"v{current.version}: deploy the new model first"
            )
        payload = event.payload
        for step in range(event.version, current.version):
            payload = self._step(event.type, step, payload)
        checked = self.check(current, payload)
        if event.version == current.version and checked == event.payload:
            return event  # already in shape: keep the bytes as received
        return dataclasses.replace(event, data=jsonutil.dumps(checked), version=current.version)

    def _accepted_unknown(self, type: str, where: str) -> None:
        """Accepting is a choice, never silence: a warning the first time each type passes,
        and a counter every time (alert on it to find types nobody registered)."""
        UNKNOWN_ACCEPTED.labels(where).inc()
        if type in self._unknown_logged or len(self._unknown_logged) >= _LOGGED_UNKNOWN_MAX:
            return
        self._unknown_logged.add(type)
        log.warning(
            "event type %r is not in the event catalog %r; let through unchecked (%s) because "
            "the catalog accepts unknown types: register it, or use unknown='refuse'",
            type, self.title, where,
        )  # fmt: skip

    def _step(self, type: str, version: int, payload: Any) -> Any:
        fn = self._upcasters.get((type, version))
        if fn is None:
            raise EventValidationError(
                f"event {type} v{version} has no upcaster to v{version + 1} in the catalog"
            )
        try:
            return fn(payload)
        except Exception as exc:
            raise EventValidationError(
                f"upcaster {type} v{version}->v{version + 1} failed: {type_name(exc)}: {exc}"
            ) from exc


def type_name(exc: BaseException) -> str:
    return exc.__class__.__name__


def _doc(model: type[BaseModel]) -> str | None:
    doc = model.__doc__
    if not doc or doc == BaseModel.__doc__:
        return None
    return " ".join(doc.split())
