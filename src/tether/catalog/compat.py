"""Has a registered schema changed incompatibly without a new version?

A snapshot (committed JSON) holds the topic and JSON schema of every registered
(type, version). :func:`breaks` compares the catalog with it. A change breaks consumers or the
events already written when it:

* removes a field, or adds a required one (old events lack it);
* changes a field's type (``integer`` to ``string``, or to ``integer | string``);
* narrows an enum (a value old events may hold is gone);
* moves the type to another topic, or drops a (type, version) from the catalog.

Adding an optional field, widening an enum or relaxing a required field is compatible. Such
changes only make the snapshot stale: :func:`stale` lists them, and ``--write-snapshot`` records
them. A breaking change goes into a new version, with an upcaster from the old one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tether.catalog.registry import EventCatalog
from tether.core.errors import ConfigError

SNAPSHOT_FORMAT = 1
_MAX_DEPTH = 32  # recursive models: stop following $refs this deep


@dataclass(frozen=True, slots=True)
class Break:
    """One incompatible change: where (type, version, field path) and what."""

    type: str
    version: int
    path: str
    change: str

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.type} v{self.version}{where}: {self.change}"


def snapshot(catalog: EventCatalog) -> dict[str, Any]:
    """What to commit: every (type, version)'s topic and self-contained JSON schema."""
    types: dict[str, dict[str, Any]] = {}
    for entry in catalog.types():
        types.setdefault(entry.type, {})[str(entry.version)] = {
            "topic": entry.topic,
            "schema": entry.json_schema(),
        }
    return {"format": SNAPSHOT_FORMAT, "types": types}


def dumps(snap: Mapping[str, Any]) -> str:
    return json.dumps(snap, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def loads(text: str, where: str) -> dict[str, Any]:
    """A snapshot read back; :class:`ConfigError` naming ``where`` when it is not one."""
    try:
        snap = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"snapshot {where} is not JSON: {exc}") from None
    if not isinstance(snap, dict) or snap.get("format") != SNAPSHOT_FORMAT:
        raise ConfigError(
            f"snapshot {where} is not a tether catalog snapshot (format {SNAPSHOT_FORMAT}); "
            "create it with --write-snapshot"
        )
    types = snap.get("types")
    if not isinstance(types, dict) or not all(
        isinstance(v, dict) and all(isinstance(e, dict) and "schema" in e for e in v.values())
        for v in types.values()
    ):
        raise ConfigError(f"snapshot {where} has no valid 'types' map; rewrite it")
    return snap


def breaks(old: Mapping[str, Any], catalog: EventCatalog) -> list[Break]:
    """Every incompatible change from snapshot ``old`` to the catalog as registered now."""
    new = snapshot(catalog)["types"]
    found: list[Break] = []
    for type_name, versions in sorted(old["types"].items()):
        for version, before in sorted(versions.items(), key=lambda kv: int(kv[0])):
            after = new.get(type_name, {}).get(version)
            number = int(version)
            if after is None:
                found.append(
                    Break(type_name, number, "", "removed from the catalog (old events use it)")
                )
                continue
            if before.get("topic") != after["topic"]:
                found.append(
                    Break(
                        type_name,
                        number,
                        "",
                        f"topic changed from {before.get('topic')!r} to {after['topic']!r}",
                    )
                )
            diff = _Diff(before["schema"], after["schema"])
            found += [
                Break(type_name, number, path, change)
                for path, change in diff.compare(before["schema"], after["schema"], "", 0)
            ]
    return found


def stale(old: Mapping[str, Any], catalog: EventCatalog) -> list[str]:
    """(type, version)s whose entry differs from the snapshot or is missing from it."""
    new = snapshot(catalog)["types"]
    out = []
    for type_name, versions in sorted(new.items()):
        for version, entry in versions.items():
            if old["types"].get(type_name, {}).get(version) != entry:
                out.append(f"{type_name} v{version}")
    return out


class _Diff:
    """Compares two JSON schemas, following each side's ``$ref`` into its own ``$defs``."""

    def __init__(self, old_root: Mapping[str, Any], new_root: Mapping[str, Any]) -> None:
        self.old_defs = old_root.get("$defs", {})
        self.new_defs = new_root.get("$defs", {})

    def compare(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, depth: int
    ) -> Iterator[tuple[str, str]]:
        if depth > _MAX_DEPTH:
            return
        old = _resolve(old, self.old_defs)
        new = _resolve(new, self.new_defs)
        old_types, new_types = _types(old, self.old_defs), _types(new, self.new_defs)
        if old_types and new_types and old_types != new_types:
            yield path, f"type changed from {_show(old_types)} to {_show(new_types)}"
            return
        yield from self._enum(old, new, path)
        yield from self._properties(old, new, path, depth)
        old_items, new_items = old.get("items"), new.get("items")
        if isinstance(old_items, dict) and isinstance(new_items, dict):
            yield from self.compare(old_items, new_items, f"{path}[]", depth + 1)
        # Optional fields (anyOf [X, null]): compare the non-null branches when both have one.
        old_one, new_one = _single(old, self.old_defs), _single(new, self.new_defs)
        if old_one is not None and new_one is not None and (old_one, new_one) != (old, new):
            yield from self.compare(old_one, new_one, path, depth + 1)

    def _enum(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str
    ) -> Iterator[tuple[str, str]]:
        old_values, new_values = _enum(old), _enum(new)
        if old_values is None or new_values is None:
            return
        gone = [v for v in old_values if v not in new_values]
        if gone:
            yield path, f"enum narrowed: {', '.join(json.dumps(v) for v in gone)} removed"

    def _properties(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, depth: int
    ) -> Iterator[tuple[str, str]]:
        old_props, new_props = old.get("properties"), new.get("properties")
        if not isinstance(old_props, dict) or not isinstance(new_props, dict):
            return
        old_required = set(old.get("required", ()))
        for name in sorted(new.get("required", ())):
            if name not in old_required:
                yield _join(path, name), "new required field"
        for name, schema in old_props.items():
            where = _join(path, name)
            if name not in new_props:
                yield where, "field removed"
            else:
                yield from self.compare(schema, new_props[name], where, depth + 1)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(_MAX_DEPTH):
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            return schema
        target = defs.get(ref.removeprefix("#/$defs/"))
        if not isinstance(target, dict):
            return schema
        schema = target
    return schema


def _branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            return [o for o in options if isinstance(o, dict)]
    return None


def _types(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> frozenset[str]:
    """The JSON types a schema admits, when it says (empty when it does not)."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset([declared])
    if isinstance(declared, list):
        return frozenset(str(t) for t in declared)
    if "properties" in schema:
        return frozenset(["object"])
    values = _enum(schema)
    if values is not None:
        return frozenset(_json_type(v) for v in values)
    branches = _branches(schema)
    if branches:
        found: set[str] = set()
        for branch in branches:
            kinds = _types(_resolve(branch, defs), defs)
            if not kinds:
                return frozenset()  # a branch we cannot type: say nothing rather than guess
            found |= kinds
        return frozenset(found)
    return frozenset()


def _single(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The one non-null branch of ``anyOf [X, null]``, or the schema itself when not a union."""
    branches = _branches(schema)
    if branches is None:
        return None
    rest = [b for b in branches if _resolve(b, defs).get("type") != "null"]
    return _resolve(rest[0], defs) if len(rest) == 1 else None


def _enum(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    values = schema.get("enum")
    return list(values) if isinstance(values, list) else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _show(types: frozenset[str]) -> str:
    return " | ".join(sorted(types))
