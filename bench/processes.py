"""What a benchmark reads of a process from /proc: CPU (its own, and its children's, reaped or
running) and memory (RSS, and PSS, which shares libraries fairly between processes)."""

import os
from pathlib import Path

from harness import BenchFailure

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid):
    """User + system CPU of a process, all its threads, from /proc (0 once it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else 0.0


def descendants(pid):
    """The processes ``pid`` started, and theirs (the node's ssh clients)."""
    children = {}
    for entry in Path("/proc").iterdir():
        fields = entry.name.isdigit() and _stat(entry.name)
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def node_cpu_seconds(pid):
    """CPU of the whole node: daphne, the clients it runs, and those it has already reaped."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return cpu_seconds(pid) + reaped + sum(cpu_seconds(child) for child in descendants(pid))


def pss_kib(pid):
    """Proportional set size: private memory plus a fair share of what is shared (0 once gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def node_memory_kib(pid):
    """daphne's RSS plus the PSS of the clients it runs (their libraries are shared)."""
    return rss_kib(pid) + sum(pss_kib(child) for child in descendants(pid))


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchFailure(f"no RSS for {pid}")
