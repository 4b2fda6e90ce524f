"""The limits most APIs start from."""

from __future__ import annotations

from tether.http.ratelimit.algorithms import Limit

STRICT = Limit("strict", 10, 60)
STANDARD = Limit("standard", 100, 60)
RELAXED = Limit("relaxed", 1000, 60)
API_KEY = Limit("api_key", 10_000, 3600)

PRESETS = {limit.name: limit for limit in (STRICT, STANDARD, RELAXED, API_KEY)}
