"""The transports, by session type: the one place that knows which protocol opens which session.

A new protocol is one module here with a Transport subclass (sessions.transports.base), and one
line in TRANSPORTS. Services ask ``transport_class(session_type)`` what a type supports (jump
hosts, keys, files) instead of naming protocols; a type without a transport is not opened.
"""

from sessions.choices import SessionType
from sessions.transports.ssh import SshTransport
from sessions.transports.telnet import TelnetTransport

TRANSPORTS = {
    SessionType.SSH: SshTransport,
    SessionType.TELNET: TelnetTransport,
}


def transport_class(session_type):
    """The Transport that opens ``session_type``, or None when this installation opens none."""
    return TRANSPORTS.get(session_type)


def available_types():
    return tuple(TRANSPORTS)
