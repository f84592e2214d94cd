"""Give the system back what a burst of output left in this process's heap.

A node relays terminal output in pieces of up to a megabyte (a read burst, its websocket frames,
its recording's lines). Once glibc has freed a few blocks that large it serves the next ones
from the heap (its mmap threshold rises), and a small object allocated among them keeps those
pages from ever being trimmed: after ``cat`` of 1 GiB through one session, daphne kept
590-790 MiB resident (bench/README.md). Fixed thresholds (every large block mapped alone) cost
50% more CPU per MiB relayed; ``malloc_trim`` hands back free pages wherever they are in the
heap, so the node calls it when its resident size has grown by TRIM_AFTER since the last time,
from a thread (ctypes lets go of the GIL while it runs).
"""

import ctypes
import os

TRIM_AFTER = 32 * 2**20  # bytes of growth in resident size that make a trim worth its ~10 ms
_PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class HeapTrimmer:
    """Trims this process's heap when it has grown; a no-op without glibc."""

    def __init__(self):
        try:
            self._trim = ctypes.CDLL(None).malloc_trim
        except AttributeError:
            self._trim = None
        self.trimmed_at = resident_bytes()

    def due(self):
        return self._trim is not None and resident_bytes() - self.trimmed_at > TRIM_AFTER

    def trim(self):
        """Hand back the heap's free pages (blocking: call it from a thread)."""
        self._trim(0)
        self.trimmed_at = resident_bytes()
