"""The transactional outbox: ``add_event`` on the producer side, the relay, the consumer inbox."""

from tether.outbox.producer import EventRef, add_event, add_event_sync

__all__ = ["EventRef", "add_event", "add_event_sync"]
