"""Outgoing webhooks: endpoints, signed deliveries, the dispatcher.

Nothing is imported here, so ``tether.webhooks.signing`` stays importable without the
PostgreSQL and HTTP extras. The parts:

* :mod:`tether.webhooks.model` — endpoint settings and the checks of every input;
* :mod:`tether.webhooks.store` — endpoints per tenant on PostgreSQL;
* :mod:`tether.webhooks.sink` — the ``webhooks`` sink: fan-out in the relay's transaction;
* :mod:`tether.webhooks.dispatcher` — claims deliveries and POSTs them, signed;
* :mod:`tether.webhooks.deliveries` — the delivery log, replay and recovery;
* :mod:`tether.webhooks.signing` — Standard Webhooks signatures and secret rotation.
"""
