"""Helper process of health_checks.py: listen on many loopback ports, accept and close.

    python bench/listeners.py --count 1000 [--max-seconds 900]

Prints the listening ports as one JSON list on the first line of stdout, then accepts and
closes every connection until its stdin reaches end-of-file (the benchmark closes it, or dies)
or ``--max-seconds`` pass, whichever comes first. It never runs unbounded.
"""

import argparse
import json
import os
import resource
import selectors
import socket
import sys
import time

LOOPBACK = "127.0.0.1"


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"need {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def accept_all(listener):
    while True:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the peer gave up before we accepted (ECONNABORTED and kin)
            continue
        conn.close()


def serve(count, max_seconds):
    raise_fd_limit(count + 64)
    listeners = []
    selector = selectors.DefaultSelector()
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listeners.append(sock)
            sock.bind((LOOPBACK, 0))
            sock.listen(1024)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
        print(json.dumps([s.getsockname()[1] for s in listeners]), flush=True)
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                if key.fileobj == sys.stdin.fileno():
                    if not os.read(sys.stdin.fileno(), 4096):
                        return
                else:
                    accept_all(key.fileobj)
    finally:
        selector.close()
        for sock in listeners:
            sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    if not 1 <= args.count <= 20000 or not 0 < args.max_seconds <= 3600:
        parser.error("--count must be 1-20000 and --max-seconds at most 3600")
    serve(args.count, args.max_seconds)


if __name__ == "__main__":
    main()
