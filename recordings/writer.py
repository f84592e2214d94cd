"""Write a terminal session as asciicast v2 (the format `asciinema cat` and players read).

Recordings keep no input events at all: typed commands are read from the echoed output (what
players show anyway), so keys the target does not echo (passwords at sudo, su, ssh or
`read -s` prompts) are stored nowhere. The file holds output ("o"), resize ("r") and marker
("m") events; a marker, with an empty label, says only that Enter was pressed then: the indexer
takes the line shown at that moment as a typed command (recordings.indexing), so commands are
listed without a keystroke being kept.

Every byte written is fed to the recording's SHA-256 chain (recordings.chain) as it is written.

Events are buffered and written by ``flush()``, which the node calls at least once a second,
and which runs at once when FLUSH_AT bytes are waiting: a fast transfer held a second of output
(~100 MiB) in memory, and its copies cost more than writing them while they were in the cache.
Each flush hands whole lines to the kernel (``os.writev`` of up to IOV_MAX lines at a time, with
no joined copy: a fast transfer made 26% of the node's CPU go to copying its recording), so a
process killed at any moment leaves a file whose every line is complete: a crash loses at most
the last second, never the file.
"""

import codecs
import os
import time
from pathlib import Path

import orjson

from recordings.chain import ChainWriter

IOV_MAX = 512  # lines per writev call (Linux takes up to 1024)
FLUSH_AT = 1 << 20  # bytes of buffered lines written at once, not held until the next flush


class AsciicastWriter:
    def __init__(self, path, *, width, height, title, started_at):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._start = time.monotonic()
        self._lines = []
        self._buffered = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._chain = ChainWriter(self.path)
        self.size = 0
        self.digest = ""
        header = {
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": int(started_at.timestamp()),
            "title": title,
            "env": {"TERM": "xterm-256color", "SHELL": "/bin/sh"},
        }
        self._lines.append(orjson.dumps(header, option=orjson.OPT_APPEND_NEWLINE))
        self.flush()

    def _event(self, kind, text):
        # orjson: a megabyte of output is one event; the stdlib encoder took 3.7 ms per MiB
        # here, orjson 0.23 ms.
        line = orjson.dumps([round(time.monotonic() - self._start, 6), kind, text], option=orjson.OPT_APPEND_NEWLINE)
        self._lines.append(line)
        self._buffered += len(line)
        if self._buffered >= FLUSH_AT:
            self.flush()

    def output(self, data):
        text = self._decoder.decode(data)
        if text:
            self._event("o", text)

    def resize(self, cols, rows):
        self._event("r", f"{cols}x{rows}")

    def marker(self):
        """Enter was pressed now (what was typed is not kept: the module's docstring)."""
        self._event("m", "")

    def flush(self):
        if not self._lines or self._fd is None:
            return
        lines, self._lines, self._buffered = self._lines, [], 0
        # Each line already ends in a newline (OPT_APPEND_NEWLINE): hand them to the kernel as
        # they are, no joined copy (a fast transfer flushed ~40 MB a second through two copies).
        for start in range(0, len(lines), IOV_MAX):
            part = lines[start : start + IOV_MAX]
            total = sum(len(line) for line in part)
            written = os.writev(self._fd, part)
            if written < total:  # a short write (rare on a regular file): finish with one copy
                rest = b"".join(part)[written:]
                while rest:
                    rest = rest[os.write(self._fd, rest):]
            for line in part:
                self._chain.feed(line)
            self.size += total

    def close(self):
        if self._fd is None:
            return
        self.flush()
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        self.digest = self._chain.close()
