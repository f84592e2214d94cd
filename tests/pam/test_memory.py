"""The node gives back what a burst of output left in its heap (pam.memory).

In a fresh interpreter: the suite's own heap would say nothing about what one trim returns.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BURST = """
import os
from pam.memory import HeapTrimmer, resident_bytes

trimmer = HeapTrimmer()
due_before = trimmer.due()
kept = []
for _ in range(3):  # megabyte pieces, as a fast terminal's output, each with a small survivor after it
    burst = []
    for i in range(200):
        burst.append(os.urandom(1 << 20))
        kept.append(bytes(2000 + i))
    del burst
grown = resident_bytes()
due = trimmer.due()
trimmer.trim()
print(due_before, due, grown, resident_bytes(), trimmer.due())
"""


def test_a_trim_hands_back_the_pages_a_burst_left_in_the_heap():
    answer = subprocess.run([sys.executable, "-c", BURST], cwd=ROOT, capture_output=True, text=True, check=True)
    due_before, due, grown, after, due_after = answer.stdout.split()
    assert (due_before, due, due_after) == ("False", "True", "False")
    assert int(grown) - int(after) > 150 * 2**20, answer.stdout
