"""One connection tunnel at run time: its listener on the worker's 127.0.0.1, its SSH link along
the connection's route, and a thread per forwarded connection (connections.tunnels explains how
the worker's TunnelManager holds and supervises them).

- Its own SSH link (connections.services.routes; targets.ssh.open_chain: host keys pinned, the
  deny list applied to the first hop) and its own reconnect loop with exponential backoff: a
  failure of one tunnel never disturbs another, at the price of one SSH link per tunnel.
- Every accepted TCP connection rides one ``direct-tcpip`` channel; one thread per forwarded
  connection moves both directions with select(). The remote host is resolved by the target,
  not here, so only its spelling can be checked against the deny list (check_literal).
- What is stored in ``message`` comes from ConnectFailed, the deny list and socket errors,
  none of which carry a credential.
"""

import contextlib
import errno
import logging
import select
import socket
import threading
import time

import paramiko
from django.conf import settings
from django.db import DatabaseError
from django.db import connection as db_connection
from django.utils import timezone

from connections.choices import RUNNING_TUNNEL_STATES, TunnelState
from connections.models import Connection, Tunnel
from connections.services.routes import route_for_connection
from targets.addresses import TargetRefused, check_literal
from targets.services.hostkeys import HostKeyChanged
from targets.ssh import AuthFailed, ConnectFailed, open_chain

logger = logging.getLogger(__name__)

BIND_ADDRESS = "127.0.0.1"  # tunnels never listen beyond the worker's own loopback
POLL = 1.0  # seconds between two looks at the database, and at a link's health
ACCEPT_TIMEOUT = 0.5
PUMP_TIMEOUT = 1.0  # a forwarded connection notices a stop within this many seconds
SEND_TIMEOUT = 60  # a peer that takes nothing for this long is cut off
CHANNEL_TIMEOUT = 15
CHUNK = 65536
MAX_CLIENTS = 256  # forwarded connections open at once, per tunnel
RETRY_FIRST = 1.0  # seconds before the first new attempt; doubled up to TUNNEL_RETRY_MAX
STABLE_AFTER = 60  # a link that lived this long starts the backoff afresh when it drops


def port_in_use_message(port):
    return f"Port {port} on {BIND_ADDRESS} is already in use."


def bind_listener(port):
    """Listen on 127.0.0.1:``port``; raise OSError when it is taken.

    SO_REUSEADDR lets a tunnel come back while old connections linger in TIME_WAIT; it never
    lets two sockets listen on one port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((BIND_ADDRESS, port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


def close_db():
    """Give back this thread's database connection (threads of their own never do it otherwise)."""
    try:
        db_connection.close()
    except DatabaseError:
        pass


class RunningTunnel:
    """One open tunnel: a listener, an SSH link kept alive, and the connections forwarded."""

    def __init__(self, manager, row):
        self.manager = manager
        self.pk = row.pk
        self.connection_id = row.connection_id
        self.started_by_id = row.started_by_id
        self.local_port = row.local_port
        self.remote_host = row.remote_host
        self.remote_port = row.remote_port
        self.stopping = threading.Event()
        self.finished = threading.Event()  # closed, or gave up for good
        self.listener = None
        self.link = None
        self._lock = threading.Lock()
        self._clients = set()
        self.bytes_in = self.bytes_out = self.total = 0
        self._threads = []

    def __repr__(self):
        return f"<RunningTunnel {self.pk} 127.0.0.1:{self.local_port} -> {self.remote_host}:{self.remote_port}>"

    # --- life ---------------------------------------------------------------------------------

    def start(self):
        """Bind the port, then keep the link up in the background; False if the port is taken."""
        try:
            self.listener = bind_listener(self.local_port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                message = port_in_use_message(self.local_port)
            else:
                message = f"Cannot listen on {BIND_ADDRESS}:{self.local_port}: {exc.strerror or exc}."
            self._report(TunnelState.FAILED, message)
            self.finished.set()
            return False
        self.listener.settimeout(ACCEPT_TIMEOUT)
        for target, name in ((self._accept, "accept"), (self._keep_link, "link")):
            thread = threading.Thread(target=target, name=f"tunnel-{self.local_port}-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return True

    def close(self):
        """Stop listening now, end the forwarded connections and the link; never blocks for long.

        The threads notice within a second (or when a connection attempt under way times out)
        and end on their own; ``join`` waits for them where that matters (process exit).
        """
        self.stopping.set()
        self._close_listener()
        with self._lock:
            clients, link = list(self._clients), self.link
        for sock, channel in clients:
            _quietly(channel.close)
            _quietly(sock.close)
        if link is not None:
            link.close()
        self.finished.set()

    def join(self, deadline):
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _close_listener(self):
        # shutdown() first: it stops the listening at once and wakes a thread blocked in accept().
        if self.listener is not None:
            _quietly(lambda: self.listener.shutdown(socket.SHUT_RDWR))
            self.listener.close()

    def counters(self):
        with self._lock:
            return self.bytes_in, self.bytes_out, self.total, len(self._clients)

    # --- the SSH link -------------------------------------------------------------------------

    def _connect(self):
        connection = Connection.objects.get(pk=self.connection_id)  # the credentials as stored now
        check_literal(self.remote_host, self.remote_port)
        return open_chain(route_for_connection(connection), user_id=self.started_by_id)

    def _keep_link(self):
        delay = RETRY_FIRST
        try:
            while not self.stopping.is_set():
                try:
                    link = self._connect()
                except Connection.DoesNotExist:
                    return  # deleted: the manager closes the tunnel on its next look
                except (AuthFailed, HostKeyChanged, TargetRefused) as exc:
                    self._give_up(_text(exc))  # trying again would change nothing (or lock the account)
                    return
                except (ConnectFailed, paramiko.SSHException, OSError, EOFError, DatabaseError) as exc:
                    if isinstance(exc, DatabaseError):
                        close_db()
                    self._report(TunnelState.DOWN, f"{_text(exc)} Next attempt in {delay:.0f} s.")
                    if self.stopping.wait(delay):
                        return
                    delay = min(delay * 2, settings.TUNNEL_RETRY_MAX)
                    continue
                except Exception:
                    logger.exception("Tunnel %s: unexpected error while connecting", self.pk)
                    self._give_up("Unexpected error while connecting; the worker's log has the details.")
                    return
                with self._lock:
                    self.link = link
                if self.stopping.is_set():
                    return
                self._report(TunnelState.UP, "")
                since = time.monotonic()
                while link.is_active() and not self.stopping.wait(POLL):
                    pass
                with self._lock:
                    self.link = None
                link.close()
                if self.stopping.is_set():
                    return
                if time.monotonic() - since >= STABLE_AFTER:
                    delay = RETRY_FIRST
                self._report(TunnelState.DOWN, f"The SSH link dropped. Next attempt in {delay:.0f} s.")
                if self.stopping.wait(delay):
                    return
                delay = min(delay * 2, settings.TUNNEL_RETRY_MAX)
        finally:
            with self._lock:
                link, self.link = self.link, None
            if link is not None:
                link.close()
            close_db()

    def _give_up(self, message):
        self.stopping.set()
        self._close_listener()
        self._report(TunnelState.FAILED, message)
        self.finished.set()
        self.manager.wake()

    def _report(self, state, message):
        """Write the state, unless the tunnel was asked to stop meanwhile (that wins)."""
        now = timezone.now()
        fields = {"state": state, "message": message[:500], "updated_at": now}
        if state == TunnelState.FAILED:
            fields.update(stopped_at=now, connections_open=0)
        try:
            Tunnel.objects.filter(pk=self.pk, node=self.manager.node_id, state__in=RUNNING_TUNNEL_STATES).update(**fields)
        except DatabaseError:
            logger.warning("Tunnel %s: could not record its state %s", self.pk, state)
            close_db()

    # --- forwarding ---------------------------------------------------------------------------

    def _accept(self):
        while not self.stopping.is_set():
            try:
                client, peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            with self._lock:
                link = self.link
                full = len(self._clients) >= MAX_CLIENTS
            if link is None or full:
                client.close()  # the link is down (or too busy): refuse rather than hang
                continue
            threading.Thread(
                target=self._forward, args=(client, peer, link), name=f"tunnel-{self.local_port}-fwd", daemon=True
            ).start()

    def _forward(self, client, peer, link):
        try:
            channel = link.transport.open_channel(
                "direct-tcpip", (self.remote_host, self.remote_port), peer, timeout=CHANNEL_TIMEOUT
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            logger.info("Tunnel %s: the target could not open %s:%s: %s", self.pk, self.remote_host, self.remote_port, exc)
            client.close()
            return
        pair = (client, channel)
        with self._lock:
            if self.stopping.is_set():
                channel.close()
                client.close()
                return
            self._clients.add(pair)
            self.total += 1
        try:
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):  # either side went away
                self._pump(client, channel)
        finally:
            with self._lock:
                self._clients.discard(pair)
            _quietly(channel.close)
            _quietly(client.close)

    def _pump(self, client, channel):
        """Move bytes both ways until both sides are done, the channel closes, or a stop.

        poll(), not select(): a busy worker may hold descriptors beyond select's 1024.
        """
        client.settimeout(SEND_TIMEOUT)
        channel.settimeout(SEND_TIMEOUT)
        client_fd, channel_fd = client.fileno(), channel.fileno()  # a paramiko channel signals through a pipe
        poller = select.poll()
        poller.register(client_fd, select.POLLIN)
        poller.register(channel_fd, select.POLLIN)
        upstream = downstream = True  # client -> target, target -> client
        while (upstream or downstream) and not self.stopping.is_set():
            ready = {fd for fd, _ in poller.poll(PUMP_TIMEOUT * 1000)}
            if client_fd in ready:
                data = client.recv(CHUNK)
                if data:
                    channel.sendall(data)
                    with self._lock:
                        self.bytes_in += len(data)
                else:
                    upstream = False
                    poller.unregister(client_fd)
                    channel.shutdown_write()
            if channel_fd in ready:
                data = channel.recv(CHUNK)
                if data:
                    client.sendall(data)
                    with self._lock:
                        self.bytes_out += len(data)
                else:
                    downstream = False
                    poller.unregister(channel_fd)
                    _quietly(lambda: client.shutdown(socket.SHUT_WR))
            if not downstream and channel.closed:
                return


def _quietly(fn):
    try:
        fn()
    except (OSError, EOFError, paramiko.SSHException):
        pass


def _text(exc):
    """A message for the tunnel's row: the service's own words, else the OS's."""
    if isinstance(exc, DatabaseError):
        return "PAM's database could not be reached."
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    return message.rstrip(".") + "."
