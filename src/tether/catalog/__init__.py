"""The typed event catalog: event types registered with a pydantic model, a version and a topic.

``add_event`` validates payloads of registered types (``ProducerPolicy(catalog=...)``),
consumers upcast older versions (``Consumer(catalog=...)``), and ``tether catalog`` writes an
AsyncAPI 3 document, a Markdown page and checks schemas against a committed snapshot.
See docs/catalog.md.
"""

from tether.catalog.registry import EventCatalog, EventType, Unknown, Upcaster, check_type_name

__all__ = ["EventCatalog", "EventType", "Unknown", "Upcaster", "check_type_name"]
