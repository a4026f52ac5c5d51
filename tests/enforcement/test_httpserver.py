"""The HTTP server's stream wrappers in process (the limits themselves are pinned over real TCP
in test_httpserver_live.py): what stays wrapped once a websocket takes a stream over."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from tornado import web, websocket
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream

from hardened_server.enforcement.httpserver import http_server_for
from hardened_server.enforcement.runtime import PolicyRuntime
from hardened_server.policy.loader import build_policy, default_layer


class _Echo(websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


class _Plain(web.RequestHandler):
    def get(self) -> None:
        self.write("ok")


async def _serve_and_look(work: Any) -> Any:
    runtime = PolicyRuntime(build_policy([default_layer()]), "/")
    app = web.Application([(r"/ws", _Echo), (r"/plain", _Plain)])
    server: HTTPServer = http_server_for(runtime)(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    server.add_sockets([sock])
    port = sock.getsockname()[1]
    try:
        return await work(server, port)
    finally:
        server.stop()


def _streams(server: Any) -> list[IOStream]:
    return list(server._tracked)


def test_an_upgraded_stream_writes_and_reads_unwrapped_but_keeps_the_wrapped_close() -> None:
    """Per websocket frame no ``sys.exc_info()`` and no state test: once upgraded, ``write``
    and ``read_from_fd`` are tornado's own again (no HTTP parser can write a bare 400 to the
    stream any more); ``close`` is still wrapped, so the connection is forgotten at its end.
    Frames still flow both ways."""

    async def work(server: Any, port: int) -> tuple[dict[str, bool], str | bytes | None, int]:
        conn = await websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws")
        conn.write_message("one")
        first = await conn.read_message()
        for _ in range(50):  # the serving loop ends (on_close) an iteration after the upgrade
            (stream,) = _streams(server)
            if "write" not in stream.__dict__:
                break
            await asyncio.sleep(0.01)
        (stream,) = _streams(server)
        wrapped = {name: name in stream.__dict__ for name in ("write", "read_from_fd", "close")}
        conn.write_message("two")
        assert await conn.read_message() == "two"
        conn.close()
        for _ in range(50):
            if not _streams(server):
                break
            await asyncio.sleep(0.01)
        return wrapped, first, len(_streams(server))

    wrapped, first, left = asyncio.run(_serve_and_look(work))
    assert first == "one"
    assert wrapped == {"write": False, "read_from_fd": False, "close": True}
    assert left == 0  # the wrapped close forgot it


def test_a_plain_http_stream_keeps_its_wrappers() -> None:
    """A kept-alive HTTP connection still needs them: the bare-400 rewrite and the head clock."""

    async def work(server: Any, port: int) -> dict[str, bool]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        assert b"200 OK" in await reader.readuntil(b"\r\n\r\n")
        (stream,) = _streams(server)
        wrapped = {name: name in stream.__dict__ for name in ("write", "read_from_fd", "close")}
        writer.close()
        return wrapped

    assert asyncio.run(_serve_and_look(work)) == {
        "write": True,
        "read_from_fd": True,
        "close": True,
    }
