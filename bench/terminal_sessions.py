"""Benchmark: terminal sessions through the web path against direct OpenSSH, in the same run.

Run on demand, not part of the test suite:

    .venv/bin/python bench/terminal_sessions.py [--idle-keys 300] [--sessions 200] [--busy-seconds 20]
                                       [--gib 1] [--idle-sessions 200] [--baseline REV]

A private OpenSSH sshd on 127.0.0.1 (tests/targets.py, account ``pamtest``) is the target of
both paths:

- web: POST /api/sessions on daphne, then the terminal websocket (personal token, Origin),
  through the consumer, the live session and the node's OpenSSH client to sshd;
- direct: the OpenSSH client, ``ssh -tt`` with a key, to the same sshd.

Measured (see README.md for the design and the figures):

1. keystroke echo round trip, one session idle: on the target ``stty raw -echo; cat`` returns
   each byte as it comes, so the time from sending a byte to seeing it again is the round trip
   through the whole path; p50 and p99 for web and direct, and the difference;
2. the same with N sessions each typing 5 keys a second (web: N websockets on one daphne;
   direct: N ssh processes);
3. output throughput of ``head -c`` of printable bytes (1 GiB) through each path, the web
   client acknowledging what it received as a browser does;
4. the web node's memory per idle session: daphne's RSS plus the PSS of the ssh clients it runs,
   before and after opening N idle sessions;
5. the web node's CPU (daphne, plus the ssh clients it runs) per echoed key and per MiB;
6. with ``--baseline REV``: the busy phase of 2. again against daphne running the commit REV
   (harness.Baseline), for its CPU per echoed key and p99, and the ratios against this code.

Exits 1 when a check fails (a lost or wrong echo, a short transfer, a failed session). The
target and the two clients are in terminal_clients.py.
"""

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time

from harness import (
    Baseline,
    BenchFailure,
    Daphne,
    LoadMonitor,
    check_stop,
    machine_line,
    setup_django,
    table,
    throwaway,
)
from processes import cpu_seconds, node_cpu_seconds, node_memory_kib, rss_kib
from terminal_clients import ECHO_COMMAND, DirectTerminal, Target, WebTerminal, close_all

LINE = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-0123456789abcdefghijklmnopq"
KEYS = b"abcdefghijklmnopqrstuvwxyz"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def summary(values):
    return statistics.median(values), percentile(values, 99)


def ms(seconds):
    return f"{seconds * 1000:.2f}"


# --- measurements -------------------------------------------------------------------------------


async def idle_echo(terminal, keys):
    samples = []
    for i in range(keys):
        check_stop()
        samples.append(await terminal.echo(KEYS[i % len(KEYS) : i % len(KEYS) + 1]))
        await asyncio.sleep(0.02)
    return samples


async def busy_echo(terminals, seconds, rate=5.0):
    """Every terminal types ``rate`` keys a second for ``seconds``; return all round trips."""
    samples, lost = [], 0

    async def typist(terminal, index):
        nonlocal lost
        random.seed(index)
        await asyncio.sleep(random.random() / rate)  # spread the typists over the interval
        next_at = time.monotonic()
        for i in range(int(seconds * rate)):
            check_stop()
            key = KEYS[(i + index) % len(KEYS) : (i + index) % len(KEYS) + 1]
            try:
                samples.append(await terminal.echo(key))
            except BenchFailure:
                lost += 1
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    await asyncio.gather(*(typist(t, i) for i, t in enumerate(terminals)))
    return samples, lost


async def idle_echoes(web, keys, rounds=3):
    """Idle echo through ``web`` (not yet open) and direct OpenSSH, alternating, so both paths
    see the same moments of the VM: ``(web p50, p99), (direct p50, p99)``."""
    await web.open(ECHO_COMMAND)
    direct = DirectTerminal(web.target)
    await direct.open()
    await idle_echo(web, 20)
    await idle_echo(direct, 20)  # warm-up
    web_samples, direct_samples = [], []
    for _ in range(rounds):
        web_samples += await idle_echo(web, keys // rounds)
        direct_samples += await idle_echo(direct, keys // rounds)
    await close_all([web])
    await direct.close()
    return summary(web_samples), summary(direct_samples)


async def open_many(factory, count, command, batch=10):
    terminals = []
    for start in range(0, count, batch):
        group = [factory() for _ in range(min(batch, count - start))]
        await asyncio.gather(*(t.open(command) for t in group))
        terminals += group
    return terminals


async def web_throughput(server, token, target, nbytes):
    terminal = WebTerminal(server, token, target)
    await terminal.open('stty raw -echo; echo BENCH-"READY"\n')
    marker = b"BENCH-DONE"
    started = time.perf_counter()
    await terminal.ws.send(f'yes {LINE} | head -c {nbytes}; echo BENCH-"DONE"\n'.encode())
    got, tail = 0, b""
    while marker not in tail:
        deadline = time.monotonic() + 30
        while not terminal.buffer and time.monotonic() < deadline:  # an event (a mark) wakes it too
            await terminal._wait(deadline)
        if not terminal.buffer:
            raise BenchFailure(f"web transfer stalled after {got} bytes")
        got += len(terminal.buffer)
        tail = (tail + bytes(terminal.buffer[-4096:]))[-4096:]
        del terminal.buffer[:]
    elapsed = time.perf_counter() - started
    await close_all([terminal])
    if got < nbytes:
        raise BenchFailure(f"web transfer short: {got} of {nbytes}")
    return elapsed


async def direct_throughput(target, nbytes):
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *target.ssh_command(f"stty raw -echo; yes {LINE} | head -c {nbytes}"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    got = 0
    while data := await process.stdout.read(1 << 20):
        got += len(data)
    await process.wait()
    elapsed = time.perf_counter() - started
    if got < nbytes:
        raise BenchFailure(f"direct transfer short: {got} of {nbytes}")
    return elapsed


# --- the run --------------------------------------------------------------------------------------


async def run(args, server, token, target):
    results = {}

    # Memory first, on a fresh server: one session opened and closed so that the code paths
    # are loaded, then the growth with N idle sessions attached.
    warm = WebTerminal(server, token, target)
    await warm.open(ECHO_COMMAND)
    await close_all([warm])
    await asyncio.sleep(2)
    before = node_memory_kib(server.process.pid)
    idle = await open_many(lambda: WebTerminal(server, token, target), args.idle_sessions, ECHO_COMMAND)
    await asyncio.sleep(5)
    after = node_memory_kib(server.process.pid)
    results["clients_memory"] = (after - rss_kib(server.process.pid)) / args.idle_sessions / 1024
    await close_all(idle)
    results["memory"] = ((after - before) / args.idle_sessions / 1024, before / 1024, after / 1024)

    results["idle"] = await idle_echoes(WebTerminal(server, token, target), args.idle_keys)

    print(f"opening {args.sessions} web sessions and {args.sessions} OpenSSH clients ...", flush=True)
    webs = await open_many(lambda: WebTerminal(server, token, target), args.sessions, ECHO_COMMAND)
    daphne_cpu, node_cpu = cpu_seconds(server.process.pid), node_cpu_seconds(server.process.pid)
    web_busy, web_lost = await busy_echo(webs, args.busy_seconds)
    daphne_cpu = cpu_seconds(server.process.pid) - daphne_cpu
    node_cpu = node_cpu_seconds(server.process.pid) - node_cpu
    await close_all(webs)
    directs = await open_many(lambda: DirectTerminal(target), args.sessions, None)
    clients_cpu = sum(t.cpu() for t in directs)
    direct_busy, direct_lost = await busy_echo(directs, args.busy_seconds)
    clients_cpu = sum(t.cpu() for t in directs) - clients_cpu
    for t in directs:
        await t.close()
    if web_lost or direct_lost:
        raise BenchFailure(f"echoes lost: web {web_lost}, direct {direct_lost}")
    results["busy"] = (summary(web_busy), summary(direct_busy), len(web_busy), len(direct_busy))
    echoes = max(1, len(web_busy))
    results["cpu_per_echo"] = (daphne_cpu / echoes, node_cpu / echoes, clients_cpu / max(1, len(direct_busy)))
    if args.baseline:
        results["baseline"] = await on_baseline(args, target)

    nbytes = int(args.gib * (1 << 30))
    daphne_cpu, node_cpu = cpu_seconds(server.process.pid), node_cpu_seconds(server.process.pid)
    web_seconds = await web_throughput(server, token, target, nbytes)
    mib = nbytes / 2**20
    results["cpu_per_mib"] = (
        (cpu_seconds(server.process.pid) - daphne_cpu) / mib, (node_cpu_seconds(server.process.pid) - node_cpu) / mib
    )
    direct_seconds = await direct_throughput(target, nbytes)
    results["throughput"] = (nbytes / web_seconds / 2**20, nbytes / direct_seconds / 2**20)

    results["rss_after_transfer"] = rss_kib(server.process.pid) / 1024
    return results


async def on_baseline(args, target):
    """The idle echo and the busy phase against the baseline commit's daphne: the idle echo's
    added p50, and the CPU per echoed key and p99 under load."""
    print(f"idle echo and busy phase again on {args.baseline} ...", flush=True)
    with Baseline(args.baseline) as (server, token):
        idle = await idle_echoes(WebTerminal(server, token, target), args.idle_keys)
        terminals = await open_many(lambda: WebTerminal(server, token, target), args.sessions, ECHO_COMMAND)
        node_cpu = node_cpu_seconds(server.process.pid)
        samples, lost = await busy_echo(terminals, args.busy_seconds)
        node_cpu = node_cpu_seconds(server.process.pid) - node_cpu
        for terminal in terminals:  # the checkout's daphne is stopped next, and its sessions with it
            await terminal.close()
    if lost:
        raise BenchFailure(f"echoes lost on {args.baseline}: {lost}")
    return node_cpu / max(1, len(samples)), summary(samples)[1], idle


def report(args, results):
    (web_p50, web_p99), (direct_p50, direct_p99) = results["idle"]
    rows = [
        ["idle, web path", ms(web_p50), ms(web_p99)],
        ["idle, direct OpenSSH", ms(direct_p50), ms(direct_p99)],
        ["idle, added by the web path", ms(web_p50 - direct_p50), ms(web_p99 - direct_p99)],
    ]
    (bw50, bw99), (bd50, bd99), nw, nd = results["busy"]
    rows += [
        [f"{args.sessions} busy sessions, web path ({nw} echoes)", ms(bw50), ms(bw99)],
        [f"{args.sessions} busy sessions, direct OpenSSH ({nd} echoes)", ms(bd50), ms(bd99)],
    ]
    table(["keystroke echo round trip", "p50 ms", "p99 ms"], rows, "Keystroke echo")
    web_rate, direct_rate = results["throughput"]
    table(
        ["output throughput", "MiB/s", "/ direct"],
        [[f"{args.gib:g} GiB, web path", f"{web_rate:.1f}", f"{web_rate / direct_rate:.2f}x"],
         [f"{args.gib:g} GiB, direct OpenSSH", f"{direct_rate:.1f}", "1.00x"]],
        "Throughput",
    )
    daphne_echo, node_echo, client_echo = results["cpu_per_echo"]
    daphne_mib, node_mib = results["cpu_per_mib"]
    table(
        ["CPU", "daphne", "web node (daphne + its ssh clients)", "direct ssh clients"],
        [[f"per echoed key, {args.sessions} busy sessions", f"{daphne_echo * 1e6:.0f} us", f"{node_echo * 1e6:.0f} us",
          f"{client_echo * 1e6:.0f} us"],
         [f"per MiB of output ({args.gib:g} GiB)", f"{daphne_mib * 1e3:.1f} ms", f"{node_mib * 1e3:.1f} ms", "-"]],
        "CPU",
    )
    if "baseline" in results:
        base_echo, base_p99, ((base_web_p50, _), (base_direct_p50, _)) = results["baseline"]
        table(
            ["figure", "this code", args.baseline, "ratio"],
            [[f"web node CPU per echoed key, {args.sessions} busy sessions", f"{node_echo * 1e6:.0f} us",
              f"{base_echo * 1e6:.0f} us", f"{node_echo / base_echo:.2f}x"],
             [f"daphne CPU per echoed key, {args.sessions} busy sessions", f"{daphne_echo * 1e6:.0f} us", "-",
              f"{daphne_echo / base_echo:.2f}x"],
             [f"web p99 ms, {args.sessions} busy sessions", ms(bw99), ms(base_p99), f"{bw99 / base_p99:.2f}x"],
             ["idle echo added by the web path, p50 ms", ms(web_p50 - direct_p50), ms(base_web_p50 - base_direct_p50),
              f"{(web_p50 - direct_p50) / (base_web_p50 - base_direct_p50):.2f}x"]],
            "Against the baseline commit, same run (its daphne holds its SSH sessions itself)",
        )
    per, before, after = results["memory"]
    table(
        ["web node memory (daphne RSS + its ssh clients' PSS)", "MiB"],
        [["before", f"{before:.1f}"], [f"with {args.idle_sessions} idle sessions", f"{after:.1f}"],
         ["per idle session", f"{per:.2f}"], ["of which the ssh client", f"{results['clients_memory']:.2f}"],
         ["daphne RSS after the throughput runs", f"{results['rss_after_transfer']:.1f}"]],
        "Memory",
    )
    targets = [
        ("added echo p50 <= 1 ms idle", web_p50 - direct_p50 <= 0.001),
        ("added echo p99 <= 5 ms idle", web_p99 - direct_p99 <= 0.005),
        (f"echo p99 <= 25 ms with {args.sessions} busy sessions", bw99 <= 0.025),
        ("web throughput >= 0.7x direct OpenSSH", web_rate >= 0.7 * direct_rate),
        ("memory <= 2 MiB per idle session", per <= 2),
    ]
    if "baseline" in results:
        targets.append((f"daphne CPU per echoed key <= 0.5x {args.baseline}'s", daphne_echo <= 0.5 * results["baseline"][0]))
    table(["target", "result"], [[name, "met" if ok else "MISSED"] for name, ok in targets], "Targets")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle-keys", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--busy-seconds", type=float, default=20)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--idle-sessions", type=int, default=200)
    parser.add_argument("--baseline", metavar="REV", help="also run the busy phase on this commit's daphne")
    args = parser.parse_args()
    with throwaway("sessions") as env:
        setup_django()
        from accounts.models import User
        from accounts.services.tokens import issue_user_token

        user = User.objects.create_user("bench", "bench@example.com", secrets.token_urlsafe(16), role_id="poweruser")
        _, token = issue_user_token(user=user, name="bench", actor=user)
        print(machine_line(env["database"]), flush=True)
        monitor = LoadMonitor()
        with tempfile.TemporaryDirectory() as workdir, Target(workdir) as target, Daphne(env["data_dir"]) as server:
            results = asyncio.run(run(args, server, token, target))
        report(args, results)
        monitor.report()


if __name__ == "__main__":
    try:
        main()
    except BenchFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
