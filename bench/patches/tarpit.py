"""What-if: refused logins wait before they are answered (a bounded tarpit), and cost no
template (see cheap_refusals.py).

A closed-loop flood of N connections gets N answers per round trip; if each answer is quick,
the flood saturates the one event loop and every other request queues behind it (status p99 ~
N x cost). Holding a 429 for ``min(Retry-After, 1 s)`` on an ``asyncio.sleep`` (not a blocking
sleep) slows each flooding connection to about one attempt a second at no CPU cost, so the
loop stays free for everyone else, and a guesser gets fewer guesses. At most ``MAX_HELD``
refusals are held at once; beyond that they are answered at once (a flood of connections
cannot pin unbounded sockets).

Proposed for real: in ``_Hardened._hs_gate`` (hardened_server/enforcement/handlers.py),
make the refusal of ``_hs_rate_limit`` ``await`` such a delay before raising, and the same in
``GateRefusalHandler.prepare`` for an application-level 429.
"""

import asyncio

from tornado import web

from hardened_server.enforcement import gate, handlers

MAX_HELD = 256
DELAY_S = 1.0
_held = 0

_write_error = handlers._Hardened.write_error


def write_error(self, status_code, **kwargs):  # type: ignore[no-untyped-def]
    if status_code == 429:
        if self._hs_retry_after is not None:
            self.set_header("Retry-After", str(self._hs_retry_after))
        gate.write_refusal_body(self, status_code, self._hs_route.route_class == "api")
        return
    _write_error(self, status_code, **kwargs)


handlers._Hardened.write_error = write_error


async def _hold() -> None:
    global _held
    if _held >= MAX_HELD:
        return
    _held += 1
    try:
        await asyncio.sleep(DELAY_S)
    finally:
        _held -= 1


def _tarpitted(prepare):  # type: ignore[no-untyped-def]
    async def wrapper(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            result = prepare(self, *args, **kwargs)
            if asyncio.iscoroutine(result):
                await result
        except web.HTTPError as exc:
            if exc.status_code == 429:
                await _hold()
            raise

    return wrapper


for cls in (handlers.HardenedJupyterMixin, handlers.HardenedPlainMixin, gate.GateRefusalHandler):
    cls.prepare = _tarpitted(cls.prepare)
