"""The target deny list: cloud metadata, PAM's own database and Redis, in every spelling."""

import ipaddress
import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from targets import addresses
from targets.addresses import TargetRefused, check_literal, normalize, resolve

METADATA_SPELLINGS = [
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "0xA9.0xFE.0xA9.0xFE",
    "0251.0376.0251.0376",
    "169.254.43518",
    "::ffff:169.254.169.254",
    "::ffff:a9fe:a9fe",
    "0:0:0:0:0:ffff:a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",
    "::169.254.169.254",
    "fd00:ec2::254",
]


@pytest.mark.parametrize("host", METADATA_SPELLINGS)
def test_metadata_is_refused_in_every_spelling(host):
    with pytest.raises(TargetRefused):
        resolve(host, 80)
    with pytest.raises(TargetRefused):
        check_literal(host, 80)


@pytest.mark.parametrize(
    "host",
    [
        "169.254.0.1",  # anywhere in IPv4 link-local, not only the metadata address
        "169.254.169.123",
        "169.254.255.254",
        "::ffff:169.254.1.1",
        "fe80::1",
        "fe80::1%lo",
        "febf:ffff::1",
        "fd00:ec2::23",
        "168.63.129.16",
        "::ffff:168.63.129.16",
    ],
)
def test_link_local_and_cloud_service_addresses_are_refused_by_default(host):
    with pytest.raises(TargetRefused):
        resolve(host, 443)
    with pytest.raises(TargetRefused):
        check_literal(host, 443)


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "::1", "192.0.2.10"])
def test_ordinary_addresses_pass(host):
    assert resolve(host, 22)


def test_names_are_resolved_before_the_check():
    assert resolve("localhost", 22)
    check_literal("metadata.example.invalid", 80)  # a name is checked when used, not when stored


def test_normalize_unwraps_embedded_ipv4():
    assert str(normalize("::ffff:10.1.2.3")) == "10.1.2.3"
    assert str(normalize("64:ff9b::a01:203")) == "10.1.2.3"
    assert str(normalize("2001:db8::1")) == "2001:db8::1"


@pytest.fixture
def on_postgres_and_redis(monkeypatch):
    endpoints = [("localhost", 5432, "PAM's database"), ("127.0.0.1", 6379, "PAM's Redis")]
    monkeypatch.setattr(addresses, "own_endpoints", lambda: endpoints)


def test_own_endpoints_follow_the_settings(settings):
    settings.REDIS_URL = "redis://cache.internal:6380/2"
    endpoints = addresses.own_endpoints()
    assert ("cache.internal", 6380, "PAM's Redis") in endpoints
    database = settings.DATABASES["default"]
    on_postgres = database["ENGINE"].endswith("postgresql")
    assert any(what == "PAM's database" for _, _, what in endpoints) is on_postgres


@pytest.mark.parametrize(
    "host, port",
    [
        ("127.0.0.1", 5432),
        ("127.0.0.2", 5432),
        ("0.0.0.0", 5432),
        ("0", 5432),
        ("::1", 5432),
        ("::ffff:127.0.0.1", 5432),
        ("2130706433", 5432),
        ("localhost", 6379),
        ("127.1", 6379),
    ],
)
def test_pams_own_database_and_redis_are_refused(on_postgres_and_redis, host, port):
    with pytest.raises(TargetRefused, match="PAM's"):
        resolve(host, port)


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST.", "redis.localhost", "localhost.localdomain", "localhost6", "ip6-localhost"]
)
def test_localhost_names_are_refused_where_the_hop_before_resolves_them(on_postgres_and_redis, host):
    """Behind a jump host, or as a tunnel's far end, a name is resolved over there; "localhost" is
    the loopback of whoever resolves it, so it meets the rule for 127.0.0.1 (RFC 6761)."""
    with pytest.raises(TargetRefused, match="PAM's Redis"):
        check_literal(host, 6379)
    check_literal(host, 22)


def machine_addresses():
    """This machine's routable addresses as `ip` lists them (not the code under test);
    link-local ones are refused on every port by the default deny list already."""
    found = []
    for line in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        address = ipaddress.ip_interface(fields[3]).ip
        if not (address.is_loopback or address.is_link_local):
            found.append(address)
    assert found, "the test needs an address beyond loopback"
    return found


def test_pams_database_and_redis_are_refused_on_every_address_of_this_machine(on_postgres_and_redis):
    """A database bound to the wildcard address answers on the machine's own addresses too."""
    for address in machine_addresses():
        for port in (5432, 6379):
            with pytest.raises(TargetRefused, match="PAM's"):
                resolve(str(address), port)
        assert resolve(str(address), 22)


def test_a_database_configured_by_this_machines_address_is_refused_on_loopback_too(monkeypatch):
    public = machine_addresses()[0]
    monkeypatch.setattr(addresses, "own_endpoints", lambda: [(str(public), 5432, "PAM's database")])
    for host in ("127.0.0.1", "::1", str(public)):
        with pytest.raises(TargetRefused, match="PAM's database"):
            resolve(host, 5432)
    assert resolve("127.0.0.1", 22)


def test_other_ports_of_this_machine_stay_usable(on_postgres_and_redis):
    assert resolve("127.0.0.1", 22)


def test_configured_deny_list_with_ports(settings):
    settings.TARGET_DENYLIST = ["10.0.0.0/8", "192.0.2.7:25", "[2001:db8::1]:22"]
    for host, port in [("10.20.30.40", 22), ("192.0.2.7", 25), ("2001:db8::1", 22)]:
        with pytest.raises(TargetRefused):
            resolve(host, port)
    assert resolve("192.0.2.7", 26) and resolve("2001:db8::1", 23)
    assert resolve("169.254.169.254", 80)  # the configured list replaces the default one


def test_bad_deny_list_entry_is_a_configuration_error(settings):
    settings.TARGET_DENYLIST = ["not-a-network"]
    with pytest.raises(ImproperlyConfigured, match="PAM_TARGET_DENYLIST"):
        resolve("10.0.0.1", 22)
