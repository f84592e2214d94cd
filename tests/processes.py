"""Helpers for tests that start real PAM processes (daphne, celery) against the test database."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def database_url():
    """The URL of the database this test process uses (the test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def pam_env(**overrides):
    """Environment for a child process that shares this test's database, data dir and Redis."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PAM_DATABASE_URL": database_url(),
        "PAM_DATA_DIR": str(settings.DATA_DIR),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_ALLOW_ASYNC_UNSAFE": None,  # the server under test keeps Django's async guard
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url, timeout=30.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(process, timeout=15):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def daphne(env=None, port=None):
    """Run `daphne pam.asgi:application` on a loopback port (free if not given); yield its base URL."""
    with daphne_process(env, port) as process:
        yield process.base


@contextmanager
def daphne_process(env=None, port=None, log=None):
    """Like daphne(), but yield the process itself (``.base`` is its URL), for tests that kill it.

    ``log``: a file for daphne's output (else it is discarded), to read when a test fails.
    """
    port = port or free_port()
    output = open(log, "ab") if log else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "pam.asgi:application"],
            cwd=ROOT,
            env=env or pam_env(),
            stdout=output,
            stderr=output,  # never an unread pipe: a chatty server would block once it fills
        )
    finally:
        if log:
            output.close()
    process.base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(process.base + "/api/health", process=process)
        yield process
    finally:
        stop(process)


@contextmanager
def oidc_provider(accounts_file, redirect_base, client_id="pam", client_secret="provider-test-secret"):
    """Run the test OpenID Connect provider (tests/oidc/provider.mjs); yield its issuer URL."""
    port = free_port()
    process = subprocess.Popen(
        ["node", str(ROOT / "tests" / "oidc" / "provider.mjs")],
        cwd=ROOT,
        env={
            **os.environ,
            "PORT": str(port),
            "CLIENT_ID": client_id,
            "CLIENT_SECRET": client_secret,
            "REDIRECT_URI": f"{redirect_base}/auth/callback",
            "POST_LOGOUT_URI": f"{redirect_base}/login",
            "ACCOUNTS_FILE": str(accounts_file),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(issuer + "/.well-known/openid-configuration", process=process)
        yield issuer
    finally:
        stop(process)
