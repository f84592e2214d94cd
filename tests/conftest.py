import socket
import threading

import pytest
import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.test import APIClient

from tests import targets
from tests.factories import make_user

ROLES = ("viewer", "operator", "poweruser", "admin")


@pytest.fixture(autouse=True)
def no_counted_failures():
    """Start every test with no failed logins or tokens counted and no audit summary open."""
    clear_throttles()


def clear_throttles():
    cache = caches["throttle"]
    if isinstance(cache, RedisCache):
        # Only this cache's keys: the same Redis database carries the channel layer and Celery.
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    else:
        cache.clear()


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def client_as(db):
    """Return a function giving an APIClient signed in (browser session) as a new user of a role."""

    def signed_in(role="operator", **user_kwargs):
        user = make_user(role, **user_kwargs)
        client = APIClient()
        client.force_login(user)
        client.user = user
        return client

    return signed_in


@pytest.fixture
def admin_client(client_as):
    return client_as("admin")


def bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _keygen(tmp_path_factory, name, passphrase=""):
    import subprocess

    path = tmp_path_factory.mktemp("keys") / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True)
    return path.read_text()


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory):
    """An unencrypted Ed25519 private key in OpenSSH format."""
    return _keygen(tmp_path_factory, "id_ed25519")


@pytest.fixture(scope="session")
def encrypted_ssh_key(tmp_path_factory):
    return _keygen(tmp_path_factory, "id_encrypted", passphrase="secret-passphrase")


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1 (never accepting; the kernel completes handshakes); its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def echo_server():
    """A TCP echo service on 127.0.0.1 (the far end of tunnels); its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    done = threading.Event()

    def echo(conn):
        with conn:
            conn.settimeout(30)
            while not done.is_set():
                try:
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)
                except OSError:
                    return

    def serve():
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    done.set()
    thread.join(5)
    server.close()


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# --- real targets (tests/targets.py) -----------------------------------------------------------

@pytest.fixture(scope="session")
def target_password():
    return targets.ensure_account()


@pytest.fixture(scope="session")
def sshd(target_password):
    """The SSH target: OpenSSH on 127.0.0.1."""
    server = targets.Sshd(target_password).start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def jump_sshd(target_password):
    """A second OpenSSH, the jump host: one process on 127.0.0.2 and 127.0.0.3 (two hops)."""
    server = targets.Sshd(target_password, addresses=("127.0.0.2", "127.0.0.3")).start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def telnetd(target_password):
    server = targets.Telnetd(target_password).start()
    yield server
    server.stop()
