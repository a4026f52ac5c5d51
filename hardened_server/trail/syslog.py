"""The syslog sink: every chain line to a collector, out of the server user's reach.

A kernel runs as the server's user and can rewrite any file that user can (issue #19); a record
already on a collector's disk, on another host or under another uid, it cannot. This sink sends
each chain line (the file sink's mirror, in chain order: genesis, checkpoints and close
included) as one RFC 5424 message over TCP, framed by octet counting (RFC 6587 §3.4.1: the
length, a space, the message; no delimiter that a message could contain), optionally inside
TLS (RFC 5425 uses the same framing). rsyslog's ``imtcp`` and syslog-ng's ``network()`` source
read it as is.

The message: ``<PRI>1 TIMESTAMP HOSTNAME hardened-server PROCID KIND - LINE`` with facility 13
(log audit) and severity 4 (warning) for a denial, 5 (notice) for anything else; ``KIND`` is
the record kind (``decision``, ``genesis``, ``close``, ...) and ``LINE`` the canonical chain line,
pure ASCII JSON, so ``hardened-server audit verify-log --stream`` reads the collector's file.

Delivery. "Accepted" means the whole frame was handed to the kernel's TCP socket without an
error (there is no application-level acknowledgement in syslog over TCP; RELP would add one).
A connection the collector closed is noticed before the next send (a collector never sends on
it, so a readable socket means FIN or reset): the sink reconnects once and resends. Lines that
could not be sent wait in a bounded backlog
(:data:`MAX_BACKLOG`) and go first once the collector is back, so short outages leave no gap in
the collected chain; a longer one drops the oldest (a gap ``verify-log --stream`` names).
Whether a failure fails the request is ``audit.require``'s decision (trail/writer.py).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import socket
import ssl
import threading
from datetime import UTC, datetime

from hardened_server.trail.chain import ChainEntry, unchained_line
from hardened_server.trail.record import DecisionRecord

__all__ = ["MAX_BACKLOG", "SyslogSink", "frame", "message"]

log = logging.getLogger("hardened_server.audit")

MAX_BACKLOG = 10000
FACILITY_LOG_AUDIT = 13
SEVERITY_WARNING = 4
SEVERITY_NOTICE = 5
APP_NAME = "hardened-server"
_KINDS = frozenset({"genesis", "decision", "checkpoint", "rotation", "resume", "close"})


def message(line: bytes, *, hostname: str, pid: int, now: datetime | None = None) -> bytes:
    """The RFC 5424 message that carries one chain line."""
    kind = "decision"
    denied = False
    try:
        obj = json.loads(line)
        kind = str(obj.get("kind", "decision"))
        event = obj.get("event")
        denied = isinstance(event, dict) and event.get("decision") == "deny"
    except ValueError:
        pass
    if kind not in _KINDS:
        kind = "decision"
    severity = SEVERITY_WARNING if denied else SEVERITY_NOTICE
    pri = FACILITY_LOG_AUDIT * 8 + severity
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = "".join(ch for ch in hostname if 33 <= ord(ch) <= 126)[:255] or "-"
    header = f"<{pri}>1 {stamp} {host} {APP_NAME} {pid} {kind} - "
    return header.encode("ascii") + line


def frame(msg: bytes) -> bytes:
    """Octet-counting framing (RFC 6587 §3.4.1, RFC 5425 §4.3)."""
    return str(len(msg)).encode("ascii") + b" " + msg


class SyslogSink:
    """Sends chain lines to ``host:port`` (TCP, optionally TLS). Thread-safe."""

    def __init__(
        self,
        address: str,
        *,
        tls: bool = False,
        cafile: str | None = None,
        timeout: float = 2.0,
        server: dict[str, str | int] | None = None,
    ) -> None:
        host, _, port = address.rpartition(":")
        self.host = host[1:-1] if host.startswith("[") else host
        self.port = int(port)
        self.address = address
        self.timeout = timeout
        self._tls = ssl.create_default_context(cafile=cafile) if tls else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._backlog: collections.deque[bytes] = collections.deque(maxlen=MAX_BACKLOG)
        self._hostname = socket.gethostname()
        self._pid = os.getpid()
        self.dropped = 0
        self._server = server
        #: Set when the sink mirrors a chained file sink (see StdoutSink.mirrored).
        self.mirrored = False
        #: The last failure, for audit.require (trail/writer.py); None after a success.
        self.failure: OSError | None = None

    def write(self, record: DecisionRecord, entry: ChainEntry | None = None) -> None:
        """The trail's call for every record: chained lines come by :meth:`write_line` (the
        file sink's mirror); a record the file could not take goes out unchained."""
        if entry is not None:
            if self.mirrored:
                return
            self.write_line(entry.line)
            return
        self.write_line(unchained_line(record, self._server))

    def write_line(self, line: bytes) -> None:
        """Send one chain line (after any backlog). Never raises: a failure is kept in
        :attr:`failure` and the line in the backlog."""
        data = frame(message(line, hostname=self._hostname, pid=self._pid))
        with self._lock:
            if len(self._backlog) == self._backlog.maxlen:
                self.dropped += 1
            self._backlog.append(data)
            try:
                self._flush()
            except OSError as exc:
                self._close()
                self.failure = exc
                log.error(
                    "audit syslog %s: %s (%d line(s) waiting)",
                    self.address,
                    str(exc)[:200],
                    len(self._backlog),
                )
            else:
                self.failure = None

    def _flush(self) -> None:
        for attempt in (1, 2):
            try:
                sock = self._connect()
                while self._backlog:
                    sock.sendall(self._backlog[0])
                    self._backlog.popleft()
                return
            except OSError:
                self._close()
                if attempt == 2:
                    raise

    def _connect(self) -> socket.socket:
        if self._sock is not None and self._peer_gone(self._sock):
            self._close()
        if self._sock is not None:
            return self._sock
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            except (OSError, ssl.SSLError):
                sock.close()
                raise
        self._sock = sock
        return sock

    @staticmethod
    def _peer_gone(sock: socket.socket) -> bool:
        """A collector never sends on this connection: if it is readable, the peer closed it
        (FIN or reset). Checked before each send, so that a collector that went away is
        noticed before a line is handed to a dead connection, not one line later."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def close(self) -> None:
        with self._lock:
            self._close()
