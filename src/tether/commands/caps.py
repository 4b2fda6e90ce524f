"""``tether caps``: the capability commands of :mod:`tether.authz.cli`, with every grant change
also written to the outbox on PostgreSQL (as an application's own store does by default)."""

from __future__ import annotations

from tether import wiring
from tether.authz import cli

cli.open_store = wiring.authz_store
app = cli.app
