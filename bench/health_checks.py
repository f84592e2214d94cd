"""Benchmark: POST /api/connections/health-check for 2,000 connections in one request.

Run on demand, not part of the test suite:

    .venv/bin/python bench/health_checks.py [--listeners 1000] [--closed 1000] [--runs 5]

A helper process (listeners.py) listens on 1,000 ephemeral loopback ports; 1,000 more loopback
ports are closed. A throwaway installation (see harness.py) holds one poweruser's 2,000
connections to those 2,000 endpoints, all on 127.0.0.1. The benchmark times one health-check
request for all of them through daphne over HTTP and through Django's test Client, and the beat
task's function ``check_all_connections()``, and checks every answer: each listener reachable,
each closed port unreachable. Baseline from the same run: a plain asyncio loop, no PAM code,
connecting to the same endpoints with the same concurrency limit and timeout.

Exits 1 when a check fails (a wrong or missing answer, a non-200 answer); a missed time target
is reported, not fatal.
"""

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from harness import (
    LOOPBACK,
    BenchFailure,
    Breakdown,
    Daphne,
    LoadMonitor,
    machine_line,
    median,
    ratio,
    setup_django,
    table,
    throwaway,
    timed,
)

HERE = Path(__file__).resolve().parent


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=1000, help="listening ports (default %(default)s)")
    parser.add_argument("--closed", type=int, default=1000, help="closed ports (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each figure (default %(default)s)")
    parser.add_argument("--warmups", type=int, default=1, help="untimed runs first (default %(default)s)")
    parser.add_argument("--task-runs", type=int, default=3, help="timed runs of check_all_connections()")
    parser.add_argument(
        "--target-s", type=float, default=3.0, help="target for one request (default %(default)s)"
    )
    parser.add_argument(
        "--breakdown-runs", type=int, default=2, help="instrumented test Client requests (0: none)"
    )
    parser.add_argument("--no-http", action="store_true", help="skip the daphne (full-stack HTTP) figures")
    args = parser.parse_args(argv)
    if not 1 <= args.listeners <= 10000 or not 1 <= args.closed <= 10000:
        parser.error("--listeners and --closed must be 1-10000")
    if not 1 <= args.runs <= 100 or not 0 <= args.warmups <= 10 or not 0 <= args.task_runs <= 100:
        parser.error("--runs must be 1-100, --warmups 0-10, --task-runs 0-100")
    if not 0 <= args.breakdown_runs <= 20:
        parser.error("--breakdown-runs must be 0-20")
    return args


# --- the endpoints -----------------------------------------------------------------------


@contextlib.contextmanager
def listening_ports(count):
    """Run listeners.py; yield its ports. Closing its stdin stops it (it also stops by itself)."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "listeners.py"), "--count", str(count), "--max-seconds", "900"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        line = process.stdout.readline()
        if not line:
            raise BenchFailure(f"listeners.py exited with {process.wait(timeout=10)} before listening")
        yield json.loads(line)
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()


def closed_ports(count, taken):
    """``count`` loopback ports nothing listens on, below the kernel's ephemeral range.

    Each is bound and closed again to prove it free. They stay out of the ephemeral range
    because a connect() whose kernel-chosen source port equals its closed destination port
    connects to itself (TCP simultaneous open) and would read as reachable.
    """
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    candidates = list(range(max(1024, low - 20000), low))
    random.Random(7).shuffle(candidates)
    ports = []
    for port in candidates:
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise BenchFailure(f"found only {len(ports)} free ports below {low}")


def create_connections(listening, closed):
    """A poweruser and one connection per endpoint; return ``(token, {id: expected reachable})``."""
    from accounts.models import User
    from accounts.services.tokens import issue_user_token
    from connections.models import Connection

    user = User.objects.create_user(
        "bench-power", "bench-power@example.com", secrets.token_urlsafe(16), role_id="poweruser"
    )
    endpoints = [(port, True) for port in listening] + [(port, False) for port in closed]
    random.Random(11).shuffle(endpoints)
    rows = [
        Connection(
            owner=user, name=f"target-{i:05d}", protocol="ssh", host=LOOPBACK, port=port, username="root"
        )
        for i, (port, _) in enumerate(endpoints)
    ]
    Connection.objects.bulk_create(rows, batch_size=500)
    expected = {row.pk: reachable for row, (_, reachable) in zip(rows, endpoints)}
    token = issue_user_token(user=user, name="bench", actor=user)[1]
    return token, expected


# --- what is timed -----------------------------------------------------------------------


async def _baseline(endpoints, concurrency, timeout):
    limit = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()

    async def connect(port):
        async with limit:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, (LOOPBACK, port)), timeout)
                return True
            except (OSError, TimeoutError):
                return False
            finally:
                sock.close()

    return await asyncio.gather(*(connect(port) for port in endpoints))


def baseline(ports, concurrency, timeout):
    """Plain asyncio, no PAM code: connect to each port, at most ``concurrency`` at once."""
    return asyncio.run(_baseline(ports, concurrency, timeout))


def verify(results, expected, where):
    """Each expected id answered once, in order, reachable exactly when it listens."""
    ids = list(expected)
    if [r["id"] for r in results] != ids:
        raise BenchFailure(f"{where}: {len(results)} results, not one per check in request order")
    wrong = [r for r in results if r["reachable"] is not expected[r["id"]]]
    if wrong:
        sample = ", ".join(f"{r['id']} reachable={r['reachable']} ({r['error']})" for r in wrong[:5])
        raise BenchFailure(f"{where}: {len(wrong)} wrong answers, e.g. {sample}")


def verify_stored(expected, where):
    from connections.models import Connection

    stored = dict(Connection.objects.values_list("pk", "health_status"))
    wrong = [
        pk
        for pk, reachable in expected.items()
        if stored.get(pk) != ("reachable" if reachable else "unreachable")
    ]
    if wrong:
        raise BenchFailure(f"{where}: {len(wrong)} connections stored a wrong status, e.g. {wrong[:3]}")


def reset_stored():
    from connections.models import Connection

    Connection.objects.update(health_status="unknown", health_latency_ms=None, health_checked_at=None)


def run(args, env):
    from django.conf import settings
    from django.test import Client

    from connections.services.health import check_all_connections

    concurrency, timeout = settings.HEALTH_CHECK_CONCURRENCY, settings.HEALTH_CHECK_TIMEOUT
    print(f"health_checks: {machine_line(env['database'])}")
    print(
        f"{args.listeners} listening + {args.closed} closed loopback ports, concurrency {concurrency}, "
        f"timeout {timeout:g} s, {args.runs} timed runs after {args.warmups} warm-up(s), interleaved"
    )
    figures = {"baseline": [], "http": [], "client": [], "task": []}
    with contextlib.ExitStack() as stack:
        listening = stack.enter_context(listening_ports(args.listeners))
        closed = closed_ports(args.closed, set(listening))
        token, expected = create_connections(listening, closed)
        ports = listening + closed
        reachable_ports = set(listening)
        body = json.dumps({"checks": [{"id": pk} for pk in expected]}).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        daphne = None if args.no_http else stack.enter_context(Daphne(env["data_dir"]))
        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")

        def run_baseline():
            elapsed, answers = timed(lambda: baseline(ports, concurrency, timeout))
            wrong = [p for p, ok in zip(ports, answers) if ok is not (p in reachable_ports)]
            if wrong:
                raise BenchFailure(f"baseline: {len(wrong)} wrong answers, e.g. ports {wrong[:5]}")
            return elapsed

        def run_http():
            reset_stored()
            elapsed, (status, content) = timed(
                lambda: daphne.request("POST", "/api/connections/health-check", headers=headers, body=body)
            )
            if status != 200:
                raise BenchFailure(f"HTTP health-check answered {status}: {content[:300]!r}")
            verify(json.loads(content)["results"], expected, "HTTP health-check")
            verify_stored(expected, "HTTP health-check")
            return elapsed

        def post_client():
            return client.post("/api/connections/health-check", body, content_type="application/json")

        def run_client():
            reset_stored()
            elapsed, response = timed(post_client)
            if response.status_code != 200:
                raise BenchFailure(
                    f"health-check answered {response.status_code}: {response.content[:300]!r}"
                )
            verify(response.json()["results"], expected, "test Client health-check")
            verify_stored(expected, "test Client health-check")
            return elapsed

        def run_task():
            reset_stored()
            elapsed, checked = timed(check_all_connections)
            if checked != len(expected):
                raise BenchFailure(f"check_all_connections() checked {checked}, expected {len(expected)}")
            verify_stored(expected, "check_all_connections()")
            return elapsed

        def record(key, elapsed, keep):
            if keep:
                figures[key].append(elapsed)

        for round_ in range(args.warmups + max(args.runs, args.task_runs)):
            keep = round_ >= args.warmups
            if not keep or round_ - args.warmups < args.runs:
                record("baseline", run_baseline(), keep)
                if daphne:
                    record("http", run_http(), keep)
                record("client", run_client(), keep)
            if not keep or round_ - args.warmups < args.task_runs:
                record("task", run_task(), keep)
            print(f"  round {round_ + 1}{'' if keep else ' (warm-up)'}: every answer right", flush=True)

        parts = {}
        with Breakdown([(asyncio, "run", "probing")]) as breakdown:
            for _ in range(args.breakdown_runs):
                reset_stored()
                for key, values in breakdown.measure(post_client, 1).items():
                    parts.setdefault(key, []).extend(values)
    report(args, figures, len(expected), parts)


def report(args, figures, count, parts):
    base = median(figures["baseline"])
    labels = {
        "baseline": "baseline: plain asyncio connects",
        "http": "POST /api/connections/health-check, HTTP (daphne)",
        "client": "POST /api/connections/health-check, test Client",
        "task": "check_all_connections() (beat task)",
    }
    rows = [
        [
            labels[key],
            len(times),
            f"{median(times):.3f}",
            f"{max(times):.3f}",
            f"{min(times):.3f}",
            ratio(median(times), base),
        ]
        for key, times in figures.items()
        if times
    ]
    table(
        ["what", "runs", "median s", "worst s", "best s", "/baseline"],
        rows,
        title=f"{count:,} TCP checks at once",
    )
    if parts:
        table(
            ["total s", "probing s", "SQL s", "GC s", "other Python s"],
            [[f"{median(parts[k]):.3f}" for k in ("total", "probing", "sql", "gc", "other")]],
            title=(
                "Where one test Client request spends its time "
                f"(instrumented, median of {len(parts['total'])})"
            ),
        )
        print(
            "  probing = inside asyncio.run (resolve, deny list, connects); SQL = driver execute + fetch;\n"
            "  other = auth, DRF validation of the body, ORM query and update building, rendering"
        )
    print(f"\nTarget: {count:,} checks in one request <= {args.target_s:g} s")
    for key in ("http", "client"):
        if figures[key]:
            worst = max(figures[key])
            verdict = (
                "met"
                if worst <= args.target_s
                else ("MISSED (worst run)" if median(figures[key]) <= args.target_s else "MISSED")
            )
            print(f"  {labels[key]:52} median {median(figures[key]):.3f} s, worst {worst:.3f} s: {verdict}")


def main(argv=None):
    args = parse_args(argv)
    try:
        with throwaway("health") as env:
            monitor = LoadMonitor()
            try:
                setup_django()
                run(args, env)
            finally:
                monitor.report()
    except BenchFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
