"""Write a terminal session as asciicast v2 (the format `asciinema cat` and players read).

Recordings keep no input events at all: typed commands are read from the echoed output (what
players show anyway), so keys the target does not echo (passwords at sudo, su, ssh or
`read -s` prompts) are stored nowhere. The file holds only output ("o") and resize ("r")
events.

Events are buffered and written by ``flush()``, which the session calls at least once a second.
Each flush is a single ``os.write`` of whole lines, so a process killed at any moment leaves a
file whose every line is complete: a crash loses at most the last second, never the file.
"""

import codecs
import os
import time
from pathlib import Path

import orjson


class AsciicastWriter:
    def __init__(self, path, *, width, height, title, started_at):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._start = time.monotonic()
        self._lines = []
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.size = 0
        header = {
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": int(started_at.timestamp()),
            "title": title,
            "env": {"TERM": "xterm-256color", "SHELL": "/bin/sh"},
        }
        self._lines.append(orjson.dumps(header))
        self.flush()

    def _event(self, kind, text):
        # orjson: a megabyte of output is one event; the stdlib encoder took 3.7 ms per MiB
        # here, orjson 0.23 ms.
        self._lines.append(orjson.dumps([round(time.monotonic() - self._start, 6), kind, text]))

    def output(self, data):
        text = self._decoder.decode(data)
        if text:
            self._event("o", text)

    def resize(self, cols, rows):
        self._event("r", f"{cols}x{rows}")

    def flush(self):
        if not self._lines or self._fd is None:
            return
        chunk = b"\n".join(self._lines) + b"\n"
        self._lines = []
        os.write(self._fd, chunk)
        self.size += len(chunk)

    def close(self):
        if self._fd is None:
            return
        self.flush()
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
