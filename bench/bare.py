"""The ceiling: a bare tornado application that returns, for each benchmarked endpoint, the same
bytes the stock server returned (captured once at start-up), with no Jupyter code in the path.

``python -m bench.bare --port N --captures DIR``; DIR holds ``<name>.body`` and
``<name>.type`` files written by :func:`bench.servers.capture`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from tornado import web, websocket


class Canned(web.RequestHandler):
    """Writes the captured response body of the request's method (the same path can be measured
    with GET, opening a notebook, and PUT, saving it); PUT reads (and discards) the request body
    first, as any handler must."""

    def initialize(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers

    def _answer(self) -> None:
        answer = self.answers.get(self.request.method or "")
        if answer is None:
            raise web.HTTPError(405)
        self.set_header("Content-Type", answer["content_type"])
        self.finish(answer["body"])

    def get(self, *args: Any) -> None:
        self._answer()

    def put(self, *args: Any) -> None:
        self._answer()


class FakeKernelChannels(websocket.WebSocketHandler):
    """Answers an ``execute_request`` with the messages ipykernel sends for ``1``: status busy,
    execute_input, execute_result, execute_reply, status idle (legacy JSON protocol)."""

    def check_origin(self, origin: str) -> bool:
        return True

    def on_message(self, message: str | bytes) -> None:
        msg = json.loads(message)
        parent = msg["header"]
        session = parent.get("session", "")
        count = getattr(self, "_count", 0) + 1
        self._count = count

        def reply(channel: str, msg_type: str, content: dict[str, Any]) -> None:
            header = {
                "msg_id": f"{parent['msg_id']}-{msg_type}",
                "msg_type": msg_type,
                "session": session,
                "username": "bench",
                "version": "5.3",
                "date": "2026-01-01T00:00:00.000000Z",
            }
            self.write_message(
                json.dumps(
                    {
                        "header": header,
                        "parent_header": parent,
                        "metadata": {},
                        "content": content,
                        "buffers": [],
                        "channel": channel,
                        "msg_id": header["msg_id"],
                        "msg_type": msg_type,
                    }
                )
            )

        reply("iopub", "status", {"execution_state": "busy"})
        reply("iopub", "execute_input", {"code": "1", "execution_count": count})
        reply(
            "iopub",
            "execute_result",
            {"data": {"text/plain": "1"}, "metadata": {}, "execution_count": count},
        )
        reply(
            "shell",
            "execute_reply",
            {"status": "ok", "execution_count": count, "user_expressions": {}, "payload": []},
        )
        reply("iopub", "status", {"execution_state": "idle"})


def make_app(captures: Path) -> web.Application:
    def canned(name: str) -> dict[str, Any]:
        return {
            "body": (captures / f"{name}.body").read_bytes(),
            "content_type": (captures / f"{name}.type").read_text().strip(),
        }

    by_pattern: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in json.loads((captures / "routes.json").read_text()):
        by_pattern.setdefault(spec["pattern"], {})[spec["method"]] = canned(spec["name"])
    routes: list[Any] = [(r"/api/kernels/[^/]+/channels", FakeKernelChannels)]
    routes += [(pattern, Canned, {"answers": answers}) for pattern, answers in by_pattern.items()]
    return web.Application(routes)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--captures", type=Path, required=True)
    args = parser.parse_args()
    app = make_app(args.captures)
    app.listen(args.port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
