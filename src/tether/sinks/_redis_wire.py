"""The Redis Streams sink's script and its calls, encoded as RESP in one pass.

redis-py encodes a command argument by argument (about 1 µs each, ~30 per event) and parses a
reply element by element; here a call is written out as text, and its reply is one status
string per call rather than one element per event. ``tests/unit/sinks/test_redis_wire.py``
compares the fast encoding with the plain one built from ``Event.cloudevent_attributes``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tether.core.envelope import Event

DATA_FIELD = "data"

# One call adds up to CHUNK events to one stream. KEYS[1] the stream, KEYS[1 + i] the de-dup key
# of event i; ARGV[1] the window in ms, ARGV[2..4] trim strategy, operator and threshold ('' if
# none), then per event the number of its fields and the fields (attributes, then data).
# Answers {status, errors...}: status has one character per event, '+' added, '=' already
# there, '!' refused (its error is the next of errors).
XADD_ONCE = """
local head = {KEYS[1]}
if ARGV[2] ~= '' then head[2] = ARGV[2]; head[3] = ARGV[3]; head[4] = ARGV[4] end
head[#head + 1] = '*'
local status, errors = {}, {}
local pos = 5
for i = 1, #KEYS - 1 do
  local n = tonumber(ARGV[pos])
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    status[i] = '='
  else
    local args = {unpack(head)}
    for j = pos + 1, pos + n do args[#args + 1] = ARGV[j] end
    local id = redis.pcall('XADD', unpack(args))
    if type(id) == 'table' then
      status[i] = '!'
      errors[#errors + 1] = id.err
    else
      redis.call('SET', KEYS[i + 1], id, 'PX', ARGV[1])
      status[i] = '+'
    end
  end
  pos = pos + n + 1
end
return {table.concat(status), unpack(errors)}
"""
CHUNK = 100
"""Events per script call: the server runs one call at a time, so this bounds how long one
call holds it (about a millisecond)."""


def dedup_key(stream: str, event: Event) -> str:
    """``{<stream>}:dedup:<event id>``: the hash tag puts it in the stream's cluster slot."""
    return f"{{{stream}}}:dedup:{event.id}"


def call(
    sha: str, stream: str, events: Sequence[Event], window_ms: str, trim: Sequence[str]
) -> bytes:
    """One ``EVALSHA`` adding ``events`` to ``stream``, as RESP."""
    head = [sha, str(len(events) + 1), stream, *(dedup_key(stream, e) for e in events)]
    head += (window_ms, *trim)
    parts = [bulk(head)]
    count = 1 + len(head)
    for event in events:
        n, text = fields(event)
        data = event.data
        parts.append(b"$%d\r\n%d\r\n" % (len(str(n + 2)), n + 2))
        parts.append(text.encode())
        parts.append(b"$4\r\ndata\r\n$%d\r\n%b\r\n" % (len(data), data))
        count += n + 3
    return b"*%d\r\n$7\r\nEVALSHA\r\n%b" % (count, b"".join(parts))


def bulk(args: Sequence[str]) -> bytes:
    """RESP bulk strings of ``args`` (without the array header)."""
    return b"".join(b"$%d\r\n%b\r\n" % (len(b), b) for b in (a.encode() for a in args))


def fields(event: Event) -> tuple[int, str]:
    """How many name/value strings the event's attributes make, and their RESP text.

    Hot path: written field by field (about 3x faster than going through
    :meth:`Event.cloudevent_attributes`); when a value is not ASCII (character counts would
    not be byte counts) the plain version :func:`reference_fields` builds it.
    """
    e = event
    eid, time, version = str(e.id), e.created_at.isoformat(), str(e.version)
    text = (
        f"$11\r\nspecversion\r\n$3\r\n1.0\r\n$2\r\nid\r\n${len(eid)}\r\n{eid}\r\n"
        f"$6\r\nsource\r\n${len(e.source)}\r\n{e.source}\r\n"
        f"$4\r\ntype\r\n${len(e.type)}\r\n{e.type}\r\n$4\r\ntime\r\n${len(time)}\r\n{time}\r\n"
        "$15\r\ndatacontenttype\r\n$16\r\napplication/json\r\n"
        f"$5\r\ntopic\r\n${len(e.topic)}\r\n{e.topic}\r\n"
        f"$12\r\neventversion\r\n${len(version)}\r\n{version}\r\n"
    )
    n = 16
    for name, value in (
        ("subject", e.subject),
        ("tenantid", e.tenant_id),
        ("aggregatetype", e.aggregate_type),
        ("aggregateid", e.aggregate_id),
        ("partitionkey", e.partition_key),
        ("userid", e.user_id),
        ("correlationid", e.correlation_id),
        ("causationid", e.causation_id),
        ("traceparent", e.traceparent),
    ):
        if value is not None:
            text += f"${len(name)}\r\n{name}\r\n${len(value)}\r\n{value}\r\n"
            n += 2
    if not text.isascii():
        return reference_fields(event)
    return n, text


def reference_fields(event: Event) -> tuple[int, str]:
    """:func:`fields` written plainly from :meth:`Event.cloudevent_attributes`."""
    flat = [x for pair in event.cloudevent_attributes().items() for x in pair]
    return len(flat), bulk(flat).decode()


def read_status(reply: list[bytes]) -> list[tuple[str, str | None]]:
    """The script's answer as (status, error) per event: '+', '=' or '!' with its error."""
    status, errors = reply[0].decode(), iter(reply[1:])
    return [(s, next(errors).decode(errors="replace") if s == "!" else None) for s in status]
