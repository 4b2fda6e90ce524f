"""Stored secrets encrypted with a key from the environment."""

from __future__ import annotations

import pytest

from tether.core.errors import ConfigError
from tether.webhooks.secret_box import SecretBox, SecretBoxError
from tether.webhooks.signing import WebhookSecret


def test_round_trip_hides_the_secret() -> None:
    box = SecretBox(SecretBox.generate_key())
    secret = str(WebhookSecret.generate())
    stored = box.encrypt(secret)
    assert stored.startswith("enc:v1:")
    assert secret.removeprefix("whsec_") not in stored
    assert box.decrypt(stored) == secret
    assert repr(box) == "SecretBox(encrypting=True)"


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SecretBox.generate_key()
    monkeypatch.setenv("TETHER_SECRET_KEY", key)
    box = SecretBox.from_env()
    assert box.encrypting
    assert key not in repr(box)
    monkeypatch.delenv("TETHER_SECRET_KEY")
    plain = SecretBox.from_env()
    assert not plain.encrypting
    assert plain.encrypt("whsec_x") == "whsec_x"
    assert plain.decrypt("whsec_x") == "whsec_x"


def test_bad_key_is_a_config_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "not-a-key-at-all")
    with pytest.raises(ConfigError, match="MY_KEY: key 1 is not a Fernet key") as error:
        SecretBox.from_env("MY_KEY")
    assert "not-a-key-at-all" not in str(error.value)
    monkeypatch.setenv("MY_KEY", f"{SecretBox.generate_key()},é")
    with pytest.raises(ConfigError, match="key 2"):
        SecretBox.from_env("MY_KEY")


def test_key_rotation_keeps_reading_old_values() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    stored = SecretBox(old).encrypt("whsec_a")
    rotated = SecretBox(f"{new},{old}")
    assert rotated.decrypt(stored) == "whsec_a"
    assert SecretBox(new).decrypt(rotated.encrypt("whsec_b")) == "whsec_b"
    with pytest.raises(SecretBoxError, match="does not decrypt"):
        SecretBox(new).decrypt(stored)


def test_encrypted_value_without_key_and_damaged_values() -> None:
    stored = SecretBox(SecretBox.generate_key()).encrypt("whsec_a")
    with pytest.raises(SecretBoxError, match="no key is configured"):
        SecretBox().decrypt(stored)
    with pytest.raises(SecretBoxError, match="damaged"):
        SecretBox(SecretBox.generate_key()).decrypt(stored[:-5] + "AAAAA")
    with pytest.raises(SecretBoxError, match="damaged"):
        SecretBox(SecretBox.generate_key()).decrypt("enc:v1:é")


def test_plain_values_stored_before_encryption_still_read() -> None:
    assert SecretBox(SecretBox.generate_key()).decrypt("whsec_old") == "whsec_old"
