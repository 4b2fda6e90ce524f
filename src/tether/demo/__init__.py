"""``tether demo``: the whole outbox → relay → inbox path in one process, with no services.

A small shop writes orders and their events in the same SQLite transactions; the relay
publishes the events to an in-memory broker that goes down for a few seconds and sometimes
loses acknowledgements; a consumer processes each event once through the inbox. At the end
the ids produced are compared with the ids the consumer received: none is lost.
"""
