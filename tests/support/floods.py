"""Flood clients, run as their own process by ``tests/hostile/test_connection_floods.py`` so
that driving 1,500 sockets (or 48 busy threads) never competes with the measuring thread for the
test's GIL. Connects to 127.0.0.1 only; prints its counts as one JSON line when SECONDS are over.

``python -m tests.support.floods slowloris PORT SECONDS SOURCE...``: one connection per SOURCE
(a loopback address to bind to), each sending a partial request head and then one more header
line every :data:`DRIP_SECONDS`; a connection the server closed is reopened a second later, as
a slowloris tool's next cycle does.

``python -m tests.support.floods bodies PORT SECONDS SOURCE...``: one thread per SOURCE sending
anonymous POSTs that declare :data:`DECLARED` bytes and send the first :data:`SENT`, one after
the other; counted by the answer's status (``closed``: reset before an answer).
"""

from __future__ import annotations

import contextlib
import errno
import json
import resource
import socket
import sys
import threading
import time
from collections import Counter

DRIP_SECONDS = 2.0
DECLARED = 64 * 1024 * 1024
SENT = 256 * 1024


class Slot:
    __slots__ = ("due", "sent_head", "sock", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sock: socket.socket | None = None
        self.due = 0.0
        self.sent_head = False


class Slowloris:
    def __init__(self, port: int, sources: list[str]) -> None:
        self.port = port
        self.head = (f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     "User-Agent: slowloris\r\n").encode()
        self.slots = [Slot(source) for source in sources]
        self.counts: Counter[str] = Counter()

    def _open(self, slot: Slot, now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((slot.source, 0))
        code = sock.connect_ex(("127.0.0.1", self.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.counts["connect_failed"] += 1
            slot.due = now + 1.0
            return
        self.counts["opened"] += 1
        slot.sock, slot.due, slot.sent_head = sock, now, False

    def _tick(self, slot: Slot, now: float) -> None:
        if now < slot.due:
            return
        if slot.sock is None:
            self._open(slot, now)
            return
        try:
            slot.sock.send(b"X-Drip: 1\r\n" if slot.sent_head else self.head)
            slot.sent_head = True
            slot.due = now + DRIP_SECONDS
        except (BlockingIOError, InterruptedError):
            slot.due = now + 0.2
        except OSError as exc:
            if exc.errno == errno.ENOTCONN:  # still connecting
                slot.due = now + 0.2
                return
            slot.sock.close()
            self.counts["closed_by_server"] += 1
            slot.sock, slot.due = None, now + 1.0

    def run(self, seconds: float) -> Counter[str]:
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            for slot in self.slots:
                self._tick(slot, now)
            time.sleep(0.1)
        for slot in self.slots:
            if slot.sock is not None:
                slot.sock.close()
        return self.counts


def anonymous_post(port: int, source: str) -> str:
    """One anonymous POST declaring 64 MiB and sending the first 256 KiB: its outcome."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(
            f"POST /api/contents HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {DECLARED}\r\n\r\n".encode()
        )
        with contextlib.suppress(OSError):
            sock.sendall(b"x" * SENT)
        reply = sock.recv(64)
        return reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/1.1 ") else "closed"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except TimeoutError:
        return "timeout"
    finally:
        sock.close()


def bodies(port: int, seconds: float, sources: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(source: str) -> None:
        while time.monotonic() < end:
            outcome = anonymous_post(port, source)
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=client, args=(source,)) for source in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


def main(argv: list[str]) -> None:
    mode, port, seconds, sources = argv[0], int(argv[1]), float(argv[2]), argv[3:]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one descriptor per source
    if mode == "slowloris":
        counts = Slowloris(port, sources).run(seconds)
    else:
        counts = bodies(port, seconds, sources)
    sys.stdout.write(json.dumps(dict(counts)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
