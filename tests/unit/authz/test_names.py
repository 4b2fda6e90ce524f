from __future__ import annotations

import pytest

from tests.unit.authz.conftest import REGISTRY
from tether.authz import InvalidCapabilityName, Registry, UnknownCapabilityError, parse
from tether.authz.names import implied_by


@pytest.mark.parametrize(
    "name", ["trade:approve", "availability:edit:own", "partner:kyc-verify", "trade:*", "a1:b_2"]
)
def test_valid_names(name: str) -> None:
    assert parse(name).resource == name.split(":", maxsplit=1)[0]


@pytest.mark.parametrize(
    "name",
    [
        "trade",
        "Trade:approve",
        "trade:",
        ":approve",
        "trade:approve:own:x",
        "trade:*:own",
        "trade approve",
        "trade:appr*ve",
        "*:approve",
        "trade:approve ",
        "",
        "tr\u00e4de:x",
    ],
)
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidCapabilityName):
        parse(name)


def test_registry_knows_declared_wildcards_and_super_admin() -> None:
    assert "trade:*" in REGISTRY.known
    assert "admin:all" in REGISTRY.known
    assert "trade:*" not in REGISTRY.declared
    assert REGISTRY.check("trade:approve") == "trade:approve"


def test_unknown_name_raises_naming_it() -> None:
    with pytest.raises(UnknownCapabilityError, match="'trade:aprove'"):
        REGISTRY.check("trade:aprove")
    with pytest.raises(InvalidCapabilityName):
        REGISTRY.check("not a name")


def test_registry_refuses_bad_declarations_at_start_up() -> None:
    with pytest.raises(InvalidCapabilityName):
        Registry(["trade:*"])
    with pytest.raises(InvalidCapabilityName):
        Registry(["TRADE:APPROVE"])


def test_implication_order() -> None:
    assert implied_by("availability:edit:own") == (
        "availability:edit:own",
        "availability:edit:any",
        "availability:*",
        "admin:all",
    )
    assert implied_by("admin:all") == ("admin:all", "admin:*")


def test_owned_check_needs_both_modifiers_declared() -> None:
    assert REGISTRY.check_owned("availability:edit") == (
        "availability:edit:own",
        "availability:edit:any",
    )
    with pytest.raises(UnknownCapabilityError):
        REGISTRY.check_owned("trade:approve")
    with pytest.raises(InvalidCapabilityName):
        REGISTRY.check_owned("availability:edit:own")
