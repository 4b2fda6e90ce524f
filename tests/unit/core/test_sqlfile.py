"""Named SQL blocks render for every driver's parameter style; casts are left alone."""

from __future__ import annotations

from tether.store.sqlfile import parse

TEXT = """
-- name: one
SELECT * FROM t WHERE a = :a AND b = :b::int AND c = :a AND d LIKE '%x'

-- name: two
UPDATE t SET x = :x
"""


def test_blocks_and_parameter_styles() -> None:
    q = parse(TEXT)
    assert list(q) == ["one", "two"]
    one = q["one"]
    assert one.params == ("a", "b")
    assert one.numbered == "SELECT * FROM t WHERE a = $1 AND b = $2::int AND c = $1 AND d LIKE '%x'"
    assert (
        one.pyformat
        == "SELECT * FROM t WHERE a = %(a)s AND b = %(b)s::int AND c = %(a)s AND d LIKE '%%x'"
    )
    assert one.args({"a": 1, "b": 2}) == [1, 2]
    assert q["two"].sql == "UPDATE t SET x = :x"
