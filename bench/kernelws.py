"""Kernel round trips over the websocket: ``execute_request`` for ``1`` until ``execute_reply``.

One connection, one request in flight (what a notebook user does when running cells), so the
number is latency-bound: round trips per second = 1 / mean latency. The connection is opened
with the token in the ``Authorization`` header (hardened-server refuses URL tokens on API and
websocket routes) and pre-warmed before the clock starts.

The client is a minimal RFC 6455 client on a plain socket (text frames, masking, ping/pong),
so that one thing can be switched: ``quickack``. Neither tornado nor jupyter_server sets
TCP_NODELAY on a websocket, so the kernel's five small messages per execution are held back by
Nagle's algorithm until the client's delayed ACK (40 ms on Linux) arrives. With ``quickack`` the
client acknowledges at once (TCP_QUICKACK before every read), which takes the network stack out
of the number and leaves the servers' own cost; without it the client behaves like a browser.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import time
import uuid
from datetime import UTC, datetime

from bench.loadgen import LoadResult, _percentile

MAX_ROUND_TRIPS = 200_000  # hard bound, whatever the duration
REPLY_TIMEOUT_S = 30
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class WsError(Exception):
    pass


class MiniWebSocket:
    def __init__(
        self, host: str, port: int, path: str, headers: dict[str, str], *, quickack: bool
    ) -> None:
        self.quickack = quickack and _QUICKACK is not None
        self.sock = socket.create_connection((host, port), timeout=REPLY_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as browsers do
        self.buf = bytearray()
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise WsError(f"handshake refused: {head[:300]!r}")

    def _fill(self) -> None:
        if self.quickack:
            self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        data = self.sock.recv(65536)
        if not data:
            raise WsError("connection closed")
        self.buf += data
        if self.quickack:
            self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        # XOR the whole payload with the repeated mask in one big-int operation.
        reps = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(reps, "big")).to_bytes(n, "big")
        self.sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str | bytes:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._take(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._take(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._take(8))
            mask = self._take(4) if b1 & 0x80 else None
            payload = self._take(n)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                raise WsError("closed by server")
            parts.append(payload)
            if b0 & 0x80:
                data = b"".join(parts)
                return data.decode() if opcode in (0x1, 0x0) else data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send_frame(0x8, struct.pack("!H", 1000))
        self.sock.close()


def _execute_request(session: str) -> tuple[str, str]:
    msg_id = uuid.uuid4().hex
    msg = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "bench",
            "session": session,
            "date": datetime.now(UTC).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": "1",
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }
    return msg_id, json.dumps(msg)


def _round_trip(ws: MiniWebSocket, session: str) -> float:
    msg_id, text = _execute_request(session)
    t0 = time.perf_counter()
    ws.send_text(text)
    deadline = t0 + REPLY_TIMEOUT_S
    while time.perf_counter() < deadline:
        frame = ws.recv()
        if isinstance(frame, bytes):  # binary frames only carry buffers; never a reply here
            continue
        msg = json.loads(frame)
        if (
            msg.get("header", {}).get("msg_type") == "execute_reply"
            and msg.get("parent_header", {}).get("msg_id") == msg_id
        ):
            return time.perf_counter() - t0
    raise TimeoutError("no execute_reply")


def connect(base_url: str, kernel_id: str, token: str, *, quickack: bool) -> MiniWebSocket:
    hostport = base_url.split("://", 1)[1]
    host, _, port = hostport.partition(":")
    headers = {"Authorization": f"token {token}", "Origin": base_url}
    return MiniWebSocket(
        host, int(port), f"/api/kernels/{kernel_id}/channels", headers, quickack=quickack
    )


def run_ws(
    base_url: str,
    kernel_id: str,
    token: str,
    duration: float,
    *,
    warmup: int = 20,
    quickack: bool = False,
) -> LoadResult:
    session = uuid.uuid4().hex
    ws = connect(base_url, kernel_id, token, quickack=quickack)
    errors = 0
    try:
        for _ in range(warmup):
            _round_trip(ws, session)
        latencies: list[float] = []
        start = time.perf_counter()
        deadline = start + duration
        while time.perf_counter() < deadline and len(latencies) < MAX_ROUND_TRIPS:
            try:
                latencies.append(_round_trip(ws, session))
            except (TimeoutError, WsError, OSError):
                errors += 1
                break
        elapsed = time.perf_counter() - start
    finally:
        ws.close()
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        duration_s=elapsed,
        rps=len(latencies) / elapsed if elapsed else 0.0,
        p50_ms=_percentile(latencies, 50) * 1000,
        p99_ms=_percentile(latencies, 99) * 1000,
        errors=errors,
        tool="mini-websocket" + (" (TCP_QUICKACK)" if quickack else ""),
    )
