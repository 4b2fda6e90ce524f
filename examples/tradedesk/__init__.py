"""Tradedesk: Tether's reference FastAPI app (partners, availabilities, requirements, matches).

Run the demo on SQLite:
``.venv/bin/uvicorn examples.tradedesk.app:demo_app --factory --no-proxy-headers``.
``--no-proxy-headers`` leaves X-Forwarded-For to the app's ``ClientIPResolver`` and its trusted
proxies: uvicorn's own rewriting would let any local caller choose its client IP.
"""
