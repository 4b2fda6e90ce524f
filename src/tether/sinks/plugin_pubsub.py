"""``[sinks.pubsub]``: the Google Cloud Pub/Sub sink as a registry plugin.

The adapter (and gcloud-aio-pubsub, the ``pubsub`` extra) is imported when the sink is opened:
reading the settings works without the extra.
"""

from __future__ import annotations

from pydantic import field_validator, model_validator

from tether.core.errors import ConfigError
from tether.sinks._pubsub_names import PROJECT_ID, topic_template
from tether.sinks.base import Sink
from tether.sinks.registry import SinkPlugin, SinkSettings, hint

MAX_MESSAGE_BYTES = 10_000_000
_PROJECT = PROJECT_ID.pattern


class PubSubSettings(SinkSettings):
    project: str | None = hint(
        "a Google Cloud project id like my-project", default=None, pattern=_PROJECT
    )
    topic: str = hint(
        "a topic id or a template like {topic} or tether-{topic} (letters, digits, - _ . ~ + %)",
        default="{topic}",
    )
    emulator_host: str | None = hint(
        "host:port of a Pub/Sub emulator, like 127.0.0.1:8085",
        default=None,
        pattern=r"^(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$",
    )
    api_root: str | None = hint(
        "an https:// URL like https://europe-west1-pubsub.googleapis.com/v1",
        default=None,
        pattern=r"^https?://[^\s]+$",
    )
    credentials_file: str | None = hint(
        "the path of a service-account key or Application Default Credentials JSON file",
        default=None,
        min_length=1,
    )
    timeout: float = hint("seconds, > 0 and <= 300", default=5.0, gt=0, le=300)
    max_message_bytes: int = hint(
        f"bytes, 1..{MAX_MESSAGE_BYTES} (Pub/Sub's limit)",
        default=MAX_MESSAGE_BYTES,
        ge=1,
        le=MAX_MESSAGE_BYTES,
    )

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        try:
            topic_template(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_endpoint(self) -> PubSubSettings:
        if self.emulator_host is not None and self.api_root is not None:
            raise ValueError("sinks.pubsub: give emulator_host or api_root, not both")
        if self.emulator_host is not None and self.credentials_file is not None:
            raise ValueError(
                "sinks.pubsub: credentials_file is for Google Cloud; the emulator at "
                "emulator_host takes none (drop one of them)"
            )
        return self


async def _open_pubsub(s: PubSubSettings) -> Sink:
    from tether.sinks.pubsub import PubSubSink

    assert s.project is not None  # enabled() says so
    return await PubSubSink.connect(
        project=s.project,
        topic=s.topic,
        name="pubsub",
        emulator_host=s.emulator_host,
        api_root=s.api_root,
        credentials_file=s.credentials_file,
        timeout=s.timeout,
        max_message_bytes=s.max_message_bytes,
    )


PUBSUB: SinkPlugin[PubSubSettings] = SinkPlugin(
    "pubsub",
    PubSubSettings,
    _open_pubsub,
    enabled=lambda s: s.project is not None,
    enable_hint="sinks.pubsub.project (Google Cloud Pub/Sub; emulator_host for the emulator)",
)
