"""One typed route to a target: the target's hop and the jump hosts before it, in order.

A route carries credentials, so it is frozen, and its ``repr`` and ``str`` never show them: a
route that ends up in a log line, an exception or a test failure tells where it goes, not how
it signs in. Two places build one, and nothing else hand-builds credentials: a saved
connection's (connections.services.routes) and a session's (sessions.services.sessions.route_for).
The SSH client follows it (targets.ssh); the pins it meets are keyed by the hosts, ports and
usernames of its hops (targets.services.hostkeys.HostRoute).
"""

from dataclasses import dataclass

DEFAULT_SSH_PORT = 22
MASK = "********"


def _masked(secret):
    return MASK if secret else ""


@dataclass(frozen=True, repr=False)
class Hop:
    """One host of a route, and the account and credentials PAM signs in to it with."""

    host: str
    port: int = DEFAULT_SSH_PORT
    username: str = ""
    password: str = ""
    private_key: str = ""

    @classmethod
    def from_mapping(cls, fields):
        """A hop from its stored form (a session's ad-hoc jump host): missing values are empty."""
        return cls(
            host=fields["host"],
            port=fields.get("port") or DEFAULT_SSH_PORT,
            username=fields.get("username") or "",
            password=fields.get("password") or "",
            private_key=fields.get("private_key") or "",
        )

    @property
    def where(self):
        """``host:port``, as messages name the hop."""
        return f"{self.host}:{self.port}"

    def __str__(self):
        return f"{self.username}@{self.where}" if self.username else self.where

    def __repr__(self):
        return (
            f"Hop(host={self.host!r}, port={self.port!r}, username={self.username!r}, "
            f"password={_masked(self.password)!r}, private_key={_masked(self.private_key)!r})"
        )


@dataclass(frozen=True, repr=False)
class Route:
    """How to reach a target: through ``jumps`` in order, then ``target``."""

    target: Hop
    jumps: tuple[Hop, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "jumps", tuple(self.jumps))  # a list would leave it mutable

    @property
    def hops(self):
        """Every hop in the order they are connected to, the target last."""
        return (*self.jumps, self.target)

    def __str__(self):
        return " > ".join(str(hop) for hop in self.hops)

    def __repr__(self):
        return f"Route(target={self.target!r}, jumps={self.jumps!r})"
