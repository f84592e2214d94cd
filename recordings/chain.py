"""Tamper evidence for recordings: a SHA-256 chain over fixed-size blocks, kept as it is written.

Block ``i`` is bytes ``[i * BLOCK, (i + 1) * BLOCK)`` of the recording file; its link is
``SHA-256(link[i-1] || block i)``, starting from 32 zero bytes. The links go to a file beside the
recording (``<name>.chain``, 32 bytes each) as each block fills, and the last link, over the
final partial block, when the recording closes; that one is also kept in the database
(``Recording.digest``). ``verify`` recomputes the chain from the file and names the first block
whose link differs: the first altered offset, to a block's precision. A file rewritten together
with its chain file still fails against the database's digest.

16 KiB blocks: hashing adds ~0.6 ms of the node's CPU per MiB recorded; smaller blocks would
locate a change more closely for more calls per MiB on the node's one thread.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

BLOCK = 16 * 1024
LINK = 32
SEED = bytes(LINK)
SUFFIX = ".chain"


def chain_path(path):
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


class ChainWriter:
    """Feed the bytes written to a recording, in order; links are appended to its chain file."""

    def __init__(self, path):
        self._file = open(chain_path(path), "xb", buffering=0)  # noqa: SIM115 (lives as long as the recording)
        self._link = SEED
        self._hash = hashlib.sha256(SEED)
        self._filled = 0

    def feed(self, data):
        view = memoryview(data)
        links = []
        while view:
            take = min(BLOCK - self._filled, len(view))
            self._hash.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == BLOCK:
                links.append(self._next_block())
        if links:
            self._file.write(b"".join(links))

    def _next_block(self):
        self._link = self._hash.digest()
        self._hash = hashlib.sha256(self._link)
        self._filled = 0
        return self._link

    def close(self):
        """Write the link of the last, partial block; return the chain's final digest (hex)."""
        if self._filled:
            self._file.write(self._next_block())
        self._file.close()
        return self._link.hex()


class Altered(Exception):
    """The bytes on disk no longer match the links already chained."""


def seal(path):
    """Finish the chain of a recording its writer never closed (its node died): check the links
    written so far, chain the rest of the file as it is on disk, and return ``(size, digest)``."""
    path = Path(path)
    links_path = chain_path(path)
    links = links_path.read_bytes() if links_path.exists() else b""
    link, offset, index, added = SEED, 0, 0, []
    with open(path, "rb") as recording:
        while block := recording.read(BLOCK):
            link = hashlib.sha256(link + block).digest()
            kept = links[index * LINK:(index + 1) * LINK]
            if kept and kept != link:
                raise Altered(f"the block at offset {offset} differs from its chain link")
            if not kept:
                added.append(link)
            offset += len(block)
            index += 1
    if len(links) > index * LINK:
        raise Altered(f"the file ends at offset {offset}, before the end of its chain")
    with open(links_path, "ab") as links_file:
        links_file.write(b"".join(added))
    return offset, link.hex()


@dataclass
class Verdict:
    intact: bool
    size: int
    first_altered_offset: int | None
    detail: str

    def as_dict(self):
        return {
            "intact": self.intact, "size": self.size, "first_altered_offset": self.first_altered_offset,
            "detail": self.detail,
        }


def verify(path, *, digest="", size=None):
    """Check the recording at ``path`` against its chain file and the final ``digest`` and
    ``size`` kept in the database (both unset while it is being written)."""
    path = Path(path)
    try:
        links = chain_path(path).read_bytes()
    except FileNotFoundError:
        return Verdict(False, _size(path), None, "The recording has no chain file.")
    link, offset, index = SEED, 0, 0
    with open(path, "rb") as recording:
        while block := recording.read(BLOCK):
            kept = links[index * LINK:(index + 1) * LINK]
            if not kept:
                if digest:
                    return Verdict(False, _size(path), offset, f"The file has bytes beyond its chain from offset {offset}.")
                break  # an open recording's last block is chained once full
            link = hashlib.sha256(link + block).digest()
            if kept != link:
                return Verdict(False, _size(path), offset, f"The block at offset {offset} differs from its chain link.")
            offset += len(block)
            index += 1
    if len(links) > index * LINK:
        return Verdict(False, offset, offset, f"The file ends at offset {offset}, before the end of its chain.")
    if not digest:
        return Verdict(True, _size(path), None, f"Intact so far: {offset} bytes chained; the recording is still open.")
    if size is not None and size != offset:
        return Verdict(False, offset, min(size, offset), f"The file holds {offset} bytes; {size} were recorded.")
    if link.hex() != digest:
        return Verdict(False, offset, None, "The file agrees with its chain file but not with the digest kept when it "
                       "closed: both were rewritten.")
    return Verdict(True, offset, None, "Intact: every block matches its chain link and the final digest.")


def _size(path):
    return path.stat().st_size
