"""The SSRF matrix: every inside address, in every spelling, is refused at registration."""

from __future__ import annotations

import ipaddress

import pytest

from tether.net import SsrfPolicy, UnsafeDestination, check_url
from tether.net.ssrf import literal_address, unsafe_reason

REFUSED = {
    # loopback, v4 and v6
    "http://127.0.0.1/": "loopback",
    "http://127.255.255.254:8080/x": "loopback",
    "http://[::1]/": "loopback",
    # RFC 1918 and unique-local
    "http://10.1.2.3/": "RFC 1918",
    "http://172.16.0.1/": "RFC 1918",
    "http://172.31.255.255/": "RFC 1918",
    "http://192.168.1.1/": "RFC 1918",
    "http://[fc00::1]/": "unique local",
    "http://[fd12:3456::1]/": "unique local",
    # cloud metadata
    "http://169.254.169.254/latest/meta-data/": "metadata",
    "http://[fd00:ec2::254]/": "metadata",
    "http://100.100.100.200/": "metadata",
    # link-local, CGNAT, unspecified, multicast, reserved
    "http://169.254.1.1/": "link-local",
    "http://[fe80::1]/": "link-local",
    "http://100.64.0.1/": "CGNAT",
    "http://100.127.255.254/": "CGNAT",
    "http://0.0.0.0/": "unspecified",
    "http://[::]/": "unspecified",
    "http://224.0.0.1/": "multicast",
    "http://[ff02::1]/": "multicast",
    "http://255.255.255.255/": "reserved",
    "http://240.0.0.1/": "reserved",
    "http://192.0.2.10/": "documentation",
    # IPv6 forms embedding an inside IPv4 address
    "http://[::ffff:127.0.0.1]/": "embeds IPv4 127.0.0.1: loopback",
    "http://[::ffff:a9fe:a9fe]/": "embeds IPv4 169.254.169.254: cloud metadata",
    "http://[::ffff:10.0.0.1]/": "embeds IPv4 10.0.0.1",
    "http://[2002:7f00:1::]/": "embeds IPv4 127.0.0.1",  # 6to4
    "http://[2002:a9fe:a9fe::1]/": "embeds IPv4 169.254.169.254",  # 6to4
    "http://[64:ff9b::7f00:1]/": "embeds IPv4 127.0.0.1",  # NAT64
    "http://[64:ff9b::a9fe:a9fe]/": "embeds IPv4 169.254.169.254",  # NAT64
    "http://[64:ff9b:1::a00:1]/": "local-use NAT64",
    "http://[::127.0.0.1]/": "IPv4-compatible",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/": "Teredo",
    # IPv4 spelled the old ways, read as the C resolver reads them
    "http://2130706433/": "loopback",
    "http://0x7f.1/": "loopback",
    "http://0x7f000001/": "loopback",
    "http://017700000001/": "loopback",
    "http://0177.0.0.1/": "loopback",
    "http://127.1/": "loopback",
    "http://0xa9fea9fe/": "metadata",
    "http://0/": "unspecified",
    # local-only names
    "http://localhost/": "local-only",
    "http://LOCALHOST./": "local-only",
    "http://api.localhost/": "local-only",
    "http://metadata.google.internal/": "local-only",
    # not a URL we post to
    "ftp://example.com/": "scheme 'ftp'",
    "file:///etc/passwd": "scheme 'file'",
    "gopher://example.com/": "scheme 'gopher'",
    "javascript:alert(1)": "scheme 'javascript'",
    "http://user:pass@example.com/": "user:password",
    "http://@example.com/": "user:password",
    "http:///nohost": "no host",
    "http://exa mple.com/": "spaces",
    "http://example.com/\r\nX: y": "control",
    "http://exämple.com/": "non-ASCII",
    "http://example.com:99999/": "port",
    "http://%31%32%37.0.0.1/": "not a valid host name",
    "http://[::1/": "not a valid URL",
    "": "empty",
    "http://example.com/" + "a" * 3000: "longer than",
}

ALLOWED = [
    "https://example.com/hook",
    "http://93.184.216.34/",
    "http://8.8.8.8:8080/x?y=1",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[2002:808:808::1]/",
    "https://hooks.slack.com/services/T000/B000/XXXX",
    "https://n8n.example.org:5678/webhook/abc",
]


@pytest.mark.parametrize(("url", "reason"), sorted(REFUSED.items()), ids=sorted(REFUSED))
def test_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeDestination, match="refused to connect to") as error:
        check_url(url, SsrfPolicy())
    assert reason in str(error.value)


@pytest.mark.parametrize("url", ALLOWED)
def test_public_destinations_pass(url: str) -> None:
    check_url(url, SsrfPolicy())


def test_allow_list_lets_named_hosts_and_ranges_through() -> None:
    policy = SsrfPolicy(allow=["127.0.0.1", "LocalHost", "10.0.0.0/8", "[::1]"])
    for url in ("http://127.0.0.1:8080/", "http://localhost/", "http://10.9.9.9/", "http://[::1]/"):
        check_url(url, policy)
    for url in ("http://127.0.0.2/", "http://192.168.0.1/", "http://169.254.169.254/"):
        with pytest.raises(UnsafeDestination):
            check_url(url, policy)
    # The allow-list does not switch off the URL checks.
    with pytest.raises(UnsafeDestination, match="scheme"):
        check_url("ftp://127.0.0.1/", policy)


def test_allow_list_entries_are_checked() -> None:
    with pytest.raises(ValueError, match="neither a host name nor a CIDR"):
        SsrfPolicy(allow=["not a host!"])
    with pytest.raises(TypeError, match="list"):
        SsrfPolicy(allow="127.0.0.1")


def test_error_names_host_and_reason() -> None:
    with pytest.raises(UnsafeDestination) as error:
        SsrfPolicy().check_address("hooks.example", ipaddress.ip_address("10.0.0.7"))
    assert error.value.host == "hooks.example (10.0.0.7)"
    assert "private address" in error.value.reason
    assert str(error.value) == (
        "refused to connect to 'hooks.example (10.0.0.7)': private address (RFC 1918)"
    )


def test_literal_spellings() -> None:
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("[::1]") == ipaddress.ip_address("::1")
    assert literal_address("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert literal_address("example.com") is None
    assert literal_address("deadbeef") is None
    assert unsafe_reason(ipaddress.ip_address("1.1.1.1")) is None
