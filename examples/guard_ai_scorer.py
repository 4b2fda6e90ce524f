"""An AI scoring service behind a guard, with a rule-based fallback when it is slow or down.

Run: ``.venv/bin/python examples/guard_ai_scorer.py`` (nothing else needed: the "AI service"
is a small HTTP server on 127.0.0.1 that this script starts and then makes slow and kills).
Prints one line per order and the circuit's state as it changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tether.guard import BreakerPolicy, Guard


class FakeScorer:
    """The AI service: answers {"score": ...} after ``delay`` seconds, or is not there."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.calls = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer, handler in list(self._open.items()):
            writer.close()  # a slow answer still waiting sees its connection end
            await handler

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open[writer] = task
        try:
            await self._respond(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            del self._open[writer]
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        self.calls += 1
        if self.delay:  # slow: wait, but stop as soon as the caller hangs up
            try:
                if not await asyncio.wait_for(reader.read(1), self.delay):
                    return
            except TimeoutError:
                pass
        body = b'{"score": 0.12}'
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        writer.write(b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()


async def ai_score(client: httpx.AsyncClient, order: dict[str, Any]) -> tuple[float, str]:
    response = await client.post("/score", json=order)
    response.raise_for_status()
    return float(response.json()["score"]), "ai"


async def rule_score(client: httpx.AsyncClient, order: dict[str, Any]) -> tuple[float, str]:
    # The fallback gets the same arguments as the call it stands in for.
    risky = order["amount"] > 1_000 or order["country"] != order["card_country"]
    return (0.9 if risky else 0.1), "rules"


scorer = Guard(
    "ai-scorer",
    timeout=1.0,  # a score later than this is no use to the checkout
    breaker=BreakerPolicy(failure_threshold=3, window_s=60, open_s=30),
    fallback=rule_score,
)


async def score(client: httpx.AsyncClient, order: dict[str, Any]) -> None:
    value, source = await scorer.call(ai_score, client, order)
    print(f"order {order['id']}: score {value} from {source}, circuit {await scorer.state()}")


async def main() -> None:
    service = FakeScorer()
    await service.start()
    orders = [
        {"id": f"o-{n}", "amount": 250 * n, "country": "FR", "card_country": "FR"}
        for n in range(1, 9)
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.port}") as client:
        await score(client, orders[0])  # healthy: the AI answers
        service.delay = 30.0  # slow: each call times out after 1 s, the rules answer
        for order in orders[1:4]:
            await score(client, order)
        await service.stop()  # down: the circuit is open, the service is not even called
        calls = service.calls
        for order in orders[4:6]:
            await score(client, order)
        print(f"calls to the AI service while open: {service.calls - calls}")


if __name__ == "__main__":
    asyncio.run(main())
