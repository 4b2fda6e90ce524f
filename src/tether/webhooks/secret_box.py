"""Encryption at rest for stored webhook secrets, keyed from the environment.

``SecretBox.from_env()`` reads ``TETHER_SECRET_KEY``: one Fernet key (``Fernet.generate_key()``,
or ``tether``'s ``SecretBox.generate_key()``), or several separated by commas to rotate keys:
the first encrypts, every one decrypts. Without the variable the box is plain: values are stored
as given, and ``decrypt`` refuses a value that was encrypted rather than handing back ciphertext.

Encrypted values carry the prefix ``enc:v1:`` so a plain value stored before encryption was
switched on still reads back (nothing already stored is lost); re-save it to encrypt it.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tether.core.errors import ConfigError, TetherError

ENV_VAR: Final = "TETHER_SECRET_KEY"
MARK: Final = "enc:v1:"


class SecretBoxError(TetherError):
    """A stored secret could not be decrypted (wrong key, no key, or damaged value)."""


class SecretBox:
    """Encrypts and decrypts short secrets; a plain box when built without keys."""

    __slots__ = ("_fernet",)

    def __init__(self, keys: str | None = None, *, source: str = "the key") -> None:
        self._fernet = _parse(keys, source) if keys else None

    @classmethod
    def from_env(cls, var: str = ENV_VAR) -> SecretBox:
        """The box for the keys in environment variable ``var`` (plain when it is unset/empty)."""
        return cls(os.environ.get(var, "").strip() or None, source=var)

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    @property
    def encrypting(self) -> bool:
        return self._fernet is not None

    def encrypt(self, plain: str) -> str:
        if self._fernet is None:
            return plain
        return MARK + self._fernet.encrypt(plain.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(MARK):
            return stored  # stored before encryption was switched on
        if self._fernet is None:
            raise SecretBoxError(
                f"a stored secret is encrypted but no key is configured: set {ENV_VAR} "
                "to the key it was encrypted with"
            )
        try:
            return self._fernet.decrypt(stored[len(MARK) :].encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise SecretBoxError(
                "a stored secret does not decrypt with the configured key(s): the key was "
                "changed without keeping the old one (list it after the new one), or the value "
                "is damaged"
            ) from None

    def __repr__(self) -> str:
        return f"SecretBox(encrypting={self.encrypting})"


def _parse(keys: str, source: str) -> MultiFernet:
    fernets = []
    for position, key in enumerate((k.strip() for k in keys.split(",")), start=1):
        try:
            fernets.append(Fernet(key.encode("ascii")))
        except (ValueError, UnicodeError):
            raise ConfigError(
                f"{source}: key {position} is not a Fernet key (32 bytes in url-safe base64, "
                "44 characters; make one with SecretBox.generate_key())"
            ) from None
    return MultiFernet(fernets)
