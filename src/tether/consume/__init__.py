"""Consumers that dead-letter: each broker message to a handler once, in the inbox's transaction.

``Consumer(source, handler, transaction=engine.begin)`` runs ``handler(event, tx)`` for every
message the source (a broker adapter: JetStream, RabbitMQ, Redis Streams, or the in-memory one)
hands out; see :mod:`tether.consume.runner` for the decisions and :mod:`tether.consume.port`
for what an adapter does.
"""

from tether.consume.decode import UndecodableError, event_from
from tether.consume.policy import RedeliveryPolicy, parse_backoff
from tether.consume.port import ConsumerSource, DeadLetter, DeadLetterBox, Delivery, Failure
from tether.consume.runner import Consumer, Handler, Outcome, Transaction

__all__ = [
    "Consumer",
    "ConsumerSource",
    "DeadLetter",
    "DeadLetterBox",
    "Delivery",
    "Failure",
    "Handler",
    "Outcome",
    "RedeliveryPolicy",
    "Transaction",
    "UndecodableError",
    "event_from",
    "parse_backoff",
]
