"""targets.ssh.BufferedSocket: paramiko's reads, served from one large recv, lose and reorder nothing."""

import random
import socket
import threading

from targets.ssh import BufferedSocket


def test_reads_of_any_size_return_the_stream_in_order_with_fewer_system_calls():
    left, right = socket.socketpair()
    payload = random.Random(7).randbytes(600_000)
    calls = []

    class Counting:
        def recv(self, n):
            calls.append(n)
            return left.recv(n)

    def write():  # in pieces, as a peer would, while the reader reads
        for start in range(0, len(payload), 50_000):
            right.sendall(payload[start : start + 50_000])
        right.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    reader = BufferedSocket(Counting())
    got = bytearray()
    reads = 0
    for size in random.Random(8).choices([1, 4, 16, 1500, 4096], k=20_000):
        chunk = reader.recv(size)
        reads += 1
        if not chunk:
            break
        assert len(chunk) <= size
        got += chunk
    writer.join(5)
    assert bytes(got) == payload
    assert reads > 300 and len(calls) < reads / 5  # one system call served many of paramiko's reads
    assert reader.recv(16) == b""  # the end of the stream is still seen


def test_everything_but_reading_goes_to_the_socket():
    left, right = socket.socketpair()
    wrapped = BufferedSocket(left)
    wrapped.settimeout(0.5)
    assert left.gettimeout() == 0.5 and wrapped.fileno() == left.fileno()
    wrapped.sendall(b"ping")
    assert right.recv(4) == b"ping"
    wrapped.close()
    right.close()
