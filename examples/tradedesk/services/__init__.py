"""The desk's business operations, one module per resource.

Each state-changing function opens the transaction, writes its rows, records the outbox event
and the idempotency record (``events.record``) and commits, all at once or not at all. Routers
validate, check capabilities and call these; they never touch the session's transaction.
Broken rules are raised as :mod:`~examples.tradedesk.services.errors`, which the app answers
as problem documents (``errors.py``). ``tether lint examples/tradedesk`` checks every listed
function writes its event (``examples/tradedesk/tether-lint.toml``).
"""
