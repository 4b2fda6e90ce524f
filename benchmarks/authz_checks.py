"""Capability checks/s with 10,000 grants: Tether (cached; uncached on Postgres) vs pycasbin.

One command:  .venv/bin/python benchmarks/authz_checks.py   [--checks N] [--profile]

Data: 50 orgs, 2,000 users, 20 capabilities, 4 roles of 4 capabilities each; every user has
2 role assignments and 3 direct grants in random orgs (4,000 + 6,000 = 10,000 grants). pycasbin
gets the same data as an RBAC-with-domains policy (p = sub, dom, obj, act; g = user, role,
dom): role permissions per org, direct grants as p rules on the user. Both answer the same
(user, capability, org) queries and their answers are compared before timing.

Like for like:
- the mix: half the queries name a grant the user holds (allowed), half are random (nearly
  all denied); the allowed share is measured and printed;
- the peer in its best documented configuration: ``FastEnforcer`` filters the policy by the
  request fields named in ``cache_key_order`` before matching; ``[1, 2, 3]`` (domain, object,
  action) answers identically to ``[1]`` (domain only) and is much faster, so it is the peer;
- timing: every engine gets the same queries and the best of the same number of passes, each
  pass capped by the same time budget; every pass counts its allowed answers, which must
  equal the reference answers for the queries it got through (the work is verified);
- cached Tether evaluates from per-user grant snapshots held in the process; pycasbin holds
  its whole policy in the process and has no decision cache, so both decide in memory per
  check. Uncached Tether reads Postgres on every check and is reported apart, next to the
  round-trip floor, not against pycasbin.

Prints a table, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import casbin
import psycopg

from tether.authz import Authz, Registry, SqlAuthzStore
from tether.authz import tables as t
from tether.store.postgres import ddl as schema

ADMIN_DSN = os.environ.get("TETHER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
RESOURCES = ["availability", "requirement", "match", "trade", "partner"]
ACTIONS = ["view", "post", "edit", "approve"]
CAPS = [f"{r}:{a}" for r in RESOURCES for a in ACTIONS]
ORGS = [f"org{i}" for i in range(50)]
USERS = [f"user{i}" for i in range(2000)]

CASBIN_MODEL = """
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
"""


def make_data(rng: random.Random) -> dict[str, Any]:
    roles = {f"role{i}": rng.sample(CAPS, 4) for i in range(4)}
    assignments = set()
    direct = set()
    for user in USERS:
        while len([a for a in assignments if a[0] == user]) < 2:
            assignments.add((user, rng.choice(ORGS), rng.choice(list(roles))))
        while len([d for d in direct if d[0] == user]) < 3:
            direct.add((user, rng.choice(ORGS), rng.choice(CAPS)))
    return {"roles": roles, "assignments": sorted(assignments), "direct": sorted(direct)}


Query = tuple[str, str, str]  # user, capability, org


def held(data: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Every (capability, org) each user holds, directly or through a role in that org."""
    found: dict[str, set[tuple[str, str]]] = {}
    for user, org, cap in data["direct"]:
        found.setdefault(user, set()).add((cap, org))
    for user, org, role in data["assignments"]:
        found.setdefault(user, set()).update((cap, org) for cap in data["roles"][role])
    return {user: sorted(pairs) for user, pairs in found.items()}


def queries(rng: random.Random, data: dict[str, Any], n: int) -> list[Query]:
    """Even positions name a grant the user holds (allowed); odd ones are random."""
    holds = held(data)
    out = []
    for i in range(n):
        user = rng.choice(USERS)
        if i % 2 == 0:
            cap, org = rng.choice(holds[user])
        else:
            cap, org = rng.choice(CAPS), rng.choice(ORGS)
        out.append((user, cap, org))
    return out


# --- setup --------------------------------------------------------------------------------


def create_database() -> tuple[str, str]:
    name = f"tether_bench_authz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(schema.full_schema_sql())  # type: ignore[arg-type]
    return name, dsn


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def load_tether(store: SqlAuthzStore, authz: Authz, data: dict[str, Any]) -> None:
    """Bulk insert (setup, not measured); grants through the API cost one transaction each."""
    await authz.sync()
    async with store.engine.begin() as conn:
        await conn.execute(t.users.insert(), [{"id": u} for u in USERS])
        await conn.execute(t.orgs.insert(), [{"id": o} for o in ORGS])
        await conn.execute(t.roles.insert(), [{"name": r} for r in data["roles"]])
        await conn.execute(
            t.role_capabilities.insert(),
            [{"role": r, "capability": c} for r, caps in data["roles"].items() for c in caps],
        )
        await conn.execute(
            t.user_roles.insert(),
            [{"user_id": u, "org_id": o, "role": r} for u, o, r in data["assignments"]],
        )
        await conn.execute(
            t.user_capabilities.insert(),
            [{"user_id": u, "org_id": o, "capability": c} for u, o, c in data["direct"]],
        )
        await conn.exec_driver_sql("ANALYZE")


def load_casbin(enforcer: casbin.Enforcer, data: dict[str, Any]) -> int:
    rules = [
        [role, org, *cap.split(":")]
        for role, caps in data["roles"].items()
        for org in ORGS
        for cap in caps
    ]
    rules += [[user, org, *cap.split(":")] for user, org, cap in data["direct"]]
    enforcer.add_policies(rules)
    enforcer.add_grouping_policies([[u, r, o] for u, o, r in data["assignments"]])
    return len(rules) + len(data["assignments"])


# --- measurement --------------------------------------------------------------------------


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


async def time_async(
    check: Callable[..., Any], qs: list[tuple[str, str, str]]
) -> tuple[float, list[float]]:
    latencies = []
    start = time.perf_counter()
    for user, cap, org in qs:
        t0 = time.perf_counter()
        await check(user, cap, org)
        latencies.append(time.perf_counter() - t0)
    return time.perf_counter() - start, latencies


PASSES = 3
BUDGET = 5.0  # seconds per pass: the plain Enforcer would need hours for the whole list


async def pass_tether(authz: Authz, qs: list[Query], budget: float) -> tuple[int, int, float]:
    """Checks done, how many were allowed, and seconds taken; stops after ``budget``."""
    has = authz.has
    done = allowed = 0
    start = time.perf_counter()
    for user, cap, org in qs:
        allowed += await has(user, cap, org)
        done += 1
        if done % 256 == 0 and time.perf_counter() - start > budget:
            break
    return done, allowed, time.perf_counter() - start


def pass_casbin(
    enforcer: casbin.Enforcer, qs: list[Query], budget: float
) -> tuple[int, int, float]:
    """The same loop for pycasbin (the capability split is part of its request format)."""
    enforce = enforcer.enforce
    done = allowed = 0
    start = time.perf_counter()
    for user, cap, org in qs:
        obj, act = cap.split(":")
        allowed += enforce(user, org, obj, act)
        done += 1
        if done % 16 == 0 and time.perf_counter() - start > budget:
            break
    return done, allowed, time.perf_counter() - start


async def best_rate(
    run: Callable[[], Any], label: str, allowed_before: list[int]
) -> tuple[float, int]:
    """Best checks/s of PASSES passes, each verified against the reference answers."""
    best = 0.0
    checks = 0
    for _ in range(PASSES):
        result = run()
        if asyncio.iscoroutine(result):
            result = await result
        done, allowed, seconds = result
        expected = allowed_before[done]
        assert allowed == expected, f"{label}: {allowed} allowed of {done}, expected {expected}"
        if rate(done, seconds) > best:
            best, checks = rate(done, seconds), done
    return best, checks


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=200_000, help="cached checks to time")
    parser.add_argument("--profile", action="store_true", help="pyinstrument the cached loop")
    args = parser.parse_args()
    rng = random.Random(7)
    data = make_data(rng)
    grants = len(data["assignments"]) + len(data["direct"])
    name, dsn = create_database()
    try:
        store = SqlAuthzStore.from_url(dsn, pool_size=5)
        registry = Registry(CAPS)
        cached = Authz(store, registry)
        uncached = Authz(store, registry, use_cache=False)
        await load_tether(store, cached, data)

        plain = casbin.Enforcer(casbin.Enforcer.new_model(text=CASBIN_MODEL))
        # FastEnforcer builds its indexed model itself, from a model file path.
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as conf:
            conf.write(CASBIN_MODEL)
        fast_dom = casbin.FastEnforcer(conf.name, cache_key_order=[1])
        fast = casbin.FastEnforcer(conf.name, cache_key_order=[1, 2, 3])
        os.unlink(conf.name)
        casbin_rules = load_casbin(plain, data)
        load_casbin(fast_dom, data)
        load_casbin(fast, data)

        # Same answers first: the comparison is only fair if the policies are equivalent.
        # (The plain Enforcer scans every rule per check, so it verifies a smaller sample.)
        check_qs = queries(rng, data, 3000)
        allowed = 0
        for i, (user, cap, org) in enumerate(check_qs):
            mine = await uncached.has(user, cap, org)
            allowed += mine
            request = (user, org, *cap.split(":"))
            assert mine == fast.enforce(*request), (user, cap, org, mine)
            assert mine == fast_dom.enforce(*request), (user, cap, org, mine)
            if i < 100:
                assert mine == plain.enforce(*request), (user, cap, org, mine)

        for user in USERS:  # warm the cache: every user's grants loaded once
            await cached.has(user, CAPS[0], ORGS[0])
        qs = queries(rng, data, args.checks)
        # The reference answers for the timed list (cached answers equal uncached ones: the
        # sample above). allowed_before[n] = allowed answers among the first n queries.
        allowed_before = [0]
        for user, cap, org in qs:
            allowed_before.append(allowed_before[-1] + await cached.has(user, cap, org))
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
            await pass_tether(cached, qs, BUDGET)
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False))
        tether_cached, cached_n = await best_rate(
            lambda: pass_tether(cached, qs, BUDGET), "tether cached", allowed_before
        )
        plain_rate, plain_n = await best_rate(
            lambda: pass_casbin(plain, qs, BUDGET), "casbin Enforcer", allowed_before
        )
        dom_rate, dom_n = await best_rate(
            lambda: pass_casbin(fast_dom, qs, BUDGET), "casbin FastEnforcer [1]", allowed_before
        )
        fast_rate, fast_n = await best_rate(
            lambda: pass_casbin(fast, qs, BUDGET), "casbin FastEnforcer [1,2,3]", allowed_before
        )

        unc_qs = queries(rng, data, 5000)
        for q in unc_qs[:200]:  # warm the pool and prepared statements
            await uncached.has(*q)
        unc_s, latencies = await time_async(uncached.has, unc_qs)
        # The floor on this machine: the same number of bare round trips through asyncpg.
        pool = await store._reads()
        _, floor = await time_async(lambda *_: pool.fetchval("SELECT 1"), unc_qs)
        await store.close()
    finally:
        drop_database(name)

    tether_uncached = rate(len(unc_qs), unc_s)
    peer = max(plain_rate, dom_rate, fast_rate)
    timed_share = allowed_before[-1] / len(qs)
    rows = [
        ("tether cached (in-process snapshots)", tether_cached, cached_n, ""),
        ("pycasbin Enforcer", plain_rate, plain_n, ""),
        ("pycasbin FastEnforcer, key [1] (dom)", dom_rate, dom_n, ""),
        ("pycasbin FastEnforcer, key [1,2,3]", fast_rate, fast_n, "the peer"),
        (
            "tether uncached (Postgres)",
            tether_uncached,
            len(unc_qs),
            f"p50 {pct(latencies, 0.5):.3f} ms, p99 {pct(latencies, 0.99):.3f} ms",
        ),
        (
            "  floor: asyncpg SELECT 1",
            rate(len(floor), sum(floor)),
            len(floor),
            f"p50 {pct(floor, 0.5):.3f} ms, p99 {pct(floor, 0.99):.3f} ms",
        ),
    ]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, Postgres on this host")
    print(
        f"grants: {grants} tether rows / {casbin_rules} casbin rules; "
        f"{allowed}/{len(check_qs)} sample queries allowed, answers identical; "
        f"{timed_share:.1%} of the timed queries allowed; best of {PASSES} passes each, "
        f"{BUDGET:.0f} s budget per pass, allowed counts verified"
    )
    print(f"{'engine':<40}{'checks/s':>14}{'checks':>10}  latency")
    for label, per_s, n, extra in rows:
        print(f"{label:<40}{per_s:>14,.0f}{n:>10}  {extra}")
    print(
        json.dumps(
            {
                "bench": "authz_checks",
                "grants": grants,
                "tether_cached_per_s": round(tether_cached),
                "tether_uncached_per_s": round(tether_uncached),
                "tether_uncached_p50_ms": round(pct(latencies, 0.5), 3),
                "tether_uncached_p99_ms": round(pct(latencies, 0.99), 3),
                "select1_p99_ms": round(pct(floor, 0.99), 3),
                "loadavg": round(os.getloadavg()[0], 1),
                "allowed_share": round(timed_share, 3),
                "passes": PASSES,
                "peer": "pycasbin FastEnforcer cache_key_order=[1,2,3]",
                "peer_per_s": round(peer),
                "peer_plain_per_s": round(plain_rate),
                "peer_fast_dom_per_s": round(dom_rate),
                "peer_fast_per_s": round(fast_rate),
                "ratio": round(tether_cached / peer, 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
