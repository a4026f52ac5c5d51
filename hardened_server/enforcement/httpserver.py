"""The HTTP server: connection limits, and the policy's headers on tornado's own 400.

:class:`PolicyHTTPServer` is tornado's ``HTTPServer`` (jupyter_server builds it; the application
swaps the instance's class, :func:`http_server_for`) with what tornado 6.6 lacks:

==============================  ================================================================
limit (``[limits]`` key)        what happens
==============================  ================================================================
``header_timeout_seconds``      a connection whose request head (request line and header fields)
                                is not complete this long after the accept, or after the first
                                byte of a later request on a kept-alive connection, is closed
                                unanswered (HS-LIMIT-006). tornado's own ``header_timeout`` is
                                one timer from the start of each wait for a head, idle time
                                included, one hour by default: a slowloris client dripping a
                                header byte every few seconds kept its connection for that hour
``idle_timeout_seconds``        a kept-alive connection idle this long between requests is
                                closed (no record: that is ordinary). Not for websockets: once
                                upgraded, tornado's pings (``websocket_ping_*``) close dead ones
``connections_per_client``      one more connection from a client address (the TCP peer, IPv6
                                by /64) is closed at accept, before anything is read
                                (HS-LIMIT-007). Exempt: peers in ``server.trusted_proxies``
                                (behind a proxy, every connection is the proxy's) and Unix
                                sockets; an upgraded websocket leaves the count
``max_connections``             at the cap (by default derived from ``RLIMIT_NOFILE``,
                                :mod:`hardened_server.policy.connlimits`), the connection that
                                has waited longest for a request head is closed to make room
                                (HS-LIMIT-009): slow or idle connections give way to one that
                                may be the owner's; when none is waiting, the new connection is
                                closed at accept (HS-LIMIT-008). Accept never reaches EMFILE
==============================  ================================================================

A refusal is one ``close()`` (no read, no answer: an answer would cost what the limit saves).
Reports are bounded (:class:`~hardened_server.policy.connlimits.RefusalSummary`): the first
refusal of a rule after a quiet interval gets a log line and an audit record at once, the rest
one summary line and record per rule every ten seconds with the count and the busiest clients.

Cost per connection: a few dictionary operations at accept and close, one timer per wait for a
head (it replaces tornado's own), and one wrapped ``write``, ``close`` and ``read_from_fd`` on its
stream; once a websocket has taken the stream over, only ``close`` stays wrapped (its frames are
written and read tornado's own way). Under a flood (``tests/hostile/test_connection_floods.py``)
the owner's requests must not queue behind it: the listen backlog is
:attr:`PolicyHTTPServer.LISTEN_BACKLOG` (the kernel dropped SYNs at tornado's 128), and
connections that time out together are closed :attr:`PolicyHTTPServer.EXPIRE_BATCH` per
event-loop iteration.

**tornado's bare 400.** When ``tornado/http1connection.py`` cannot parse a request (a bad
``Content-Length``, bad chunked encoding, a chunked body past the body limit), its
``HTTP1Connection._read_message_inner`` writes ``HTTP/1.1 400 Bad Request`` with no header
fields to the stream itself, from its ``except httputil.HTTPInputError`` block, past the output
transform. The wrapped ``write`` sees that exception being handled (``sys.exc_info()``) and sends
instead :func:`bad_request_answer`: the error class's header set. Only that path writes while an
``HTTPInputError`` is handled, so an application chunk that happens to equal those bytes goes
out untouched (matching the bytes, as a first version did, would have rewritten it).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable
from typing import Any, ClassVar

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, SSLIOStream

from hardened_server.enforcement.recorder import record_connection_summary
from hardened_server.enforcement.runtime import PolicyRuntime, client_key
from hardened_server.policy.connlimits import MAX_CONNECTIONS, RefusalSummary
from hardened_server.policy.decisions import RouteClass
from hardened_server.policy.rules import Rule

#: What tornado's HTTP1Connection writes itself for a request it cannot parse.
BARE_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"
_BAD_REQUEST_BODY = b"400 Bad Request\n"


def bad_request_answer(runtime: PolicyRuntime, over_tls: bool) -> bytes:
    """The 400 sent in place of tornado's bare one: the error class's headers (CSP, nosniff,
    frame protection, ``Cache-Control: no-store``, HSTS over TLS), a short plain-text body,
    and ``Connection: close`` (tornado closes the connection right after)."""
    fields = [
        ("Content-Type", "text/plain; charset=UTF-8"),
        ("Content-Length", str(len(_BAD_REQUEST_BODY))),
        ("Connection", "close"),
        *runtime.current.headers[(RouteClass.ERROR, over_tls)],
    ]
    head = "HTTP/1.1 400 Bad Request\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields)
    return (head + "\r\n").encode("latin-1") + _BAD_REQUEST_BODY


# The states of a connection.
_HEAD = "head"  # waiting for a request head: limits.header_timeout_seconds
_IDLE = "idle"  # kept alive, waiting for the next request: limits.idle_timeout_seconds
_BUSY = "busy"  # a request is read or answered: no timer (the handler's business)
_UPGRADED = "upgraded"  # a websocket: its pings

#: The reason in each report: what happened and the key that decides it.
REASONS: dict[str, str] = {
    Rule.LIMIT_HEADER_TIMEOUT: "request head not complete within limits.header_timeout_seconds",
    Rule.LIMIT_CONNECTIONS_PER_CLIENT: "closed at accept: the client address holds "
    "limits.connections_per_client connections",
    Rule.LIMIT_CONNECTIONS_TOTAL: "closed at accept: the server holds limits.max_connections "
    "connections and none is waiting for a request head",
    Rule.LIMIT_CONNECTION_EVICTED: "closed at limits.max_connections to make room: it had "
    "waited longest for a request head",
}


class _Connection:
    __slots__ = ("client", "counted", "open", "requests", "state", "stream", "timer")

    def __init__(self, stream: IOStream, client: str, counted: bool) -> None:
        self.stream = stream
        self.client = client
        self.counted = counted  # in the per-client count
        self.open = True
        self.requests = 0
        self.state = _HEAD
        self.timer: object | None = None


def _plain_io(stream: IOStream) -> None:
    """An upgraded stream writes and reads tornado's own way again: every websocket frame went
    through the wrapped ``write`` (a ``sys.exc_info()`` per frame) and ``read_from_fd`` (a
    state test per read) for nothing, since no ``HTTP1Connection`` parses this stream any more
    (no bare 400 can be written to it) and an upgraded connection has no head timer. The
    wrapped ``close`` stays: it forgets the connection when the websocket ends."""
    for name in ("write", "read_from_fd"):
        stream.__dict__.pop(name, None)


class _HeadWatch(httputil.HTTPMessageDelegate):
    """The request's delegate, told first when the head has arrived (the wait is over)."""

    __slots__ = ("conn", "delegate", "server")

    def __init__(
        self, delegate: httputil.HTTPMessageDelegate, server: PolicyHTTPServer, conn: _Connection
    ) -> None:
        self.delegate = delegate
        self.server = server
        self.conn = conn

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self.server.hs_busy(self.conn)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()


class PolicyHTTPServer(HTTPServer):
    """tornado's ``HTTPServer`` with the policy's connection limits and its headers on
    tornado's own 400 (see the module's docstring). Bound to one application's runtime by
    :func:`http_server_for`; :meth:`configure_limits` sets the connection cap."""

    runtime: ClassVar[PolicyRuntime]

    max_connections: int = MAX_CONNECTIONS
    _tracked: dict[IOStream, _Connection]
    _expired: deque[_Connection]
    _per_client: dict[str, int]
    _waiting: OrderedDict[int, _Connection]
    _summary: RefusalSummary
    _flush_handle: object | None

    #: Listen backlog (Linux caps it at net.core.somaxconn, 4096 by default). tornado's 128
    #: overflowed under a connection flood and the kernel dropped SYNs: the owner's connect
    #: waited for the retransmission, a second later (tests/hostile/test_connection_floods.py).
    LISTEN_BACKLOG = 4096
    #: Timed-out connections closed per event-loop iteration.
    EXPIRE_BATCH = 32

    def listen(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = LISTEN_BACKLOG,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        backlog = max(backlog, self.LISTEN_BACKLOG)
        super().listen(port, address, family, backlog, flags, reuse_port)

    def configure_limits(self, max_connections: int) -> None:
        """Before the first connection: the cap in force (``limits.max_connections``, or the
        budget :func:`~hardened_server.policy.connlimits.max_connections_for` derived)."""
        self.max_connections = max_connections
        # The header and idle timers here replace tornado's header_timeout (an hour by
        # default, idle time included): one timer per wait instead of two, and a flood's
        # closes cost the event loop less.
        self.conn_params.header_timeout = None
        self._tracked = {}
        self._expired = deque()
        self._per_client = {}
        self._waiting = OrderedDict()
        self._summary = RefusalSummary()
        self._flush_handle = None

    def connection_counts(self) -> tuple[int, int]:
        """``(open connections, client addresses counted)``, for tests and /metrics."""
        return len(self._tracked), len(self._per_client)

    # -- accept ----------------------------------------------------------------------------------

    def handle_stream(self, stream: IOStream, address: Any) -> None:
        if not hasattr(self, "_tracked"):
            self.configure_limits(self.max_connections)
        limits = self.runtime.current.limits
        client, counted = self._client_of(address)
        if counted and self._per_client.get(client, 0) >= limits.connections_per_client:
            stream.close()
            self._report(Rule.LIMIT_CONNECTIONS_PER_CLIENT, client)
            return
        if len(self._tracked) >= self.max_connections and not self._evict():
            stream.close()
            self._report(Rule.LIMIT_CONNECTIONS_TOTAL, client)
            return
        conn = _Connection(stream, client, counted)
        self._tracked[stream] = conn
        if counted:
            self._per_client[client] = self._per_client.get(client, 0) + 1
        self._wait(conn, _HEAD, limits.header_timeout_seconds)
        self._instrument(stream, conn)
        super().handle_stream(stream, address)

    def _client_of(self, address: Any) -> tuple[str, bool]:
        """The per-client key of the peer and whether the per-client cap applies to it."""
        host = address[0] if isinstance(address, tuple) and address else None
        if not isinstance(host, str) or not host:
            return "unix", False  # a Unix socket: its peers are local processes
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return host, False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
        if ip in self.runtime.current.trusted:
            return str(ip), False
        return client_key(str(ip)), True

    def _evict(self) -> bool:
        """Close the connection that has waited longest for a request head; False if none."""
        while self._waiting:
            _, victim = self._waiting.popitem(last=False)
            if victim.open:
                self._report(Rule.LIMIT_CONNECTION_EVICTED, victim.client)
                victim.stream.close()
                return True
        return False

    def _instrument(self, stream: IOStream, conn: _Connection) -> None:
        write = stream.write
        close = stream.close
        read_from_fd = stream.read_from_fd
        runtime = self.runtime
        over_tls = isinstance(stream, SSLIOStream)

        def write_with_policy(data: Any) -> Any:
            # The bare 400 is written from HTTP1Connection._read_message_inner's
            # ``except httputil.HTTPInputError`` block: that exception is being handled now.
            if isinstance(sys.exc_info()[1], httputil.HTTPInputError):
                data = bad_request_answer(runtime, over_tls)
            return write(data)

        def close_and_forget(exc_info: Any = False) -> None:
            close(exc_info=exc_info)
            self._forget(conn)

        def read_and_clock(buf: Any) -> int | None:
            n = read_from_fd(buf)
            if n and conn.state == _IDLE:
                # The next request has begun: its head gets limits.header_timeout_seconds from
                # its first byte, whatever was left of the idle time.
                self._wait(conn, _HEAD, self.runtime.current.limits.header_timeout_seconds)
            return n

        stream.write = write_with_policy  # type: ignore[method-assign]
        stream.close = close_and_forget  # type: ignore[method-assign]
        stream.read_from_fd = read_and_clock  # type: ignore[method-assign]

    # -- the life of a connection ----------------------------------------------------------------

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        delegate = super().start_request(server_conn, request_conn)
        stream = getattr(server_conn, "stream", None)
        conn = self._tracked.get(stream) if stream is not None else None
        if conn is None or not conn.open:
            return delegate
        if conn.requests:
            self._wait(conn, _IDLE, self.runtime.current.limits.idle_timeout_seconds)
        conn.requests += 1
        return _HeadWatch(delegate, self, conn)

    def hs_busy(self, conn: _Connection) -> None:
        """The request head has arrived: no timer while the request is read and answered."""
        self._cancel(conn)
        self._waiting.pop(id(conn), None)
        conn.state = _BUSY

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        stream = getattr(server_conn, "stream", None)
        conn = self._tracked.get(stream) if stream is not None else None
        if conn is not None and conn.open and not conn.stream.closed():
            # tornado's serving loop ended with the stream open: a websocket detached it.
            self._cancel(conn)
            self._waiting.pop(id(conn), None)
            conn.state = _UPGRADED
            self._uncount(conn)
            _plain_io(conn.stream)

    def _wait(self, conn: _Connection, state: str, seconds: float) -> None:
        if not conn.open:
            return
        self._cancel(conn)
        conn.state = state
        conn.timer = IOLoop.current().call_later(seconds, self._expire, conn)
        if state == _IDLE or id(conn) not in self._waiting:
            self._waiting[id(conn)] = conn
            self._waiting.move_to_end(id(conn))

    def _expire(self, conn: _Connection) -> None:
        conn.timer = None
        if not conn.open or conn.state not in (_HEAD, _IDLE):
            return
        if conn.state == _HEAD:
            self._report(Rule.LIMIT_HEADER_TIMEOUT, conn.client)
        # Connections accepted together expire together (a flood's hundreds in one event-loop
        # iteration): they are closed EXPIRE_BATCH at a time, with everybody else's events
        # in between, so that the owner's request does not wait for the whole wave.
        self._expired.append(conn)
        if len(self._expired) == 1:
            IOLoop.current().add_callback(self._close_expired)

    def _close_expired(self) -> None:
        for _ in range(min(self.EXPIRE_BATCH, len(self._expired))):
            conn = self._expired.popleft()
            if conn.open and conn.state in (_HEAD, _IDLE):
                conn.stream.close()
        if self._expired:
            IOLoop.current().add_callback(self._close_expired)

    def _cancel(self, conn: _Connection) -> None:
        if conn.timer is not None:
            IOLoop.current().remove_timeout(conn.timer)
            conn.timer = None

    def _uncount(self, conn: _Connection) -> None:
        if conn.counted:
            conn.counted = False
            left = self._per_client.get(conn.client, 1) - 1
            if left > 0:
                self._per_client[conn.client] = left
            else:
                self._per_client.pop(conn.client, None)

    def _forget(self, conn: _Connection) -> None:
        if not conn.open:
            return
        conn.open = False
        self._cancel(conn)
        self._waiting.pop(id(conn), None)
        self._tracked.pop(conn.stream, None)
        self._uncount(conn)

    # -- reports ---------------------------------------------------------------------------------

    def _report(self, rule: Rule, client: str) -> None:
        first = self._summary.add(rule, client)
        if first is not None:
            record_connection_summary(first, REASONS[rule])
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        due = self._summary.next_due()
        if due is not None:
            delay = max(0.0, due - time.monotonic())
            self._flush_handle = IOLoop.current().call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        for summary in self._summary.flush():
            record_connection_summary(summary, REASONS[summary.rule])
        self._schedule_flush()


def http_server_for(runtime: PolicyRuntime) -> type[PolicyHTTPServer]:
    return type("PolicyHTTPServer", (PolicyHTTPServer,), {"runtime": runtime})
