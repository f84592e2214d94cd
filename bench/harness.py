"""What both benchmarks share: a throwaway installation, a daphne server, timing and tables.

A benchmark calls ``throwaway()`` before anything imports Django settings. It points
``PAM_DATA_DIR`` at a new temporary directory and, when ``PAM_DATABASE_URL`` names a PostgreSQL
server, creates a database ``pam_bench_<random>`` there and points the URL at it. Leaving the
``with`` block stops what the benchmark started and removes the directory and the database,
also after an error, Ctrl-C or SIGTERM.
"""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class BenchFailure(Exception):
    """A correctness check of a benchmark failed; the script exits non-zero."""


_stop_signal = None


def _raise_exit(signum, frame):
    global _stop_signal
    _stop_signal = signum
    raise SystemExit(128 + signum)


def check_stop():
    """Exit if SIGTERM or SIGINT arrived. Their handler raises at once, but Python swallows an
    exception raised inside a ``__del__`` or weakref callback, so loops also ask here."""
    if _stop_signal is not None:
        raise SystemExit(128 + _stop_signal)


@contextlib.contextmanager
def throwaway(prefix):
    """Set up a throwaway data directory (and PostgreSQL database); yield its description."""
    if "django" in sys.modules and "django.conf" in sys.modules:
        from django.conf import settings

        if settings.configured:
            raise RuntimeError("throwaway() must run before Django settings are loaded")
    previous = {signum: signal.signal(signum, _raise_exit) for signum in (signal.SIGTERM, signal.SIGINT)}
    data_dir = Path(tempfile.mkdtemp(prefix=f"pam-bench-{prefix}-"))
    saved = {
        name: os.environ.get(name) for name in ("PAM_DATA_DIR", "PAM_DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    database = None
    try:
        os.environ["PAM_DATA_DIR"] = str(data_dir)
        os.environ["DJANGO_SETTINGS_MODULE"] = "pam.settings"
        url = os.environ.get("PAM_DATABASE_URL", "").strip()
        if url.startswith(("postgres://", "postgresql://")):
            database = _create_database(url)
            os.environ["PAM_DATABASE_URL"] = database["url"]
            label = f"PostgreSQL ({_server(url)}, database {database['name']})"
        elif url:
            raise SystemExit("PAM_DATABASE_URL must be unset (embedded SQLite) or a postgres:// URL")
        else:
            label = "SQLite (embedded default)"
        if os.environ.get("PAM_REDIS_URL"):
            label += f", Redis {_server(os.environ['PAM_REDIS_URL'])}"
        yield {"data_dir": data_dir, "database": label}
    finally:
        _close_django_connections()
        if database:
            _drop_database(database)
        shutil.rmtree(data_dir, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _server(url):
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}".rstrip(":")


def _create_database(url):
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"pam_bench_{secrets.token_hex(4)}"
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    return {"name": name, "admin": admin, "url": urlunsplit(parts._replace(path=f"/{name}"))}


def _drop_database(database):
    import psycopg

    with psycopg.connect(database["admin"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database["name"]}" WITH (FORCE)')


def _close_django_connections():
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


def setup_django():
    """Load PAM's settings from the throwaway environment and migrate the empty database."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def free_port():
    """A TCP port that was free on the loopback address a moment ago."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class Daphne:
    """``daphne pam.asgi:application`` on a free loopback port, with the benchmark's environment
    (or another checkout's, with its own: see ``Baseline``)."""

    def __init__(self, log_dir, startup_timeout=60, root=ROOT, env=None):
        self.root, self.env = root, env
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = Path(log_dir) / "daphne.log"
        self.startup_timeout = startup_timeout
        self.process = None

    def __enter__(self):
        daphne = VENV_BIN / "daphne"
        command = [
            str(daphne) if daphne.exists() else "daphne",
            "-b",
            LOOPBACK,
            "-p",
            str(self.port),
            "pam.asgi:application",
        ]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            command,
            cwd=self.root,
            env=self.env or os.environ.copy(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchFailure(f"daphne exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchFailure(f"daphne did not answer within {self.startup_timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return False

    def request(self, method, path, *, headers=None, body=None, timeout=120):
        """Send one request; return ``(status, body bytes)``."""
        request = urllib.request.Request(
            f"{self.base_url}{path}", data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


# --- timing and tables -------------------------------------------------------------------


def timed(fn):
    """Call ``fn()``; return ``(seconds, result)``."""
    check_stop()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median(times):
    return statistics.median(times)


def p95(times):
    """The nearest-rank 95th percentile."""
    ordered = sorted(times)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def ms(seconds):
    return f"{seconds * 1000:,.1f}"


def size(nbytes):
    return f"{nbytes / 1024:,.0f} KiB" if nbytes >= 10 * 1024 else f"{nbytes:,} B"


def ratio(value, base):
    return f"{value / base:,.1f}x" if base else "-"


def table(headers, rows, title=None):
    """Print a plain-text table with right-aligned cells (the first column left-aligned)."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)
    ]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    if title:
        print(f"\n{title}")
    print(line([str(h) for h in headers]))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    sys.stdout.flush()


def _delegate(name):
    def method(wrapper, *args, **kwargs):
        return getattr(wrapper.cursor, name)(*args, **kwargs)

    return method


class Breakdown:
    """Split calls' time into SQL (driver execute + fetch), named regions, garbage collection
    and everything else, by instrumenting rather than re-enacting the code under test.

    ``regions`` are ``(owner, attribute, category)``: a method or module function to time, such
    as ``(orjson, "dumps", "render")``. Django's cursor wrapper gives the SQL time and
    ``gc.callbacks`` the collector's pauses. Only the outermost region counts (SQL inside a
    region belongs to it), and GC pauses count as GC wherever they fall.
    """

    def __init__(self, regions=()):
        self.regions = list(regions)
        self.categories = ["sql", *dict.fromkeys(category for _, _, category in self.regions)]
        self.gc_total = 0.0
        self._gc_started = None
        self._depth = 0
        self.totals = {}

    def _on_gc(self, phase, info):
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
        elif self._gc_started is not None:
            self.gc_total += now - self._gc_started
            self._gc_started = None

    def _wrap(self, category, method):
        def wrapper(*args, **kwargs):
            self._depth += 1
            gc_before, started = self.gc_total, time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if not self._depth:
                    spent = time.perf_counter() - started - (self.gc_total - gc_before)
                    self.totals[category] = self.totals.get(category, 0.0) + spent

        return wrapper

    def __enter__(self):
        import gc

        from django.db.backends.utils import CursorWrapper

        self._saved = [
            (CursorWrapper, name, CursorWrapper.__dict__[name], "sql") for name in ("execute", "executemany")
        ]
        # fetch* reach the driver's cursor through CursorWrapper.__getattr__
        self._saved += [(CursorWrapper, name, None, "sql") for name in ("fetchone", "fetchmany", "fetchall")]
        self._saved += [
            (owner, name, owner.__dict__[name], category) for owner, name, category in self.regions
        ]
        for owner, name, original, category in self._saved:
            setattr(owner, name, self._wrap(category, original or _delegate(name)))
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc):
        import gc

        gc.callbacks.remove(self._on_gc)
        for owner, name, original, _ in self._saved:
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        return False

    def measure(self, fn, runs):
        """Call ``fn`` ``runs`` times; return per-call lists (seconds) of total, each category,
        ``gc`` and ``other``."""
        parts = {key: [] for key in ("total", *self.categories, "gc", "other")}
        for _ in range(runs):
            self.totals = {}
            gc_before = self.gc_total
            elapsed, _ = timed(fn)
            gc_time = self.gc_total - gc_before
            parts["total"].append(elapsed)
            parts["gc"].append(gc_time)
            for category in self.categories:
                parts[category].append(self.totals.get(category, 0.0))
            parts["other"].append(elapsed - gc_time - sum(self.totals.values()))
        return parts


def _busy_seconds():
    """CPU seconds the whole machine has spent busy since boot (Linux), or None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds():
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # daphne and helpers, once reaped
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class LoadMonitor:
    """How much CPU other processes took while the benchmark ran: its figures are only as
    good as the machine was quiet, so each run reports it.

    A PostgreSQL server on this machine works for the benchmark but is not its child, so its
    share is counted as "other" and a higher share is still called quiet.
    """

    def __init__(self):
        self.start_busy, self.start_own, self.started = _busy_seconds(), _own_seconds(), time.monotonic()
        url = os.environ.get("PAM_DATABASE_URL", "")
        self.local_server = bool(url) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")

    def report(self):
        busy = _busy_seconds()
        if busy is None or self.start_busy is None:
            return
        wall = time.monotonic() - self.started
        others = max(0.0, (busy - self.start_busy) - (_own_seconds() - self.start_own))
        share = others / (wall * (os.cpu_count() or 1))
        limit = 0.20 if self.local_server else 0.05
        note = "quiet enough" if share < limit else "BUSY: figures from this run are noisy"
        server = ", the local PostgreSQL server's work included" if self.local_server else ""
        print(
            f"\nOther processes used {others:.1f} CPU-s during the {wall:.0f} s run "
            f"({share:.0%} of the machine{server}): {note}"
        )


def code_revision():
    """The commit measured, marked when tracked files differ from it (read-only git calls)."""
    git = ["git", "-C", str(ROOT), "--no-optional-locks"]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown revision"
    if head.returncode:
        return "unknown revision"
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def machine_line(database):
    return (
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {database}, "
        f"code {code_revision()}"
    )


class Baseline:
    """An earlier commit of PAM, checked out beside this one, to measure against in the same run.

    ``git worktree add`` puts the commit in a temporary directory; it gets its own data
    directory on the embedded default (SQLite, in-memory channel layer: PostgreSQL and Redis
    settings are not passed on), is migrated with its own migrations, and is given an admin and
    an API key through CONTRACT.md's bootstrap commands. Use as a context manager; it yields the
    ``Daphne`` of that checkout and the API key. The same virtualenv serves both.
    """

    def __init__(self, revision):
        self.revision = revision
        self.directory = None
        self.server = None

    def __enter__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="pam-bench-baseline-"))
        tree = self.directory / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), self.revision],
                       check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAM_")}
        env.update(PAM_DATA_DIR=str(self.directory / "data"), DJANGO_SETTINGS_MODULE="pam.settings")
        try:
            python = str(VENV_BIN / "python")
            subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=tree, env=env, check=True)
            password = secrets.token_urlsafe(16)
            subprocess.run(
                [python, "manage.py", "createsuperuser", "--noinput"], cwd=tree, check=True, stdout=subprocess.DEVNULL,
                env={**env, "DJANGO_SUPERUSER_USERNAME": "bench", "DJANGO_SUPERUSER_EMAIL": "bench@example.com",
                     "DJANGO_SUPERUSER_PASSWORD": password},
            )
            created = subprocess.run([python, "manage.py", "create_api_key", "bench", "--user", "bench"], cwd=tree,
                                     env=env, check=True, capture_output=True, text=True)
            token = created.stdout.strip().splitlines()[-1]
            self.server = Daphne(self.directory, root=tree, env=env).__enter__()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.server, token

    def __exit__(self, *exc):
        if self.server is not None:
            self.server.__exit__(None, None, None)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(self.directory / "tree")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.directory, ignore_errors=True)
        return False
