"""The asciicast writer: a fast burst reaches the file as it comes, in whole lines."""

import json
from datetime import UTC, datetime

from recordings.writer import FLUSH_AT, AsciicastWriter


def events(path):
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the file ends in a partial line"
    return [json.loads(line) for line in lines[1:-1]]  # the header first


def test_a_burst_is_written_as_it_comes_and_never_held_in_memory(tmp_path):
    """Before, every event waited for the node's next flush (once a second): a fast transfer
    held a second of output (~100 MiB) as lines in memory."""
    path = tmp_path / "burst.cast"
    writer = AsciicastWriter(path, width=80, height=24, title="t", started_at=datetime.now(UTC))
    chunk = b"0123456789abcdef" * 4096  # 64 KiB
    sent = 0
    for _ in range(128):  # 8 MiB, and no flush() called
        writer.output(chunk)
        sent += len(chunk)
        on_disk = sum(len(text) for _, kind, text in events(path) if kind == "o")
        assert sent - on_disk <= FLUSH_AT + len(chunk)
    writer.close()
    assert "".join(text for _, _, text in events(path)) == (chunk * 128).decode()


def test_a_character_split_between_two_reads_is_recorded_whole(tmp_path):
    path = tmp_path / "split.cast"
    writer = AsciicastWriter(path, width=80, height=24, title="t", started_at=datetime.now(UTC))
    snowman = "☃".encode()
    writer.output(b"x" * FLUSH_AT + snowman[:1])
    writer.output(snowman[1:])
    writer.close()
    assert "".join(text for _, _, text in events(path)) == "x" * FLUSH_AT + "☃"
