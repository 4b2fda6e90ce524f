"""The three kinds of dead letters the dashboard shows, and the filters each one accepts.

Each kind is a table of the work-item engine (:mod:`tether.queue`): the outbox, webhook
deliveries and jobs. A filter from the page becomes the engine's own :class:`ItemFilter`, so
the rows a page lists are exactly the rows a bulk replay or purge of that filter touches.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tether.core.errors import TetherError
from tether.jobs.store import JOBS
from tether.outbox.table import OUTBOX
from tether.queue import ItemFilter, TableSpec
from tether.webhooks.table import DELIVERIES

MAX_TEXT = 200  # longer filter values are refused: nothing stored is matched by more
_AGES = {"m": "minutes", "h": "hours", "d": "days"}


class BadFilter(TetherError, ValueError):
    """A filter value from the page is not usable; the message names the field."""


@dataclass(frozen=True, slots=True)
class Kind:
    """One table of dead letters. ``columns`` maps a page filter (type, topic, tenant,
    endpoint) to the column it narrows; a filter a kind lacks is not offered for it."""

    name: str
    label: str
    spec: TableSpec
    columns: Mapping[str, str]
    subject: str  # the column shown as the item's headline (type, event type, job name)

    def offers(self, field_name: str) -> bool:
        return field_name in self.columns


OUTBOX_KIND = Kind(
    "outbox",
    "Outbox events",
    OUTBOX,
    {"type": "type", "topic": "topic", "tenant": "tenant_id"},
    "type",
)
DELIVERIES_KIND = Kind(
    "deliveries",
    "Webhook deliveries",
    DELIVERIES,
    {"type": "event_type", "tenant": "tenant_id", "endpoint": "endpoint_id"},
    "event_type",
)
JOBS_KIND = Kind("jobs", "Jobs", JOBS, {"type": "name", "topic": "queue"}, "name")
KINDS: dict[str, Kind] = {k.name: k for k in (OUTBOX_KIND, DELIVERIES_KIND, JOBS_KIND)}


def kind_of(name: str | None) -> Kind:
    if name is None or name == "":
        return OUTBOX_KIND
    try:
        return KINDS[name]
    except KeyError:
        known = ", ".join(KINDS)
        raise BadFilter(f"kind: unknown kind {name[:40]!r}; use one of {known}") from None


@dataclass(frozen=True, slots=True)
class DeadFilter:
    """The page's filter, checked. Empty fields are None."""

    kind: Kind
    type: str | None = None
    topic: str | None = None
    tenant: str | None = None
    endpoint: uuid.UUID | None = None
    error: str | None = None
    after: datetime | None = None
    before: datetime | None = None
    ids: tuple[uuid.UUID, ...] | None = None
    raw: dict[str, str] = field(default_factory=dict)  # what the page sent, to refill the form

    def item_filter(self) -> ItemFilter:
        extra: dict[str, str] = {}
        queue = None
        for name in ("type", "topic", "tenant", "endpoint"):
            value = getattr(self, name)
            if value is None:
                continue
            column = self.kind.columns[name]
            if column == "queue":  # jobs: the queue is a core column of the engine
                queue = str(value)
            else:
                extra[column] = str(value)
        return ItemFilter(
            ids=list(self.ids) if self.ids is not None else None,
            queue=queue,
            error=self.error,
            created_after=self.after,
            created_before=self.before,
            extra=extra,
        )

    def is_empty(self) -> bool:
        return not any(
            getattr(self, n) is not None
            for n in ("type", "topic", "tenant", "endpoint", "error", "after", "before", "ids")
        )


def _text(form: Mapping[str, str], name: str) -> str | None:
    value = (form.get(name) or "").strip()
    if not value:
        return None
    if len(value) > MAX_TEXT:
        raise BadFilter(f"{name}: at most {MAX_TEXT} characters, got {len(value)}")
    if "\x00" in value:
        raise BadFilter(f"{name}: must not contain NUL characters")
    return value


def parse_when(name: str, text: str | None, now: datetime) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone; a browser's datetime-local field sends
    none) or an age such as ``30m``, ``2h``, ``7d``."""
    if text is None:
        return None
    if text[:-1].isdigit() and text[-1:] in _AGES and len(text) <= 8:
        return now - timedelta(**{_AGES[text[-1]]: int(text[:-1])})
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadFilter(
            f"{name}: {text[:40]!r} is neither an ISO time (2026-01-31T12:00) "
            "nor an age (30m, 2h, 7d)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_uuid(name: str, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise BadFilter(f"{name}: {text[:40]!r} is not a UUID") from None


def parse_filter(
    form: Mapping[str, str], now: datetime, ids: list[str] | None = None
) -> DeadFilter:
    """The filter a page (query string or form) names. Fields the kind lacks are refused,
    not ignored: a bulk action must never act on more than the operator asked for."""
    kind = kind_of(form.get("kind"))
    values: dict[str, object] = {}
    for name in ("type", "topic", "tenant", "endpoint"):
        value = _text(form, name)
        if value is None:
            continue
        if not kind.offers(name):
            raise BadFilter(f"{name}: {kind.label.lower()} cannot be filtered by {name}")
        values[name] = parse_uuid(name, value) if name == "endpoint" else value
    after = parse_when("after", _text(form, "after"), now)
    before = parse_when("before", _text(form, "before"), now)
    if after is not None and before is not None and after >= before:
        raise BadFilter("after: must be earlier than before")
    checked_ids = None
    if ids:
        if len(ids) > 1000:
            raise BadFilter(f"id: at most 1000 ids at once, got {len(ids)}")
        checked_ids = tuple(parse_uuid("id", i.strip()) for i in ids)
    raw = {k: str(form.get(k) or "") for k in (
        "kind", "type", "topic", "tenant", "endpoint", "error", "after", "before"
    )}  # fmt: skip
    raw["kind"] = kind.name
    return DeadFilter(
        kind,
        type=values.get("type"),  # type: ignore[arg-type]
        topic=values.get("topic"),  # type: ignore[arg-type]
        tenant=values.get("tenant"),  # type: ignore[arg-type]
        endpoint=values.get("endpoint"),  # type: ignore[arg-type]
        error=_text(form, "error"),
        after=after,
        before=before,
        ids=checked_ids,
        raw=raw,
    )
