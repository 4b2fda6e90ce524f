"""The transactional outbox: ``add_event`` on the producer side, the relay, the consumer inbox."""

from tether.outbox.inbox import Inbox
from tether.outbox.producer import (
    EventRef,
    ProducerPolicy,
    add_event,
    add_event_sync,
    configure,
)

__all__ = ["EventRef", "Inbox", "ProducerPolicy", "add_event", "add_event_sync", "configure"]
