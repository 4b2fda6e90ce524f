"""Idempotency stores: ``memory`` (one process), ``redis``, ``postgres`` (transactional)."""
