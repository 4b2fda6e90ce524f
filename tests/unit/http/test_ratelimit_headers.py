"""The RateLimit fields tell one story: ``t`` of a refused policy is ``Retry-After``, every
policy of a response has its own name, and a replayed response gets fields computed for it."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import httpx
import pytest
from fastapi import Depends, FastAPI

from tether.core.errors import ConfigError
from tether.http.idempotency import IdempotencyMiddleware, MemoryIdempotencyStore
from tether.http.ratelimit import (
    Algorithm,
    Limit,
    MemoryRateLimitStore,
    RateLimiter,
    RateLimitMiddleware,
    Rule,
    by_ip,
)
from tether.http.ratelimit.dependency import RateLimit, install

TINY = Limit("tiny", 2, 60)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def client_for(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1234))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def limited_app(limiter: RateLimiter, rules: Sequence[Rule]) -> RateLimitMiddleware:
    app = FastAPI()

    @app.get("/")
    async def ok() -> str:
        return "ok"

    return RateLimitMiddleware(app, limiter, rules)


def fields(header: str) -> dict[str, dict[str, str]]:
    """``"name";r=1;t=2, ...`` as {name: {param: value}}."""
    found: dict[str, dict[str, str]] = {}
    for item in header.split(", "):
        name, *params = item.split(";")
        found[name.strip('"')] = dict(p.split("=", 1) for p in params)
    return found


@pytest.mark.parametrize("algorithm", list(Algorithm))
@pytest.mark.parametrize("start", [0.0, 0.4, 17.25, 59.9])
async def test_t_of_the_refused_policy_is_retry_after(algorithm: Algorithm, start: float) -> None:
    clock = Clock(start)
    limiter = RateLimiter(MemoryRateLimitStore(clock=clock))
    async with client_for(limited_app(limiter, [Rule(by_ip(), TINY, algorithm)])) as c:
        await c.get("/")
        clock.now += 1.3
        await c.get("/")
        clock.now += 0.6
        refused = await c.get("/")
    assert refused.status_code == 429
    retry_after = refused.headers["retry-after"]
    assert fields(refused.headers["ratelimit"])["tiny"] == {"r": "0", "t": retry_after}
    assert refused.json()["retryAfter"] == int(retry_after)


async def test_policies_of_one_response_have_distinct_names() -> None:
    limiter = RateLimiter(MemoryRateLimitStore())
    per_key = Rule(lambda scope: "k", TINY)
    rules = [Rule(by_ip(), TINY), per_key, Rule(by_ip(), TINY, name="per-ip")]
    async with client_for(limited_app(limiter, rules)) as c:
        answer = await c.get("/")
    names = [item.split(";")[0] for item in answer.headers["ratelimit-policy"].split(", ")]
    assert names == ['"tiny"', '"tiny-2"', '"per-ip"']
    assert list(fields(answer.headers["ratelimit"])) == ["tiny", "tiny-2", "per-ip"]


@pytest.mark.parametrize("name", ["", 'with "quote"', "back\\slash"])
def test_a_rule_name_must_be_a_valid_policy_name(name: str) -> None:
    with pytest.raises(ConfigError):
        Rule(by_ip(), TINY, name=name)


async def test_a_replay_carries_rate_limit_fields_of_its_own() -> None:
    limiter = RateLimiter(MemoryRateLimitStore())
    app = FastAPI()
    install(app)
    quota = RateLimit(limiter, Rule(by_ip(), Limit("route", 5, 60), name="route"))
    made = itertools.count(1)

    @app.post("/orders", dependencies=[Depends(quota)])
    async def order() -> dict[str, int]:
        return {"order": next(made)}

    edge = IdempotencyMiddleware(app, store=MemoryIdempotencyStore())
    outer = RateLimitMiddleware(edge, limiter, [Rule(by_ip(), Limit("edge", 9, 60))])
    async with client_for(outer) as c:
        first = await c.post("/orders", headers={"idempotency-key": "k"})
        replay = await c.post("/orders", headers={"idempotency-key": "k"})
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    assert fields(first.headers["ratelimit"]).keys() == {"route", "edge"}
    # The handler did not run again, so its route limit neither counted nor is reported; the
    # edge limit counted the replay and says so.
    replayed = fields(replay.headers["ratelimit"])
    assert replayed.keys() == {"edge"} and replayed["edge"]["r"] == "7"
    assert len(re.findall("ratelimit-policy", str(replay.headers.raw).lower())) == 1
