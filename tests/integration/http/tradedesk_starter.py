"""One instance of the reference app in the start-up race: wait at the barrier, then run the
app's start-up (schema, capabilities, roles, grants) and one request, and report the outcome."""

from __future__ import annotations

import asyncio
import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import httpx
from examples.tradedesk.app import create_app
from examples.tradedesk.settings import Settings


async def _start(database_url: str) -> int:
    app = create_app(Settings(database_url=database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/partners", headers={"x-api-key": "demo-acme"})
    return answer.status_code


def run(barrier: Barrier, results: Queue[str], database_url: str) -> None:
    barrier.wait(timeout=60)
    try:
        results.put(str(asyncio.run(_start(database_url))))
    except BaseException:
        results.put(traceback.format_exc())
