"""An httpx client that only reaches destinations the SSRF policy allows.

Each new connection resolves its host once, checks every answer against the policy and then
connects to one of those checked addresses, so a resolver that answers differently the second
time (DNS rebinding) is never asked a second time. The pinning is an httpcore network backend:
the connection pool stays keyed by the host name, and TLS (SNI, certificate check) and the Host
header keep the name. httpx 0.28 has no public way to hand the default transport a network
backend (encode/httpx PR #3749), so ``_SafeTransport`` replaces the pool it builds; a test
proves the pinning, so a change in httpx shows there first.

Redirects are not followed (a 3xx is the caller's to treat as a failure); if a caller asks for
them anyway on one request, every hop still goes through the same check. Proxies from the
environment are ignored: a proxy would do its own resolving.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

import httpcore
import httpx

from tether.core.errors import ConfigError
from tether.net.ssrf import (
    IPAddress,
    SsrfPolicy,
    UnsafeDestination,
    check_host,
    check_url,
    literal_address,
)

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves ``(host, port)`` to IP address strings; the first usable one is connected to."""

_REFUSED_KWARGS: Final = ("transport", "mounts", "proxy", "app")
_TRANSPORT_KWARGS: Final = ("verify", "cert", "http1", "http2", "limits")
DEFAULT_LIMITS: Final = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""httpx's own defaults (``httpx.Limits()`` alone would be unlimited)."""


class TotalTimeout(httpx.TimeoutException):
    """The whole exchange (connect, send, headers and body) took longer than allowed."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo in a thread), answers in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinningBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, checks every answer, connects to a checked address."""

    def __init__(
        self,
        policy: SsrfPolicy,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.checked_addresses(host, port, timeout)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # checked_addresses never returns an empty list
        raise failure

    async def checked_addresses(
        self, host: str, port: int, timeout: float | None
    ) -> list[IPAddress]:
        literal = literal_address(host)
        if literal is not None:
            self._policy.check_address(host, literal)
            return [literal]
        check_host(host, self._policy)
        try:
            async with asyncio.timeout(timeout):
                answers = await self._resolver(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = _parse_answers(host, answers)
        self._policy.check_addresses(host, addresses)
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeDestination(path, "Unix sockets are not reachable through this client")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _parse_answers(host: str, answers: Sequence[str]) -> list[IPAddress]:
    addresses = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
        except ValueError:
            raise httpcore.ConnectError(f"resolver gave {host} a non-address {answer!r}") from None
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}: no address")
    return addresses


class _SafeTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self, backend: PinningBackend, total_timeout: float, **transport_kwargs: Any
    ) -> None:
        # One TLS context for both pools (loading the CA bundle is the slow part of a client).
        ssl_context = httpx.create_ssl_context(
            verify=transport_kwargs.pop("verify", True),
            cert=transport_kwargs.pop("cert", None),
            trust_env=False,
        )
        limits: httpx.Limits = transport_kwargs.pop("limits", DEFAULT_LIMITS)
        http1: bool = transport_kwargs.pop("http1", True)
        http2: bool = transport_kwargs.pop("http2", False)
        super().__init__(
            verify=ssl_context, trust_env=False, limits=limits, http1=http1, http2=http2
        )
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=http1,
            http2=http2,
            network_backend=backend,
        )
        self._total_timeout = total_timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._total_timeout
        try:
            async with asyncio.timeout_at(deadline):
                response = await super().handle_async_request(request)
        except TimeoutError:
            raise TotalTimeout(self._late(), request=request) from None
        stream = typing.cast(httpx.AsyncByteStream, response.stream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_DeadlineStream(stream, deadline, self._late(), request),
            extensions=response.extensions,
        )

    def _late(self) -> str:
        return f"the request took longer than the total timeout of {self._total_timeout} s"


class _DeadlineStream(httpx.AsyncByteStream):
    def __init__(
        self, inner: httpx.AsyncByteStream, deadline: float, message: str, request: httpx.Request
    ) -> None:
        self._inner = inner
        self._deadline = deadline
        self._message = message
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._inner.__aiter__()
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise TotalTimeout(self._message, request=self._request) from None
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def safe_client(
    policy: SsrfPolicy,
    *,
    connect_timeout: float = 5.0,
    total_timeout: float = 15.0,
    resolver: Resolver = system_resolver,
    **httpx_kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every connection goes through ``policy``.

    ``connect_timeout`` bounds resolving plus connecting; ``total_timeout`` the whole exchange,
    body included (``TotalTimeout``, an ``httpx.TimeoutException``). A refused destination
    raises ``UnsafeDestination`` before any connection is opened. Other keyword arguments go
    to httpx (``headers``, ``verify``, ``http2``, ``limits``, ``event_hooks``...), except those
    that would bypass the check: ``transport``, ``mounts``, ``proxy``, ``app``, a true
    ``follow_redirects`` or ``trust_env``.
    """
    for name in _REFUSED_KWARGS:
        if name in httpx_kwargs:
            raise ValueError(f"safe_client does not take {name}=: it would bypass the SSRF check")
    for name in ("follow_redirects", "trust_env"):
        if httpx_kwargs.pop(name, False):
            raise ValueError(f"safe_client does not take {name}=True: it would bypass the check")
    if not (0 < connect_timeout <= total_timeout):
        raise ValueError(
            f"timeouts must satisfy 0 < connect_timeout ({connect_timeout}) "
            f"<= total_timeout ({total_timeout})"
        )
    transport_kwargs = {k: httpx_kwargs.pop(k) for k in _TRANSPORT_KWARGS if k in httpx_kwargs}
    backend = PinningBackend(policy, resolver)
    headers = httpx.Headers({"accept-encoding": "identity"})
    headers.update(httpx_kwargs.pop("headers", None) or {})
    return httpx.AsyncClient(
        transport=_SafeTransport(backend, total_timeout, **transport_kwargs),
        timeout=httpx_kwargs.pop("timeout", httpx.Timeout(total_timeout, connect=connect_timeout)),
        follow_redirects=False,
        trust_env=False,
        headers=headers,
        **httpx_kwargs,
    )


def checked_client(
    url: str,
    policy: SsrfPolicy | None = None,
    *,
    what: str,
    connect_timeout: float = 5.0,
    total_timeout: float = 15.0,
) -> httpx.AsyncClient:
    """A ``safe_client`` for a configured destination, checked now rather than at first send.

    ``url`` is checked against ``policy`` (the default ``SsrfPolicy`` when None) so a refused
    destination fails at setup as a ConfigError starting with ``what`` (``sink 'orders'``).
    """
    checked = policy if policy is not None else SsrfPolicy()
    try:
        check_url(url, checked)
    except ValueError as exc:  # UnsafeDestination is a ValueError too
        raise ConfigError(f"{what}: {exc}") from None
    return safe_client(checked, connect_timeout=connect_timeout, total_timeout=total_timeout)


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, then the response is closed.

    A body sent compressed despite ``accept-encoding: identity`` is read as it came, still
    compressed, so a small compressed body cannot expand past the limit in memory.
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    try:
        return response.content[:limit]
    except httpx.ResponseNotRead:
        pass
    encoded = response.headers.get("content-encoding", "identity").strip().lower()
    chunks = response.aiter_bytes() if encoded in ("", "identity") else response.aiter_raw()
    kept = bytearray()
    try:
        async for chunk in chunks:
            kept += chunk[: limit - len(kept)]
            if len(kept) >= limit:
                break
    finally:
        await response.aclose()
    return bytes(kept)
