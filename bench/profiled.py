"""Run a server module under cProfile; ``SIGUSR2`` writes the stats so far and starts afresh.

``python -m bench.profiled OUT.prof hardened_server serve ...`` (or ``jupyter_server ...``).
Used by ``python -m bench.profile`` to attribute a difference to functions; cProfile roughly
doubles the cost of Python calls, so read its numbers as shares, not as timings.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
from typing import Any


def main() -> None:
    out = sys.argv[1]
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    profiler = cProfile.Profile()

    def dump(signum: int, frame: Any) -> None:
        profiler.disable()
        profiler.dump_stats(out)
        profiler.clear()
        profiler.enable()

    signal.signal(signal.SIGUSR2, dump)
    profiler.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        profiler.disable()


if __name__ == "__main__":
    main()
