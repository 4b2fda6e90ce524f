"""Pub/Sub's names: project ids and topic ids, checked before anything is sent.

Shared by the settings (``plugin_pubsub``, which must import without the ``pubsub`` extra) and
the adapter. A topic id also goes into the request path, so nothing outside its alphabet may
reach a URL.
"""

from __future__ import annotations

import re

from tether.core.envelope import Event
from tether.core.errors import ConfigError
from tether.sinks import _keys

TOPIC_ID = re.compile(r"^(?!goog)[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
PROJECT_ID = re.compile(r"^([a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
MAX_TOPIC_BYTES = 255
_TOPIC_RULE = "3-255 characters, a letter first, then letters, digits and - _ . ~ + % (not goog...)"


def topic_template(template: str) -> _keys.KeyFn:
    """``Event -> topic id`` for ``template``. A template whose fixed text can never make a
    topic id is a :class:`ConfigError`; an event whose values do not fit raises
    :class:`~tether.sinks._keys.KeyTemplateError` (that event fails, not retryable)."""
    key_of = _keys.key_template(template, what="topic", max_bytes=MAX_TOPIC_BYTES)
    # Each field as a short valid value: the fixed text must fit around it (a fixed topic, with
    # no field, must be a topic id as it stands).
    sample = template.format(**{f: "xxx" for f in _keys.FIELDS})
    if not TOPIC_ID.fullmatch(sample):
        raise ConfigError(f"topic {template!r} cannot make a Pub/Sub topic id: use {_TOPIC_RULE}")

    def topic_of(event: Event) -> str:
        topic = key_of(event)
        if not TOPIC_ID.fullmatch(topic):
            raise _keys.KeyTemplateError(
                f"topic {topic!r} (from {template!r}) is not a Pub/Sub topic id: use {_TOPIC_RULE}"
            )
        return topic

    return topic_of


def check_project(project: str) -> str:
    if not PROJECT_ID.fullmatch(project):
        raise ConfigError(
            f"project {project!r} is not a Google Cloud project id: 6-30 lower-case letters, "
            "digits and hyphens, a letter first"
        )
    return project
