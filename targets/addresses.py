"""Which network endpoints PAM may connect to: health checks, jump hosts and session targets.

A target is refused when any address it resolves to is on the deny list: the configured
networks (link-local and cloud metadata by default) plus the installation's own database and
Redis, on every address of this machine when they run here (a service bound to the wildcard
address answers on the machine's public addresses as well as on loopback). Names are
resolved the way the connection will resolve them, so every spelling of an address (decimal
``2852039166``, hex ``0xa9fea9fe``, octal, short ``169.254.43518``, IPv4-mapped or NAT64 IPv6)
meets the same rule; callers then connect to the returned addresses, never re-resolving, so a
name cannot pass the check and point elsewhere a moment later.
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import psutil
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from pam.exceptions import InvalidInput

NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Where a service bound to a loopback or wildcard address can be reached from this machine.
THIS_MACHINE = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "0.0.0.0/8", "::1/128", "::/128")]


class TargetRefused(InvalidInput):
    """The target is on the deny list."""


@dataclass(frozen=True)
class Rule:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    port: int | None
    reason: str

    def matches(self, address, port):
        return address in self.network and (self.port is None or self.port == port)


def normalize(address):
    """Return the IPv4 address behind an IPv4-mapped, -compatible or NAT64 IPv6 address."""
    address = ipaddress.ip_address(address)
    if address.version == 6:
        if address.ipv4_mapped:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
            return ipaddress.IPv4Address(int(address))
    return address


def parse_rule(entry, reason="deny list"):
    """Parse ``CIDR``, ``address:port`` or ``[v6]:port`` from the configured deny list."""
    try:
        return _parse_rule(entry.strip(), reason)
    except ValueError:
        raise ImproperlyConfigured(
            f"PAM_TARGET_DENYLIST entry {entry!r} is not a network, address:port or [address]:port"
        ) from None


def _parse_rule(text, reason):
    port = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
        text = host
    elif text.count(":") == 1:
        text, port_text = text.split(":")
        port = int(port_text)
    return Rule(ipaddress.ip_network(text, strict=False), port, reason)


def _numeric_addresses(host, port):
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return [info[4][0] for info in infos]


# Names every Linux /etc/hosts gives the loopback (Debian's included), besides RFC 6761's.
LOOPBACK_NAMES = {
    "localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4", "localhost6",
    "localhost6.localdomain6", "ip6-localhost", "ip6-loopback",
}


def _spelled_addresses(host, port):
    """The addresses ``host`` names without asking a resolver: a literal in any notation, or a
    loopback name (``localhost`` and the names under it, RFC 6761, and /etc/hosts' usual ones)."""
    name = host.lower().rstrip(".")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return ["127.0.0.1", "::1"]
    return _numeric_addresses(host, port)


def own_addresses():
    """Every address of this machine's network interfaces, zone suffixes dropped."""
    return {
        normalize(entry.address.split("%")[0])
        for entries in psutil.net_if_addrs().values()
        for entry in entries
        if entry.family in (socket.AF_INET, socket.AF_INET6)
    }


def literal_address(host):
    """The address ``host`` spells in any notation, normalized; None when it is a name."""
    addresses = _numeric_addresses(host, 0)
    return str(normalize(addresses[0])) if addresses else None


def _endpoint_rules(host, port, reason):
    """Rules covering one service endpoint of this installation, however it is spelled.

    A service on this machine (loopback, wildcard or one of its own addresses) is reachable on
    all of them, so all of them are refused on its port.
    """
    if not host or host.startswith("/"):  # a Unix socket is not reachable over TCP
        return []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    mine = own_addresses()
    networks = []
    for address in {normalize(info[4][0]) for info in infos}:
        if address.is_loopback or address.is_unspecified or address in mine:
            networks += THIS_MACHINE + [ipaddress.ip_network(own) for own in mine]
        else:
            networks.append(ipaddress.ip_network(address))
    return [Rule(network, port, reason) for network in dict.fromkeys(networks)]


def own_endpoints():
    """``(host, port, what)`` of the services this installation itself depends on."""
    endpoints = []
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("postgresql"):
        endpoints.append((database.get("HOST") or "", int(database.get("PORT") or 5432), "PAM's database"))
    if settings.REDIS_URL:
        redis = urlsplit(settings.REDIS_URL)
        endpoints.append((redis.hostname or "", redis.port or 6379, "PAM's Redis"))
    return endpoints


@lru_cache(maxsize=1)
def deny_rules():
    rules = [parse_rule(entry) for entry in settings.TARGET_DENYLIST]
    for host, port, what in own_endpoints():
        rules += _endpoint_rules(host, port, what)
    return tuple(rules)


def refusal(addresses, port):
    """Return why connecting to any of ``addresses`` on ``port`` is refused, or ''."""
    for raw in addresses:
        address = normalize(raw)
        for rule in deny_rules():
            if rule.matches(address, port):
                return f"{address} is not an allowed target ({rule.reason})."
    return ""


def check_literal(host, port):
    """Refuse at write time a host that is spelled as a denied address (names are checked on use).

    For a jump host's target or a tunnel's far end, resolved by the hop before it, this is the
    only check PAM can make: it knows what a literal and ``localhost`` mean there, not a name.
    """
    addresses = _spelled_addresses(host, port)
    reason = refusal(addresses or [], port)
    if reason:
        raise TargetRefused(reason, field="host")


def url_endpoint(url):
    """The ``(host, port)`` a web URL reaches; ValueError for a port out of range."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (80 if parts.scheme == "http" else 443)


def check_url(url):
    """Refuse at write time a web connection's URL whose host is spelled as a denied address."""
    try:
        host, port = url_endpoint(url)
    except ValueError:
        raise InvalidInput("The url is not a valid URL.", field="url") from None
    reason = refusal(_spelled_addresses(host, port) or [], port)
    if reason:
        raise TargetRefused(reason, field="url")


def resolve(host, port):
    """Resolve ``host`` and return its addresses, refusing the target if any is denied."""
    addresses = _numeric_addresses(host, port)
    if addresses is None:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
    reason = refusal(addresses, port)
    if reason:
        raise TargetRefused(reason)
    return addresses


async def aresolve(host, port):
    """``resolve`` for the event loop: numeric hosts inline, names through the loop's resolver."""
    addresses = _numeric_addresses(host, port)
    if addresses is None:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
    reason = refusal(addresses, port)
    if reason:
        raise TargetRefused(reason)
    return addresses
