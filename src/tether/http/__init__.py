"""The HTTP edge: Idempotency-Key and rate limiting as plain ASGI middleware."""
