"""Private PostgreSQL and Redis servers that tests stop and start, and an installation on them.

Fault tests take a dependency away from a running installation and give it back. They cannot
do that to the servers the rest of the suite shares, so they start their own: a PostgreSQL
cluster (``initdb`` into a temporary directory, run as the ``postgres`` account since the tests
run as root) and a ``redis-server``, each on a free loopback port, kept across a module's tests
and removed at its end, on failure too. ``stop()`` and ``start()`` take one down and bring it
back on the same port, as an outage and its end look to the processes using it.

An ``Installation`` is PAM set up on them: a migrated database, a data directory of its own,
users with tokens, and the environment that points daphne and celery at all of it.
"""

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from tests.processes import ROOT, VENV_BIN, free_port, stop, wait_for_http

PG_ACCOUNT = "postgres"


def wait_until(predicate, timeout, interval=0.2, message="condition"):
    """Poll ``predicate`` until it returns something true; return that, or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001 - a probe failing is "not yet"
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message}: not within {timeout}s (last probe: {last!r})")
        time.sleep(interval)


def _port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _postgres_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL cluster of its own: loopback only, trust authentication, no fsync."""

    def __init__(self):
        self.bin = _postgres_bin()
        account = pwd.getpwnam(PG_ACCOUNT)
        # Not under pytest's temporary directories: those are root's alone, and the server runs
        # as postgres.
        self.dir = Path(tempfile.mkdtemp(prefix="pam-fault-pg-"))
        os.chown(self.dir, account.pw_uid, account.pw_gid)
        os.chmod(self.dir, 0o700)
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self._as_postgres(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync",
            "--no-instructions",
        )

    def _as_postgres(self, tool, *args, check=True, timeout=60):
        return subprocess.run(
            ["runuser", "-u", PG_ACCOUNT, "--", str(self.bin / tool), *args],
            cwd=self.dir, capture_output=True, text=True, check=check, timeout=timeout,
        )

    @property
    def running(self):
        return self._as_postgres("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def start(self):
        if self.running:
            return self
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        result = self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start",
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {result.stdout}{result.stderr}\n{self.tail()}")
        wait_until(lambda: _port_open(self.port), 15, message="PostgreSQL listening")
        return self

    def stop(self):
        """Shut down at once (-m fast): clients are disconnected, new ones refused."""
        if self.running:
            self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        wait_until(lambda: not _port_open(self.port), 10, message="PostgreSQL closed its port")

    def remove(self):
        try:
            if self.running:
                self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                                  check=False)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database="postgres"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name):
        self._as_postgres("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def connect(self, database="postgres"):
        import psycopg

        return psycopg.connect(self.url(database).replace("postgres://", "postgresql://"), autocommit=True,
                               connect_timeout=3)

    def tail(self, chars=3000):
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class PrivateRedis:
    """A redis-server of its own, nothing persisted: a restart comes back empty, as after a crash."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pam-fault-redis-"))
        self.port = free_port()
        self.log = self.dir / "redis.log"
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def start(self):
        if self.running:
            return self
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.log), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_until(lambda: self._ping() or self.process.poll() is not None, 15, 0.05,
                   "redis-server answering")
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.process.returncode}: {self.tail()}")
        return self

    def _ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        """Gone at once (SIGKILL): connections reset, the port closed, nothing kept."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        wait_until(lambda: not _port_open(self.port), 10, message="redis closed its port")

    def remove(self):
        try:
            if self.running:
                self.process.kill()
                self.process.wait(10)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self, chars=3000):
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


# --- PAM on them --------------------------------------------------------------------------------

_MAKE_USERS = """
import json, django
django.setup()
from tests.factories import make_user, make_user_token
out = {}
for role in %r:
    user = make_user(role)
    out[role] = {"id": user.pk, "username": user.username, "email": user.email,
                 "token": make_user_token(user)[1]}
print(json.dumps(out))
"""


class Installation:
    """PAM on a private PostgreSQL database and a private Redis, with a data directory of its own."""

    def __init__(self, postgres, redis, base_dir, database="pam_faults", **settings):
        self.postgres = postgres
        self.redis = redis
        self.base_dir = Path(base_dir)
        self.database = database
        self.data_dir = self.base_dir / "data"
        self.settings = settings
        postgres.create_database(database)
        self.manage("migrate", "--noinput")

    def env(self, data_dir=None, **overrides):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PAM_DATABASE_URL": self.postgres.url(self.database),
            "PAM_REDIS_URL": self.redis.url,
            "PAM_DATA_DIR": str(data_dir or self.data_dir),
            "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in self.settings.items()},
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server under test keeps Django's async guard
        env.update({k: str(v) for k, v in overrides.items()})
        return {k: v for k, v in env.items() if v != "None"}

    def manage(self, *args, timeout=180):
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True, text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def users(self, *roles):
        """A new user of each role and a personal token for each: ``{role: {id, email, token}}``."""
        result = subprocess.run(
            [sys.executable, "-c", _MAKE_USERS % (roles,)], cwd=ROOT, env=self.env(), capture_output=True,
            text=True, timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"making users failed:\n{result.stdout}\n{result.stderr}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def query(self, sql, *params):
        """Rows of a query on the installation's database (it must be up)."""
        with self.postgres.connect(self.database) as conn:
            return conn.execute(sql, params).fetchall()

    def session_row(self, session_id):
        rows = self.query(
            "SELECT status, ended_at, node, status_message FROM pam_sessions_session WHERE id = %s",
            str(session_id),
        )
        if not rows:
            return None
        status, ended_at, node, message = rows[0]
        return {"status": status, "ended_at": ended_at, "node": node, "status_message": message}

    @contextmanager
    def daphne(self, log, **overrides):
        """One web node (``daphne pam.asgi:application``); yields the process, ``.base`` its URL,
        ``.log`` its output."""
        port = free_port()
        with open(log, "ab") as output:
            process = subprocess.Popen(
                [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "pam.asgi:application"],
                cwd=ROOT, env=self.env(**overrides), stdout=output, stderr=output,
            )
        process.base = f"http://127.0.0.1:{port}"
        process.log = Path(log)
        try:
            wait_for_http(process.base + "/api/health", process=process)
            yield process
        finally:
            stop(process)

    @contextmanager
    def celery(self, log, data_dir=None, **overrides):
        """``celery -A pam worker -B`` as bin/pam-run starts it (beat inside the worker)."""
        with open(log, "ab") as output:
            process = subprocess.Popen(
                [str(VENV_BIN / "celery"), "-A", "pam", "worker", "-B", "--loglevel", "INFO"],
                cwd=ROOT, env=self.env(data_dir=data_dir, **overrides), stdout=output, stderr=output,
                start_new_session=True,
            )
        process.log = Path(log)
        try:
            yield process
        finally:
            # The worker's children (prefork pool, the beat process) are its own; a stuck
            # worker goes with its whole process group.
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def established(port, pid=None):
    """ESTABLISHED TCP connections to 127.0.0.1:``port`` (from process ``pid`` or the ssh
    clients it runs, if given)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", "dst", f"127.0.0.1:{port}"],
        capture_output=True, text=True, check=True,
    ).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    if pid is not None:
        try:
            pids = {pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))}
        except psutil.NoSuchProcess:
            pids = {pid}
        lines = [line for line in lines if any(f"pid={p}," in line for p in pids)]
    return lines
