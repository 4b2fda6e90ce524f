"""Capability checks with tenancy and row-level security on vs off.

    .venv/bin/python benchmarks/authz_tenancy.py [--checks 2000] [--rounds 3]

Two databases with the same schema and the same grants (400 users, 10 orgs, each user 2 role
assignments and 2 direct grants in random orgs), one per setting, checked in the same process
as an application role (not the tables' owner, so row-level security applies when on):

* ``off``  RLS off, ``Authz(store, registry)``: a miss reads every org's grants of the user
* ``on``   ``SELECT tether_tenancy(true)``, ``Authz(..., tenancy=True)``: a miss reads one
           tenant's grants in a transaction scoped to it (BEGIN, tether_set_tenant, the read,
           COMMIT)

``uncached`` (``use_cache=False``): every check reads PostgreSQL, which is what a cache miss
costs (after a grant change invalidates a user). ``cached``: every check is a cache hit; timed
per batch of 1,000 checks. Variants are interleaved check by check (rotating order); per
variant p50/p90, median over ``--rounds``. Ends with one JSON line (the peer: tenancy off).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from tether.authz import Authz, Registry, SqlAuthzStore
from tether.store.postgres.ddl import full_schema_sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

CAPS = [f"{r}:{a}" for r in ("trade", "order", "partner") for a in ("view", "post", "approve")]
REGISTRY = Registry(CAPS)
ORGS = [f"org{i}" for i in range(10)]
USERS = [f"user{i}" for i in range(400)]
ROLES = {"clerk": CAPS[:3], "approver": CAPS[2:6], "partner": CAPS[6:]}
GRANTS = """
GRANT SELECT, INSERT, UPDATE, DELETE ON tether_authz_orgs, tether_authz_user_roles,
    tether_authz_user_capabilities TO "{role}";
GRANT SELECT, INSERT ON tether_authz_capabilities, tether_authz_users TO "{role}";
GRANT SELECT ON tether_authz_roles, tether_authz_role_capabilities TO "{role}";
GRANT SELECT, UPDATE ON tether_authz_version TO "{role}";
"""
BATCH = 1000


async def prepare(dsn: str, role: str, rls: bool, rng: random.Random) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(full_schema_sql())
        await conn.execute(GRANTS.format(role=role))
        await conn.executemany(
            "INSERT INTO tether_authz_capabilities (name) VALUES ($1)", [(c,) for c in CAPS]
        )
        await conn.executemany(
            "INSERT INTO tether_authz_users (id) VALUES ($1)", [(u,) for u in USERS]
        )
        await conn.executemany(
            "INSERT INTO tether_authz_orgs (id) VALUES ($1)", [(o,) for o in ORGS]
        )
        for name, caps in ROLES.items():
            await conn.execute("INSERT INTO tether_authz_roles (name) VALUES ($1)", name)
            await conn.executemany(
                "INSERT INTO tether_authz_role_capabilities (role, capability) VALUES ($1, $2)",
                [(name, c) for c in caps],
            )
        roles, direct = set(), set()
        for user in USERS:
            while len([r for r in roles if r[0] == user]) < 2:
                roles.add((user, rng.choice(ORGS), rng.choice(list(ROLES))))
            while len([d for d in direct if d[0] == user]) < 2:
                direct.add((user, rng.choice(ORGS), rng.choice(CAPS)))
        await conn.executemany(
            "INSERT INTO tether_authz_user_roles (user_id, org_id, role) VALUES ($1, $2, $3)",
            sorted(roles),
        )
        await conn.executemany(
            "INSERT INTO tether_authz_user_capabilities (user_id, org_id, capability)"
            " VALUES ($1, $2, $3)",
            sorted(direct),
        )
        if rls:
            await conn.execute("SELECT tether_tenancy(true)")
    finally:
        await conn.close()


def as_role(dsn: str, role: str) -> str:
    scheme, _, rest = dsn.partition("://")
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


def queries(n: int, rng: random.Random) -> list[tuple[str, str, str]]:
    return [(rng.choice(USERS), rng.choice(CAPS), rng.choice(ORGS)) for _ in range(n)]


def one_check(authz: Authz, work: list[tuple[str, str, str]]) -> Callable[[int], Awaitable[int]]:
    async def run(i: int) -> int:
        user, cap, org = work[i % len(work)]
        return int(await authz.has(user, cap, org))

    return run


def batch_of_checks(
    authz: Authz, work: list[tuple[str, str, str]]
) -> Callable[[int], Awaitable[int]]:
    async def run(i: int) -> int:
        allowed = 0
        for user, cap, org in work[(i * BATCH) % len(work) :][:BATCH]:
            allowed += await authz.has(user, cap, org)
        return allowed

    return run


async def round_(
    runs: dict[str, Callable[[int], Awaitable[int]]], n: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i in range(n):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            await runs[name](i)
            times[name].append((time.perf_counter() - start) * 1e6)
    return times


def summarize(results: list[dict[str, list[float]]], name: str, per: int = 1) -> dict[str, float]:
    per_round = [sorted(v / per for v in r[name]) for r in results]
    return {
        "p50_us": round(common.median(common.pct(v, 50) for v in per_round), 3),
        "p90_us": round(common.median(common.pct(v, 90) for v in per_round), 3),
    }


async def main(checks: int, rounds: int) -> None:
    rng = random.Random(7)
    role = f"tether_bench_app_{common.run_id()}"
    admin = await asyncpg.connect(common.PG_ADMIN_DSN)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    stores: list[SqlAuthzStore] = []
    try:
        async with common.temp_database() as off_dsn, common.temp_database() as on_dsn:
            await prepare(off_dsn, role, rls=False, rng=random.Random(1))
            await prepare(on_dsn, role, rls=True, rng=random.Random(1))
            off_store = SqlAuthzStore.from_url(as_role(off_dsn, role))
            on_store = SqlAuthzStore.from_url(as_role(on_dsn, role))
            stores += [off_store, on_store]
            work = queries(max(checks, 4 * BATCH), rng)
            off_cached = Authz(off_store, REGISTRY)
            on_cached = Authz(on_store, REGISTRY, tenancy=True)
            off_uncached = Authz(off_store, REGISTRY, use_cache=False)
            on_uncached = Authz(on_store, REGISTRY, use_cache=False, tenancy=True)
            # Same answers before timing: the same grants, decided in the same org.
            for user, cap, org in work[:500]:
                expected = await off_uncached.has(user, cap, org)
                assert await on_uncached.has(user, cap, org) == expected, (user, cap, org)
            uncached = {"off": one_check(off_uncached, work), "on": one_check(on_uncached, work)}
            cached = {
                "off": batch_of_checks(off_cached, work),
                "on": batch_of_checks(on_cached, work),
            }
            for run in cached.values():  # fill the caches
                for i in range(len(work) // BATCH + 1):
                    await run(i)
            await round_(uncached, min(200, checks))  # warm-up: plans, pools
            slow = [await round_(uncached, checks) for _ in range(rounds)]
            fast = [await round_(cached, max(20, checks // 50)) for _ in range(rounds)]
    finally:
        for store in stores:
            await store.close()
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()

    summary = {
        "uncached_off": summarize(slow, "off"),
        "uncached_on": summarize(slow, "on"),
        "cached_off": summarize(fast, "off", BATCH),
        "cached_on": summarize(fast, "on", BATCH),
    }
    ratio = round(summary["uncached_on"]["p50_us"] / summary["uncached_off"]["p50_us"], 3)
    cached_ratio = round(summary["cached_on"]["p50_us"] / summary["cached_off"]["p50_us"], 3)
    common.print_table(
        f"Capability checks, tenancy + RLS on vs off ({checks} uncached checks x {rounds} rounds;"
        f" {common.load_note()})",
        ["variant", "p50 us", "p90 us"],
        [[n, s["p50_us"], s["p90_us"]] for n, s in summary.items()],
    )
    print(f"uncached on/off: {ratio}x (p50); cached on/off: {cached_ratio}x")
    common.emit_json(
        {
            "bench": "authz_tenancy",
            "tether_uncached_p50_us": summary["uncached_on"]["p50_us"],
            "tether_cached_p50_us": summary["cached_on"]["p50_us"],
            "peer": "the same checks with tenancy and RLS off",
            "peer_uncached_p50_us": summary["uncached_off"]["p50_us"],
            "peer_cached_p50_us": summary["cached_off"]["p50_us"],
            "ratio": ratio,
            "cached_ratio": cached_ratio,
            "checks": checks,
            "rounds": rounds,
            "variants": summary,
            **common.environment(),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checks", type=int, default=2000, help="uncached checks per variant per round"
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    common.use_uvloop()
    asyncio.run(main(args.checks, args.rounds))
