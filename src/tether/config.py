"""Tether's settings: CLI flags > ``TETHER_*`` environment variables > a TOML file > defaults.

Every value is validated by frozen pydantic models; an error names where the bad value came
from (``--batch-size``, ``TETHER_RELAY_BATCH_SIZE``, ``tether.toml: relay.batch_size``), the
value, and what is allowed. Credentials in URLs are masked before they appear anywhere.

The TOML file mirrors the models::

    database_url = "postgresql://app@127.0.0.1:5432/app"
    database_pooler = "none"   # "transaction" behind PgBouncer in transaction mode
    metrics_port = 9108

    [relay]
    batch_size = 500
    retry_max_attempts = 10

    [sinks.nats]
    url = "nats://127.0.0.1:4222"

    [routes]
    "order.*" = ["nats"]

and each key ``a.b_c`` has the environment variable ``TETHER_A_B_C``. The ``[sinks.<name>]``
sections are the models of the sink plugins (:mod:`tether.sinks.registry`), so a sink added by
another package is configured like the built-in ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from tether.core.backoff import RetryPolicy
from tether.core.errors import ConfigError
from tether.core.redact import mask_url
from tether.sinks import registry
from tether.store.postgres.pooler import PoolerMode

ENV_PREFIX = "TETHER_"
CONFIG_ENV = "TETHER_CONFIG"


def _hint(text: str, **constraints: Any) -> Any:
    """A field whose error message is ``must be <text>``."""
    return Field(json_schema_extra={"hint": text}, **constraints)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RelaySettings(_Frozen):
    batch_size: int = _hint("an integer 1..10000", default=500, ge=1, le=10_000)
    concurrency: int = _hint("an integer 1..64", default=1, ge=1, le=64)
    poll_interval: float = _hint("seconds, > 0 and <= 60", default=0.005, gt=0, le=60)
    idle_poll_interval: float = _hint("seconds, > 0 and <= 60", default=0.25, gt=0, le=60)
    publish_timeout: float = _hint("seconds, > 0 and <= 3600", default=10.0, gt=0, le=3600)
    retry_max_attempts: int = _hint("an integer 1..1000", default=10, ge=1, le=1000)
    retry_base: float = _hint("seconds, > 0 and <= 3600", default=1.0, gt=0, le=3600)
    retry_cap: float = _hint("seconds, > 0 and <= 86400", default=600.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _ordered(self) -> RelaySettings:
        if self.poll_interval > self.idle_poll_interval:
            raise ValueError("relay.poll_interval must not exceed relay.idle_poll_interval")
        if self.retry_base > self.retry_cap:
            raise ValueError("relay.retry_base must not exceed relay.retry_cap")
        return self

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.retry_max_attempts,
            base=timedelta(seconds=self.retry_base),
            cap=timedelta(seconds=self.retry_cap),
        )


class Sinks(_Frozen):
    """One ``[sinks.<name>]`` section per known sink plugin; see :func:`settings_model`."""

    def section(self, name: str) -> BaseModel:
        found = getattr(self, name, None)
        if not isinstance(found, BaseModel):
            raise ConfigError(f"unknown sink {name!r}: known sinks are {', '.join(self.names())}")
        return found

    def names(self) -> tuple[str, ...]:
        return tuple(type(self).model_fields)

    def enabled(self) -> tuple[str, ...]:
        """The sinks the configuration turns on, by name."""
        return tuple(n for n in self.names() if registry.get(n).is_enabled(self.section(n)))


@dataclass(frozen=True, slots=True)
class Database:
    """A validated database location. ``url`` is usable by asyncpg (PostgreSQL)."""

    kind: Literal["postgres", "sqlite"]
    url: str
    sqlite_path: Path | None = None
    # How the URL reaches PostgreSQL: directly (or through a session pooler), or through a
    # transaction-mode pooler, where no session state survives a transaction.
    pooler: PoolerMode = PoolerMode.NONE

    @property
    def masked(self) -> str:
        return mask_url(self.url)


def parse_database_url(url: str) -> Database:
    """Accept ``postgresql://``/``postgres://`` (any ``+driver``) and ``sqlite:///path``."""
    scheme, sep, rest = url.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if sep and base in ("postgresql", "postgres") and rest:
        return Database("postgres", f"postgresql://{rest}")
    if sep and base == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return Database("sqlite", url, Path(rest[1:]))
    raise ValueError("expected postgresql://user@host:5432/db or sqlite:///path/to/file.db")


class Settings(_Frozen):
    database_url: str | None = _hint(
        "postgresql://user@host:5432/db or sqlite:///path/to/file.db", default=None
    )
    database_pooler: PoolerMode = _hint(
        "none, session or transaction (a transaction-mode pooler such as PgBouncer)",
        default=PoolerMode.NONE,
    )
    metrics_port: int | None = _hint("a TCP port 1..65535", default=None, ge=1, le=65_535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _hint(
        "one of DEBUG, INFO, WARNING, ERROR", default="INFO"
    )
    relay: RelaySettings = Field(default_factory=RelaySettings)
    sinks: Sinks = Field(default_factory=Sinks)
    routes: dict[str, tuple[str, ...]] = _hint(
        'a table of topic glob = [sink names], e.g. "order.*" = ["nats"]', default_factory=dict
    )

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is not None:
            parse_database_url(value)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_pooler", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        known = registry.names()
        for pattern, sinks in value.items():
            unknown = [s for s in sinks if s not in known]
            if not pattern or not sinks or unknown:
                raise ValueError(
                    f"route {pattern!r} -> {list(sinks)}: give a non-empty glob and one or "
                    f"more of {', '.join(known)}"
                )
        return value

    def database(self) -> Database:
        """The configured database; a :class:`ConfigError` saying how to set one if missing."""
        if self.database_url is None:
            raise ConfigError(
                "no database configured: pass --database-url, set TETHER_DATABASE_URL, "
                "or put database_url in the config file (--config / TETHER_CONFIG)"
            )
        db = parse_database_url(self.database_url)
        return dataclasses.replace(db, pooler=self.database_pooler)


# -- loading: flatten each layer to dotted keys, remember where each value came from ---------

Sourced = dict[str, tuple[object, str]]  # dotted key -> (raw value, label for errors)


def _leaves(model: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo]:
    out: dict[str, FieldInfo] = {}
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out.update(_leaves(kind, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = info
    return out


def settings_model() -> type[Settings]:
    """:class:`Settings` with one ``sinks`` section per sink plugin known right now."""
    plugins = registry.plugins()
    return _settings_model(tuple((name, p.settings) for name, p in plugins.items()))


@functools.cache
def _settings_model(sections: tuple[tuple[str, type[BaseModel]], ...]) -> type[Settings]:
    fields: dict[str, Any] = {name: (m, Field(default_factory=m)) for name, m in sections}
    sinks = create_model("Sinks", __base__=Sinks, **fields)
    return create_model("Settings", __base__=Settings, sinks=(sinks, Field(default_factory=sinks)))


def env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "_").upper()


def _from_env(env: Mapping[str, str], leaves: Mapping[str, FieldInfo]) -> Sourced:
    found: Sourced = {}
    for key in leaves:
        name = env_name(key)
        value = env.get(name)
        if value is None or value == "":
            continue
        if key == "routes":
            try:
                found[key] = (json.loads(value), name)
            except json.JSONDecodeError:
                raise ConfigError(
                    f'{name}: must be JSON like {{"order.*": ["nats"]}}, got {value!r}'
                ) from None
        else:
            found[key] = (value, name)
    known = {env_name(key) for key in leaves}
    sinks_prefix = env_name("sinks.")
    for name in env:
        if name.startswith(sinks_prefix) and name not in known and env[name] != "":
            raise ConfigError(
                f"{name}: no such sink setting; known sinks are {', '.join(registry.names())} "
                f"(variables are {sinks_prefix}<SINK>_<KEY>)"
            )
    return found


def _flatten(
    table: Mapping[str, Any], leaves: Mapping[str, FieldInfo], prefix: str = ""
) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and key not in leaves:
            out.update(_flatten(value, leaves, key + "."))
        else:
            out[key] = value
    return out


def _unknown_key(path: Path, key: str, leaves: Mapping[str, FieldInfo]) -> ConfigError:
    parts = key.split(".")
    if parts[0] == "sinks" and len(parts) > 1 and parts[1] not in registry.names():
        return ConfigError(
            f"{path.name}: unknown sink {parts[1]!r} in [sinks.{parts[1]}]: known sinks are "
            f"{', '.join(registry.names())}"
        )
    close = difflib.get_close_matches(key, leaves, n=1)
    tip = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{path.name}: unknown key {key!r}{tip}")


def _from_file(path: Path, leaves: Mapping[str, FieldInfo]) -> Sourced:
    try:
        table = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    found: Sourced = {}
    for key, value in _flatten(table, leaves).items():
        if key not in leaves:
            raise _unknown_key(path, key, leaves)
        found[key] = (value, f"{path.name}: {key}")
    return found


def _nest(flat: Sourced) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, (value, _) in flat.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


_SECRET_WORDS = ("secret", "password", "token", "credential", "api_key", "private_key")


def _is_secret(key: str, field: FieldInfo) -> bool:
    # A refused secret must not be echoed back into logs: decide by type, then by name, since
    # a plugin's settings may hold a secret in a plain str.
    annotation = str(field.annotation)
    if "SecretStr" in annotation or "SecretBytes" in annotation:
        return True
    leaf = key.rsplit(".", 1)[-1].lower()
    return any(word in leaf for word in _SECRET_WORDS)


def _shown(key: str, value: object, field: FieldInfo) -> str:
    if _is_secret(key, field):
        return "<redacted>"
    if isinstance(value, str) and key.endswith("url"):
        return repr(mask_url(value))
    return repr(value)


def _explain(exc: ValidationError, merged: Sourced, leaves: Mapping[str, FieldInfo]) -> ConfigError:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        prefixes = (".".join(loc[:n]) for n in range(len(loc), 0, -1))
        key = next((p for p in prefixes if p in leaves), None)
        if key is None:
            # A model-level rule (e.g. poll_interval <= idle_poll_interval): its message says it.
            lines.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        value, label = merged.get(key, (err.get("input"), key))
        extra = leaves[key].json_schema_extra
        hint = extra.get("hint") if isinstance(extra, dict) else None
        custom = err["type"] == "value_error"  # our own validators explain themselves
        message = str(err["msg"]).removeprefix("Value error, ")
        reason = message if custom or not hint else f"must be {hint}"
        lines.append(f"{label}={_shown(key, value, leaves[key])}: {reason}")
    return ConfigError("; ".join(dict.fromkeys(lines)))


def load_settings(
    config_file: Path | str | None = None,
    flags: Mapping[str, tuple[object, str]] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the layers and validate. ``flags`` maps dotted keys to ``(value, "--flag")``;
    ``None`` values are ignored, so unset flags fall through to the lower layers."""
    env = os.environ if env is None else env
    model = settings_model()
    leaves = _leaves(model)
    path = config_file if config_file is not None else env.get(CONFIG_ENV) or None
    merged: Sourced = {}
    if path is not None:
        merged.update(_from_file(Path(path), leaves))
    merged.update(_from_env(env, leaves))
    merged.update({k: v for k, v in (flags or {}).items() if v[0] is not None})
    try:
        return model.model_validate(_nest(merged))
    except ValidationError as exc:
        raise _explain(exc, merged, leaves) from None
