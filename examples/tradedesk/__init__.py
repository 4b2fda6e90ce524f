"""Tradedesk: Tether's reference FastAPI app (partners, availabilities, requirements, matches).

Run the demo on SQLite: ``.venv/bin/uvicorn examples.tradedesk.app:demo_app --factory``.
"""
