"""Helpers for tests that run connection tunnels: a real Celery worker, free ports of the
tunnel range, a client that sends bytes through a tunnel, and the tunnels API as a caller sees it."""

import socket
import subprocess
import time
import uuid
from contextlib import contextmanager

from django.conf import settings

from connections.models import Tunnel
from tests.processes import ROOT, VENV_BIN, pam_env, stop

DEADLINE = 30  # seconds any wait in the tunnel tests may take


def new_queue(prefix="test"):
    """A queue name of this test alone: every test run of this working tree shares one broker
    (the filesystem broker under var/test, or Redis), so a worker on the default queue could
    take another run's tasks."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextmanager
def celery_worker(queue, log, env=None, concurrency=1):
    """Run `celery -A pam worker -Q <queue>` (prefork, as `make run` does); output goes to ``log``."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "celery"), "-A", "pam", "worker", "-Q", queue, "--concurrency", str(concurrency),
                "--hostname", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
            ],
            cwd=ROOT,
            env=env or pam_env(),
            stdout=output,
            stderr=output,  # never an unread pipe
        )
    try:
        yield process
    finally:
        stop(process)


def port_is_open(port):
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def free_tunnel_port():
    """A port of the configured tunnel range that nothing listens on and no tunnel row names."""
    low, high = settings.TUNNEL_PORT_MIN, settings.TUNNEL_PORT_MAX
    start = low + uuid.uuid4().int % (high - low + 1)
    for offset in range(high - low + 1):
        port = low + (start - low + offset) % (high - low + 1)
        if Tunnel.objects.filter(local_port=port).exists():
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port in the tunnel range")


def echo_through(port, payload=b"hello through the tunnel"):
    """Send ``payload`` to 127.0.0.1:``port`` and return what comes back (from an echo service)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def wait_for(predicate, timeout=DEADLINE, what="the condition"):
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start(client, connection):
    return client.post(f"/api/connections/{connection.pk}/tunnels/start")


def stop_tunnels(client, connection):
    return client.post(f"/api/connections/{connection.pk}/tunnels/stop")


def tunnel_state(client, connection, port=None):
    response = client.get(f"/api/connections/{connection.pk}/tunnels")
    assert response.status_code == 200, response.content
    items = response.json()["tunnels"]
    return next(t for t in items if port is None or t["localPort"] == port)


def wait_for_state(client, connection, states, timeout=DEADLINE):
    return wait_for(
        lambda: (lambda t: t if t["state"] in states else None)(tunnel_state(client, connection)),
        timeout,
        f"a tunnel state in {states}",
    )
