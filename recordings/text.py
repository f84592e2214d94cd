"""The text a terminal recording showed, line by line, for search and command markers.

A recording holds what the target sent: escape sequences, carriage returns, backspaces and
line-editing redraws. Searching those bytes would miss a command corrected with backspaces and
find colour codes inside words, so ``TerminalLines`` replays them on one line at a time, as the
terminal did, and yields each line as the user saw it with the time it was last drawn:

- printable text overwrites at the cursor; carriage return, backspace, tab and the cursor
  moves within a line (CSI C, D, G) move it; CSI K, P, @ and X erase, delete and insert;
- a newline, and any move to another row (CSI H, A, B, …, as full-screen programs draw),
  ends the line: a full-screen program yields the fragments it drew at each position;
- colours, modes, titles (OSC) and every other sequence are dropped.

This is no full terminal emulator (pyte replays ~1 MiB/s; indexing must keep up with many
sessions): output that is plain text, with colours at most, takes a fast path in C (split on
newlines); only events carrying line editing go through the small state machine below.
"""

import re

# Sequences dropped without effect on the line: colours (SGR), and OSC titles and links.
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
# What the fast path cannot take: any control character but a newline (after CRLF is folded).
_EDITING = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
# The slow path's tokens: a run of printable text, a CSI sequence, another escape, a control.
_TOKEN = re.compile(
    r"(?P<text>[^\x00-\x1f\x7f]+)"
    r"|\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[ -/]*[0-~]"
    r"|(?P<control>[\x00-\x1f\x7f])"
)
# An escape sequence cut by the end of an event: kept for the next one.
_UNFINISHED = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[ -/]*)?$")
# CSI finals that leave the current row: what follows is drawn elsewhere on the screen.
_LEAVES_ROW = frozenset("ABEFHJLMSTdfr")
_SCREEN_SWITCH = frozenset(("47", "1047", "1049"))
TAB = 8


class TerminalLines:
    """Feed ``(time, text)`` output events; collect ``(time, line)`` for each line as shown.

    ``lines`` grows as lines end; ``finish()`` ends the last one. ``current()`` is the line
    being drawn now (what a user pressing Enter was looking at).
    """

    def __init__(self):
        self.lines = []
        self._line = ""
        self._cursor = 0
        self._time = 0.0  # of the event being fed
        self._drawn = 0.0  # when the current line last changed
        self._pending = ""

    def current(self):
        return self._line.strip()

    def feed(self, time, text):
        if self._pending:
            text = self._pending + text
            self._pending = ""
        unfinished = _UNFINISHED.search(text, max(0, len(text) - 256))
        if unfinished:
            self._pending = text[unfinished.start():]
            text = text[: unfinished.start()]
        if not text:
            return
        self._time = time
        if "\x1b" in text:
            text = _OSC.sub("", _SGR.sub("", text))
        text = text.replace("\r\n", "\n")
        if _EDITING.search(text) is None:
            self._plain(time, text)
        else:
            self._edit(time, text)

    def finish(self):
        self._end_line()
        return self.lines

    def _plain(self, time, text):
        parts = text.split("\n")
        self._write(parts[0])
        if len(parts) > 1:
            self._end_line()
            append = self.lines.append
            for line in parts[1:-1]:
                if line and not line.isspace():
                    append((time, line.rstrip()))
            self._write(parts[-1])

    def _write(self, run):
        if not run:
            return
        line, cursor = self._line, self._cursor
        if cursor >= len(line):
            self._line = line + " " * (cursor - len(line)) + run
        else:
            self._line = line[:cursor] + run + line[cursor + len(run):]
        self._cursor = cursor + len(run)
        self._drawn = self._time

    def _end_line(self):
        line = self._line.rstrip()
        if line.strip():
            self.lines.append((self._drawn, line))
        self._line = ""
        self._cursor = 0

    def _edit(self, time, text):
        for token in _TOKEN.finditer(text):
            run = token.group("text")
            if run is not None:
                self._write(run)
                continue
            final = token.group("final")
            if final is not None:
                self._csi(token.group("params"), final)
                continue
            control = token.group("control")
            if control == "\n":
                self._end_line()
            elif control == "\r":
                self._cursor = 0
            elif control == "\b":
                self._cursor = max(0, self._cursor - 1)
            elif control == "\t":
                self._cursor = (self._cursor // TAB + 1) * TAB

    def _csi(self, params, final):
        if params.startswith(("?", ">")):
            if final in "hl" and params[1:] in _SCREEN_SWITCH:
                self._end_line()  # to or from a full-screen program's own screen
            return  # other private modes: no effect on the text
        if final in _LEAVES_ROW:
            self._end_line()
            return
        numbers = [int(p) if p.isdigit() else 0 for p in params.split(";")]
        if final in "KP@X":
            self._drawn = self._time
        count = max(1, numbers[0])
        line, cursor = self._line, self._cursor
        if final == "K":
            if numbers[0] == 0:
                self._line = line[:cursor]
            elif numbers[0] == 1:
                self._line = " " * min(cursor + 1, len(line)) + line[cursor + 1:]
            else:
                self._line = ""
        elif final == "D":
            self._cursor = max(0, cursor - count)
        elif final == "C":
            self._cursor = cursor + count
        elif final == "G":
            self._cursor = count - 1
        elif final == "P":
            self._line = line[:cursor] + line[cursor + count:]
        elif final == "@":
            if cursor < len(line):
                self._line = line[:cursor] + " " * count + line[cursor:]
        elif final == "X":
            if cursor < len(line):
                self._line = line[:cursor] + " " * count + line[cursor + count:]
