"""TCP reachability of targets, many at once: the health-check endpoint and the beat task.

Checks run concurrently on one event loop (bounded by HEALTH_CHECK_CONCURRENCY so a large
batch cannot exhaust file descriptors), each with its own deadline, and go through the target
policy like any other connection PAM makes.
"""

import asyncio
import os
import socket
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.permissions import can
from accounts.roles import Perm
from connections.choices import HealthStatus
from connections.models import Connection
from pam.exceptions import Forbidden, InvalidInput
from targets.addresses import TargetRefused, aresolve

CHECK_BATCH = 2000  # connections checked together by the periodic task
RECORD_BATCH = 500  # results written per statement
ENDPOINT_FIELDS = ("pk", "protocol", "host", "port", "url")


@dataclass(frozen=True)
class Target:
    key: object
    host: str
    port: int


@dataclass
class Result:
    key: object
    reachable: bool
    latency_ms: int | None = None
    error: str = ""


async def _connect(address, port, deadline):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        remaining = deadline - time.monotonic()
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (address, port)), max(remaining, 0))
    finally:
        sock.close()


async def probe(target, timeout):
    """Open and close one TCP connection to ``target``; report how long it took."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        addresses = await asyncio.wait_for(aresolve(target.host, target.port), timeout)
    except TargetRefused as exc:
        return Result(target.key, False, error=exc.message)
    except (OSError, UnicodeError, asyncio.TimeoutError):
        return Result(target.key, False, error="The host name does not resolve.")
    error = "Unreachable."
    for address in addresses:
        try:
            await _connect(address, target.port, deadline)
        except asyncio.TimeoutError:
            error = "Timed out."
            break
        except OSError as exc:
            error = os.strerror(exc.errno) if exc.errno else "Unreachable."
            continue
        return Result(target.key, True, round((time.monotonic() - started) * 1000))
    return Result(target.key, False, error=error)


async def check_many(targets, timeout=None, concurrency=None):
    timeout = timeout or settings.HEALTH_CHECK_TIMEOUT
    limit = asyncio.Semaphore(concurrency or settings.HEALTH_CHECK_CONCURRENCY)

    async def bounded(target):
        async with limit:
            return await probe(target, timeout)

    return await asyncio.gather(*(bounded(target) for target in targets))


def run_checks(targets, **options):
    """Check ``targets`` concurrently from synchronous code; results in the same order."""
    return asyncio.run(check_many(targets, **options)) if targets else []


# One statement per batch: bulk_update() builds a CASE expression per row and field in Python,
# which cost seconds for a few thousand results (bench/README.md). SQLite 3.33+ and PostgreSQL
# both take UPDATE … FROM a VALUES list named in a WITH clause.
RECORD_SQL = """
WITH results(id, status, latency, error) AS (VALUES {rows})
UPDATE {table} SET health_status = results.status,
    health_latency_ms = CAST(results.latency AS INTEGER),
    health_error = results.error,
    health_checked_at = %s
FROM results WHERE {table}.id = results.id
"""


def record_results(results):
    """Store the outcome of checks whose key is a connection id."""
    now = timezone.now()
    table = connection.ops.quote_name(Connection._meta.db_table)
    results = list(results)
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(results), RECORD_BATCH):
            batch = results[start : start + RECORD_BATCH]
            params = []
            for r in batch:
                status = HealthStatus.REACHABLE if r.reachable else HealthStatus.UNREACHABLE
                params += [r.key, status, r.latency_ms, r.error[:200]]
            rows = ", ".join(["(%s, %s, %s, %s)"] * len(batch))
            cursor.execute(RECORD_SQL.format(rows=rows, table=table), [*params, now])


def check_connections(connections):
    """Check the endpoints of ``connections`` (an iterable of Connection) and store the results."""
    targets = [Target(c.pk, *c.endpoint()) for c in connections]
    targets = [t for t in targets if t.host]
    results = run_checks(targets)
    record_results(results)
    return results


def check_all_connections():
    """Check every connection with an endpoint, in batches; return how many were checked."""
    checked = 0
    queryset = Connection.objects.filter(~Q(host="") | ~Q(url="")).only(*ENDPOINT_FIELDS)
    pks = list(queryset.values_list("pk", flat=True))
    for start in range(0, len(pks), CHECK_BATCH):
        checked += len(check_connections(queryset.filter(pk__in=pks[start : start + CHECK_BATCH])))
    return checked


def check_for(*, actor, checks):
    """connection-manager POST /connections/health-check, in the order of ``checks``.

    An item with only an ``id`` checks that connection's stored endpoint (if the actor may
    see it) and records the outcome on it. An item with ``host`` and ``port`` checks that
    endpoint, which needs connections.create, since it could be any address.
    """
    if len(checks) > settings.HEALTH_CHECK_MAX_TARGETS:
        raise InvalidInput(f"At most {settings.HEALTH_CHECK_MAX_TARGETS} checks per request.", field="checks")
    if any("host" in c for c in checks) and not can(actor, Perm.CONNECTIONS_CREATE):
        raise Forbidden("Checking an address that is not a connection needs connections.create.")
    ids = [c["id"] for c in checks if "host" not in c]
    known = {c.pk: c for c in Connection.objects.visible_to(actor).filter(pk__in=ids).only(*ENDPOINT_FIELDS)}
    answers, targets, stored = [None] * len(checks), [], []
    for index, item in enumerate(checks):
        if "host" in item:
            targets.append(Target(index, item["host"], item["port"]))
        elif item["id"] in known:
            targets.append(Target(index, *known[item["id"]].endpoint()))
            stored.append(index)
        else:
            answers[index] = {"id": item["id"], "reachable": False, "latencyMs": None, "error": "Unknown connection."}
    results = run_checks(targets)
    for result in results:
        item = checks[result.key]
        answers[result.key] = {
            "id": item.get("id"),
            "reachable": result.reachable,
            "latencyMs": result.latency_ms,
            "error": result.error or None,
        }
    stored = set(stored)
    record_results([Result(checks[r.key]["id"], r.reachable, r.latency_ms, r.error) for r in results if r.key in stored])
    return answers
