"""One app instance that starts up and then grants and revokes in a loop, as its own process.

It syncs the registry and defines the ``trader`` role (what every instance does at start-up),
says ``ready``, waits for ``go`` on stdin so that all instances write at the same moment, then
for each round grants, revokes and grants again every capability, and assigns the role. Its
last write of each capability is a grant, so the end state is known whatever the interleaving.
It prints ``done`` or ``error <message>``.

usage: python -m tests.integration.authz.writer DSN ROUNDS
"""

from __future__ import annotations

import asyncio
import sys

from tether.authz import Authz, Registry, SqlAuthzStore

CAPABILITIES = ["trade:approve", "trade:view", "availability:post"]
ROLE = "trader"
REGISTRY = Registry(CAPABILITIES)


async def start(dsn: str) -> Authz:
    authz = Authz(SqlAuthzStore.from_url(dsn), REGISTRY, use_cache=False)
    await authz.sync()
    await authz.add_user("alice")
    await authz.add_org("acme")
    await authz.define_role(ROLE, CAPABILITIES)
    return authz


async def churn(authz: Authz, rounds: int) -> None:
    for i in range(rounds):
        for capability in CAPABILITIES:
            for org in ("acme", None):
                await authz.grant("alice", capability, org, granted_by=f"round {i}")
                await authz.revoke("alice", capability, org)
                await authz.grant("alice", capability, org, granted_by=f"round {i}")
        await authz.assign_role("alice", ROLE, "acme")


async def main(dsn: str, rounds: int) -> None:
    try:
        authz = await start(dsn)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await churn(authz, rounds)
        await authz.store.close()
    except Exception as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)
        raise SystemExit(1) from None
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
