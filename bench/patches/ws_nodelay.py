"""What-if: TCP_NODELAY on kernel websockets.

Neither tornado nor jupyter_server sets it, so the five small messages of one execution are held
by Nagle's algorithm until the client's delayed ACK (40 ms on Linux). Proposed for real: an
``open`` in a websocket mixin of ``hardened_server/enforcement/handlers.py`` that calls
``self.set_nodelay(True)`` first (covers kernels, terminals and extension websockets alike).
"""

from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

_open = KernelWebsocketHandler.open


async def _open_nodelay(self, kernel_id):  # type: ignore[no-untyped-def]
    self.set_nodelay(True)
    await _open(self, kernel_id)


KernelWebsocketHandler.open = _open_nodelay  # type: ignore[method-assign]
