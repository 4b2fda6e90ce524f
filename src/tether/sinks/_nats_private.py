"""Every use of nats-py's private API, in one place, each with a public fallback.

* :func:`write_frames` appends ready-made ``HPUB`` frames to the client's output buffer and
  kicks its flusher once (``Client._send_command``, ``Client._flush_pending``). Without them
  (:func:`can_write_frames` is false) the sink uses the public ``Client.publish``.
* :func:`hook_acks` wraps ``Client._process_msg`` (and reads ``Subscription._id``) so that a
  sink's PubAcks are settled straight from the protocol parser, with no ``Msg`` object,
  subscription queue or task switch per ack. Everything else is passed on untouched, and the
  subscription callback settles acks too: if nats-py stops calling ``_process_msg``, the
  hook is never reached and nothing breaks, it only gets slower.

Tested against nats-py 2.16 (``tests/integration/sinks`` runs every combination).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

Settle = Callable[[str, bytes], bool]
"""Called with (reply subject, ack payload) for this sink's header-less acks; returns
whether the ack was this sink's to settle (else nats-py delivers it as usual)."""


def can_write_frames(nc: NATS) -> bool:
    return callable(getattr(nc, "_send_command", None)) and callable(
        getattr(nc, "_flush_pending", None)
    )


async def write_frames(nc: NATS, chunks: Sequence[bytes]) -> None:
    for chunk in chunks:
        await nc._send_command(chunk)
    await nc._flush_pending()


def hook_acks(nc: NATS, sub: Subscription, settle: Settle) -> bool:
    """Install the parser hook for ``sub``; false when this nats-py has no place for it."""
    original: Any = getattr(nc, "_process_msg", None)
    sid = getattr(sub, "_id", None)
    if original is None or not isinstance(sid, int):
        return False

    async def process_msg(
        msg_sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        if msg_sid == sid and headers is None and settle(subject.decode(), data):
            return
        await original(msg_sid, subject, reply, data, headers)

    setattr(nc, "_process_msg", process_msg)  # noqa: B010 - an instance attribute on purpose
    return True
