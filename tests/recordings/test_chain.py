"""The SHA-256 chain written with each recording (recordings.chain, recordings.writer)."""

from datetime import UTC, datetime

import pytest

from recordings import chain
from recordings.writer import AsciicastWriter


def written(tmp_path, blocks=5):
    writer = AsciicastWriter(tmp_path / "r.cast", width=80, height=24, title="t", started_at=datetime.now(UTC))
    for n in range(blocks * 40):
        writer.output(f"line {n} {'x' * 400}\r\n".encode())
        if n % 50 == 0:
            writer.flush()
    writer.close()
    return writer


def test_an_untouched_recording_is_intact(tmp_path):
    writer = written(tmp_path)
    verdict = chain.verify(writer.path, digest=writer.digest, size=writer.size)
    assert verdict.intact and verdict.size == writer.size and verdict.first_altered_offset is None
    assert chain.chain_path(writer.path).stat().st_size == -(-writer.size // chain.BLOCK) * chain.LINK


@pytest.mark.parametrize("offset", [0, chain.BLOCK - 1, chain.BLOCK, 3 * chain.BLOCK + 777])
def test_a_flipped_byte_is_found_in_its_block(tmp_path, offset):
    writer = written(tmp_path)
    data = bytearray(writer.path.read_bytes())
    data[offset] ^= 0x01
    writer.path.write_bytes(bytes(data))
    verdict = chain.verify(writer.path, digest=writer.digest, size=writer.size)
    assert not verdict.intact
    assert verdict.first_altered_offset == offset - offset % chain.BLOCK


def test_a_file_and_chain_rewritten_together_fail_against_the_kept_digest(tmp_path):
    writer = written(tmp_path)
    forged = writer.path.read_bytes().replace(b"line 7 ", b"line 8 ")
    writer.path.write_bytes(forged)
    chain.chain_path(writer.path).unlink()
    rewriter = chain.ChainWriter(writer.path)
    rewriter.feed(forged)
    rewriter.close()
    verdict = chain.verify(writer.path, digest=writer.digest, size=writer.size)
    assert not verdict.intact and "rewritten" in verdict.detail


def test_truncation_and_appending_are_found(tmp_path):
    writer = written(tmp_path)
    data = writer.path.read_bytes()
    writer.path.write_bytes(data[: 2 * chain.BLOCK + 10])
    verdict = chain.verify(writer.path, digest=writer.digest, size=writer.size)
    assert not verdict.intact and verdict.first_altered_offset == 2 * chain.BLOCK
    writer.path.write_bytes(data + b'[99.0, "o", "appended"]\n')
    verdict = chain.verify(writer.path, digest=writer.digest, size=writer.size)
    assert not verdict.intact and verdict.first_altered_offset == (len(data) // chain.BLOCK) * chain.BLOCK


def test_a_recording_left_open_is_sealed_as_it_is_on_disk(tmp_path):
    writer = AsciicastWriter(tmp_path / "open.cast", width=80, height=24, title="t", started_at=datetime.now(UTC))
    writer.output(b"x" * (chain.BLOCK * 2 + 100))
    writer.flush()  # the node dies here: no close, the last partial block unchained
    assert chain.verify(writer.path).intact
    size, digest = chain.seal(writer.path)
    assert size == writer.path.stat().st_size
    assert chain.verify(writer.path, digest=digest, size=size).intact


def test_sealing_refuses_a_file_altered_before_it(tmp_path):
    writer = AsciicastWriter(tmp_path / "open.cast", width=80, height=24, title="t", started_at=datetime.now(UTC))
    writer.output(b"x" * (chain.BLOCK * 2 + 100))
    writer.flush()
    data = bytearray(writer.path.read_bytes())
    data[chain.BLOCK + 5] ^= 0x20
    writer.path.write_bytes(bytes(data))
    with pytest.raises(chain.Altered):
        chain.seal(writer.path)
