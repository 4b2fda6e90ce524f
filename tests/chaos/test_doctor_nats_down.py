"""``tether doctor`` with NATS stopped: the sink check fails with the fix (start NATS at its
URL), the end-to-end probe is skipped rather than left waiting; with NATS started again the
same installation passes. NATS is restarted in ``finally`` whatever happens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.integration.ops import doctor_setup
from tests.integration.ops.doctor_setup import Installation
from tests.support import chaos
from tether.ops.doctor import Status

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.nats, pytest.mark.timeout(90)]


@pytest.fixture
async def inst(pg_dsn: str, nats_url: str) -> AsyncIterator[Installation]:
    found = doctor_setup.settings(pg_dsn, nats_url)
    await asyncio.to_thread(doctor_setup.install, found)
    yield found
    await doctor_setup.drop_stream(found, nats_url)


async def test_doctor_names_the_stopped_broker_and_passes_once_it_is_back(
    inst: Installation, nats_url: str
) -> None:
    async with doctor_setup.running_relay(inst):
        with chaos.guaranteed_restart("nats"):
            await asyncio.to_thread(chaos.stop, "nats")
            down = await inst.diagnose()
            sink = down["sink nats"]
            assert sink.status is Status.FAIL
            assert "start the nats broker at nats://127.0.0.1:4222" in sink.fix
            assert down["end-to-end event"].status is Status.SKIP
            assert "sink nats" in down["end-to-end event"].detail
            # Everything that does not depend on NATS still passes.
            others = {
                n: r.status for n, r in down.items() if n not in ("sink nats", "end-to-end event")
            }
            assert set(others.values()) == {Status.OK}, others
        # The relay's sink reconnects by itself; the probe goes through again.
        up = await inst.diagnose()
        assert {r.status for r in up.values()} == {Status.OK}, up
