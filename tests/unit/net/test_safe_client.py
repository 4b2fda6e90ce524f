"""safe_client against real loopback servers: pinning, rebinding, redirects, TLS, timeouts."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import time
from collections.abc import Sequence

import httpx
import pytest
import trustme

from tests.unit.net.server import Seen, answer, serving
from tether.net import SsrfPolicy, TotalTimeout, UnsafeDestination, read_bounded, safe_client
from tether.net.client import system_resolver

LOOPBACK = SsrfPolicy(allow=["127.0.0.0/8"])


class StubResolver:
    """Answers each lookup with the next list in ``answers`` (the last one repeats)."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


async def test_loopback_is_refused_before_connecting_in_every_form() -> None:
    async with serving() as server:
        resolver = StubResolver(["127.0.0.1"])
        async with safe_client(SsrfPolicy(), resolver=resolver) as client:
            for url in (
                f"http://127.0.0.1:{server.port}/",
                f"http://2130706433:{server.port}/",
                f"http://0x7f.1:{server.port}/",
                f"http://[::ffff:127.0.0.1]:{server.port}/",
                f"http://localhost:{server.port}/",
                f"http://hooks.example:{server.port}/",  # a name resolving to loopback
            ):
                with pytest.raises(UnsafeDestination, match=r"loopback|local-only"):
                    await client.post(url, content=b"x")
        assert server.seen == []
        assert resolver.calls == ["hooks.example"]  # literals and local names never resolve


async def test_the_system_resolver_answer_for_localhost_is_checked() -> None:
    assert set(await system_resolver("localhost", 80)) <= {"127.0.0.1", "::1"}
    async with safe_client(SsrfPolicy(allow=["localhost"])) as client:
        async with serving() as server:
            response = await client.get(f"http://localhost:{server.port}/")
            assert response.status_code == 200


async def test_one_bad_answer_among_good_ones_refuses_the_host() -> None:
    resolver = StubResolver(["93.184.216.34", "10.0.0.1"])
    async with safe_client(SsrfPolicy(), resolver=resolver) as client:
        with pytest.raises(UnsafeDestination, match=r"hooks.example \(10.0.0.1\)': private"):
            await client.get("http://hooks.example/")


async def test_allow_list_lets_the_test_receiver_through() -> None:
    async with serving() as server, safe_client(SsrfPolicy(allow=["127.0.0.1"])) as client:
        response = await client.post(f"http://127.0.0.1:{server.port}/hook", content=b"hello")
        assert response.status_code == 200
        assert server.seen[0].body == b"hello"
        assert server.seen[0].headers["accept-encoding"] == "identity"


async def test_dns_rebinding_connects_to_the_checked_answer_and_never_re_resolves() -> None:
    # The name does not exist in real DNS: only the stub answers it. First an allowed address
    # (the "public" one in this test), then the metadata service.
    resolver = StubResolver(["127.0.0.2"], ["169.254.169.254"])
    async with serving(host="127.0.0.2") as server:
        async with safe_client(LOOPBACK, resolver=resolver) as client:
            url = f"http://rebind.invalid:{server.port}/hook"
            first = await client.get(url)
            second = await client.get(url)  # the kept-alive connection: no new lookup
            assert (first.status_code, second.status_code) == (200, 200)
            assert resolver.calls == ["rebind.invalid"]
            assert [s.local for s in server.seen] == ["127.0.0.2", "127.0.0.2"]
            assert server.seen[0].headers["host"] == f"rebind.invalid:{server.port}"
        # A new connection resolves again, and the rebound answer is refused.
        async with safe_client(LOOPBACK, resolver=resolver) as client:
            with pytest.raises(UnsafeDestination, match="cloud metadata"):
                await client.get(url)
        assert len(server.seen) == 2


async def test_a_redirect_is_returned_never_followed() -> None:
    to_metadata = answer(302, location="http://169.254.169.254/latest/meta-data/")
    async with serving(to_metadata) as server, safe_client(LOOPBACK) as client:
        response = await client.post(f"http://127.0.0.1:{server.port}/", content=b"x")
        assert response.status_code == 302
        assert response.next_request is not None  # httpx saw it, and did not follow it
        # A caller forcing redirects on one request still has every hop checked.
        with pytest.raises(UnsafeDestination, match="cloud metadata"):
            await client.get(f"http://127.0.0.1:{server.port}/", follow_redirects=True)
        assert len(server.seen) == 2


async def test_tls_keeps_the_host_name_for_sni_and_the_certificate() -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.example").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    names: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    resolver = StubResolver(["127.0.0.1"])
    async with serving(tls=server_tls) as server:
        async with safe_client(LOOPBACK, resolver=resolver, verify=client_tls) as client:
            response = await client.get(f"https://hooks.example:{server.port}/")
            assert response.status_code == 200
        assert names == ["hooks.example"]
        assert server.seen[0].headers["host"] == f"hooks.example:{server.port}"
        # The certificate is checked against the name, not the pinned address.
        async with safe_client(LOOPBACK, resolver=resolver, verify=client_tls) as client:
            with pytest.raises(httpx.ConnectError, match=r"certificate|hostname"):
                await client.get(f"https://other.example:{server.port}/")


async def test_total_timeout_bounds_a_slow_answer() -> None:
    async def slow(_: Seen, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")

    async with serving(slow) as server:
        async with safe_client(LOOPBACK, connect_timeout=0.2, total_timeout=0.5) as client:
            started = time.monotonic()
            with pytest.raises(httpx.TimeoutException):
                await client.get(f"http://127.0.0.1:{server.port}/")
            assert time.monotonic() - started < 2.5


async def test_total_timeout_bounds_a_trickling_body() -> None:
    async def trickle(_: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
        for _ in range(100):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    async with serving(trickle) as server:
        async with safe_client(LOOPBACK, connect_timeout=0.2, total_timeout=0.6) as client:
            started = time.monotonic()
            async with client.stream("GET", f"http://127.0.0.1:{server.port}/") as response:
                with pytest.raises(TotalTimeout, match=r"total timeout of 0\.6 s"):
                    await response.aread()
            assert time.monotonic() - started < 2.5


async def test_resolver_failures_are_connect_errors() -> None:
    async def broken(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def hanging(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(10)
        return []

    async with safe_client(SsrfPolicy(), resolver=broken) as client:
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.example"):
            await client.get("http://nowhere.example/")
    async with safe_client(SsrfPolicy(), resolver=StubResolver([])) as client:
        with pytest.raises(httpx.ConnectError, match="no address"):
            await client.get("http://nowhere.example/")
    async with safe_client(SsrfPolicy(), resolver=hanging, connect_timeout=0.2) as client:
        with pytest.raises(httpx.ConnectTimeout, match=r"resolving slow\.example"):
            await client.get("http://slow.example/")


async def test_read_bounded() -> None:
    big = b"y" * 1_000_000
    squeezed = gzip.compress(b"z" * 5_000_000)
    async with serving(answer(200, big)) as server, safe_client(LOOPBACK) as client:
        url = f"http://127.0.0.1:{server.port}/"
        async with client.stream("GET", url) as response:
            assert await read_bounded(response, 1000) == b"y" * 1000
        async with client.stream("GET", url) as response:
            assert await read_bounded(response, 2_000_000) == big
        response = await client.get(url)
        assert await read_bounded(response, 10) == b"y" * 10
        with pytest.raises(ValueError, match="negative"):
            await read_bounded(response, -1)
    async with serving(answer(200, squeezed, content_encoding="gzip")) as server:
        async with safe_client(LOOPBACK) as client:
            async with client.stream("GET", f"http://127.0.0.1:{server.port}/") as response:
                assert await read_bounded(response, 100) == squeezed[:100]


def test_arguments_that_would_bypass_the_check_are_refused() -> None:
    for kwargs in (
        {"transport": httpx.AsyncHTTPTransport()},
        {"proxy": "http://proxy.example:3128"},
        {"mounts": {}},
        {"follow_redirects": True},
        {"trust_env": True},
    ):
        with pytest.raises(ValueError, match="bypass"):
            safe_client(SsrfPolicy(), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="connect_timeout"):
        safe_client(SsrfPolicy(), connect_timeout=20, total_timeout=15)


async def test_a_dead_checked_address_falls_through_to_the_next_checked_one() -> None:
    # Nothing listens on 127.0.0.3 at the server's port: that connect is refused.
    resolver = StubResolver(["127.0.0.3", "127.0.0.2"])
    async with serving(host="127.0.0.2") as server:
        async with safe_client(LOOPBACK, resolver=resolver) as client:
            response = await client.get(f"http://two.invalid:{server.port}/")
            assert response.status_code == 200
        assert [s.local for s in server.seen] == ["127.0.0.2"]
