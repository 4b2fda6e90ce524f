"""How the RabbitMQ and Redis Streams sinks map their broker's answers to outcomes.

The table in docs/sinks.md, checked row by row with answers a test cannot provoke on a shared
server (out of memory, a read-only replica, a flushed script cache, a closed channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiormq.exceptions
import pytest
import redis.exceptions
from aiormq.abc import DeliveredMessage
from pamqp import commands as spec
from pamqp.header import ContentHeader

from tether.core.envelope import make_event
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.sinks import _keys
from tether.sinks.base import Outcome
from tether.sinks.rabbitmq import RabbitMQSink, _connection_lost
from tether.sinks.redis_streams import CHUNK, RedisStreamsSink

# -- Redis Streams ----------------------------------------------------------------------------


class FakeConnection:
    def __init__(self, client: FakeRedis) -> None:
        self.client = client
        self.replies: list[Any] = []

    async def send_packed_command(self, commands: list[bytes], check_health: bool = True) -> None:
        answer = self.client.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        assert len(answer) == len(commands)
        assert all(c.startswith(b"*") and b"$7\r\nEVALSHA\r\n" in c for c in commands)
        self.replies = list(answer)

    async def read_response(self) -> Any:
        reply = self.replies.pop(0)
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def disconnect(self, nowait: bool = False) -> None:
        self.client.disconnects += 1


class FakePool:
    def __init__(self, client: FakeRedis) -> None:
        self.client = client

    async def get_connection(self) -> FakeConnection:
        return FakeConnection(self.client)

    async def release(self, connection: FakeConnection) -> None:
        pass


class FakeRedis:
    """Answers each batch with the next of ``answers``: one reply per script call (a list of
    per-event answers, or an error for the whole call), or an error for the whole batch."""

    def __init__(self, *answers: Sequence[Any] | BaseException) -> None:
        self.answers = list(answers)
        self.loads = 0
        self.disconnects = 0
        self.connection_pool = FakePool(self)

    async def script_load(self, script: str) -> str:
        self.loads += 1
        return "sha"


def redis_error(cls: type[redis.exceptions.RedisError], line: str) -> Exception:
    """An error as redis-py's parser builds it: known codes are stripped into ``status_code``."""
    code, _, rest = line.partition(" ")
    try:
        return cls(rest, status_code=code)  # type: ignore[call-arg]
    except TypeError:  # redis-py before 6 keeps the code in the message
        return cls(line)


async def publish_redis(*answers: Sequence[Any] | BaseException, n: int = 1) -> Sequence[Outcome]:
    sink = RedisStreamsSink(FakeRedis(*answers))  # type: ignore[arg-type]
    return await sink.publish([make_event("A", {"i": i}) for i in range(n)])


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ("WRONGTYPE Operation against a key holding the wrong kind of value", False),
        ("OOM command not allowed when used memory > 'maxmemory'", True),
        ("NOPERM this user has no permissions to run the 'xadd' command", True),
        ("ERR something else", True),
    ],
)
async def test_redis_refusals_of_one_entry_fail_one_event(error: str, retryable: bool) -> None:
    [ok, failed, dup] = await publish_redis([[b"+!=", error.encode()]], n=3)
    assert ok.ok and dup.ok
    assert (failed.ok, failed.retryable) == (False, retryable)
    assert error.split(" ", maxsplit=1)[0] in (failed.error or "")


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (redis_error(redis.exceptions.OutOfMemoryError, "OOM command not allowed"), True),
        (redis_error(redis.exceptions.NoPermissionError, "NOPERM no permission"), True),
    ],
)
async def test_a_refused_call_fails_its_events(error: Exception, retryable: bool) -> None:
    outcomes = await publish_redis([error], n=2)
    assert [(o.ok, o.retryable) for o in outcomes] == [(False, retryable)] * 2


@pytest.mark.parametrize(
    "error",
    [
        redis_error(redis.exceptions.ReadOnlyError, "READONLY You can't write against a replica"),
        redis_error(redis.exceptions.BusyLoadingError, "LOADING Redis is loading the dataset"),
        redis.exceptions.ResponseError("MASTERDOWN Link with MASTER is down"),
        redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots"),
        redis.exceptions.ResponseError("BUSY Redis is busy running a script"),
        b"MISCONF Redis is configured to save RDB snapshots",
    ],
)
async def test_redis_that_cannot_take_writes_is_unavailable(error: object) -> None:
    answer = [b"+!", error] if isinstance(error, bytes) else error
    with pytest.raises(SinkUnavailableError, match=r"cannot take writes now|loading the dataset"):
        await publish_redis([answer], n=2)


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Connection refused"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        ConnectionResetError(),
    ],
)
async def test_redis_connection_errors_make_the_sink_unavailable(error: Exception) -> None:
    with pytest.raises(SinkUnavailableError, match="lost Redis"):
        await publish_redis(error)


async def test_a_flushed_script_is_loaded_again_and_its_calls_sent_again() -> None:
    noscript = redis_error(redis.exceptions.NoScriptError, "NOSCRIPT No matching script")
    client = FakeRedis([noscript], [[b"+=+"]])
    sink = RedisStreamsSink(client)  # type: ignore[arg-type]
    outcomes = await sink.publish([make_event("A", {"i": i}) for i in range(3)])
    assert [o.ok for o in outcomes] == [True, True, True]
    assert client.loads == 2  # on first use, and after NOSCRIPT
    assert sink.stats == {"added": 2, "duplicates": 1, "refused": 0}


async def test_events_are_sent_in_calls_of_at_most_chunk_events_per_stream() -> None:
    n = CHUNK + 1
    client = FakeRedis([[b"+" * CHUNK], [b"+"], [b"+"]])
    sink = RedisStreamsSink(client, stream="s:{topic}")  # type: ignore[arg-type]
    events = [make_event("A", {"i": i}, topic="a") for i in range(n)]
    outcomes = await sink.publish([*events, make_event("B", {}, topic="b")])
    assert len(outcomes) == n + 1 and all(o.ok for o in outcomes)


def test_redis_settings_are_checked() -> None:
    client: Any = FakeRedis()
    for bad in ({"maxlen": 0}, {"minid_age": 0}, {"dedup_window": 0}, {"stream": ""}):
        with pytest.raises(ConfigError):
            RedisStreamsSink(client, **bad)


# -- RabbitMQ ---------------------------------------------------------------------------------


def rabbit_outcome(result: object) -> Outcome:
    sink = RabbitMQSink.__new__(RabbitMQSink)
    sink.exchange = "ex"
    sink.stats = {"published": 0, "returned": 0, "nacked": 0, "timeouts": 0}
    return sink._outcome(result)


def test_rabbitmq_outcomes() -> None:
    assert rabbit_outcome(spec.Basic.Ack(delivery_tag=1)).ok
    nack = rabbit_outcome(aiormq.exceptions.DeliveryError(None, spec.Basic.Nack(delivery_tag=1)))
    assert (nack.ok, nack.retryable) == (False, True)
    closed = rabbit_outcome(aiormq.exceptions.ChannelNotFoundEntity("NOT_FOUND - no exchange"))
    assert (closed.ok, closed.retryable) == (False, True)
    assert "NOT_FOUND" in (closed.error or "")
    frame = spec.Basic.Return(
        reply_code=312, reply_text="NO_ROUTE", exchange="ex", routing_key="order"
    )
    message = DeliveredMessage(delivery=frame, header=ContentHeader(), body=b"", channel=None)  # type: ignore[arg-type]
    for result in (message, aiormq.exceptions.PublishError(message, frame)):
        returned = rabbit_outcome(result)
        assert (returned.ok, returned.retryable) == (False, True)
        assert "unroutable" in (returned.error or "") and "'order'" in (returned.error or "")


@pytest.mark.parametrize(
    "error",
    [
        aiormq.exceptions.ConnectionClosed(320, "CONNECTION_FORCED"),
        aiormq.exceptions.ChannelInvalidStateError("closed"),
        ConnectionResetError(),
    ],
)
def test_rabbitmq_connection_errors_are_an_outage(error: BaseException) -> None:
    assert _connection_lost(error)


def test_rabbitmq_channel_refusals_are_not_an_outage() -> None:
    assert not _connection_lost(aiormq.exceptions.ChannelAccessRefused("ACCESS_REFUSED"))
    assert not _connection_lost(aiormq.exceptions.DeliveryError(None, spec.Basic.Nack()))


# -- key templates ----------------------------------------------------------------------------


def test_key_templates() -> None:
    key = _keys.key_template("{tenant}.{topic}.v{version}", what="routing key", max_bytes=255)
    event = make_event("OrderPlaced", {}, topic="order", tenant_id="acme", version=2)
    assert key(event) == "acme.order.v2"
    assert key(event) == "acme.order.v2"  # cached
    with pytest.raises(_keys.KeyTemplateError, match=r"needs \['tenant'\]"):
        key(make_event("OrderPlaced", {}))
    long_key = _keys.key_template("{topic}", what="routing key", max_bytes=8)
    with pytest.raises(_keys.KeyTemplateError, match="over 8"):
        long_key(make_event("OrderPlaced", {}, topic="much.too.long"))
    for bad in ("{nope}", "{}", "{topic", "", "x" * 300):
        with pytest.raises(ConfigError):
            _keys.key_template(bad, what="routing key", max_bytes=255)
    assert _keys.key_template("fixed", what="k", max_bytes=255)(event) == "fixed"
