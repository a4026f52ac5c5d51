"""``audit.fsync``: when the audit file is fsynced, parsed and validated once.

The policy schema validates the key with :meth:`FsyncPolicy.parse` and the trail's writer
(:class:`hardened_server.trail.chain.ChainedFileSink`) acts on the parsed value, so the two can
never disagree about what a spec means; it lives here because ``policy/`` imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FsyncPolicy:
    """``always`` (fsync after every record: survives power loss, slowest), ``interval:<s>``
    (fsync when at least ``s`` seconds passed since the last one, and on rotation/close; call
    :meth:`hardened_server.trail.chain.ChainedFileSink.sync` from a timer to bound the window
    when idle), ``never`` (the kernel decides; a process crash loses nothing, a power loss may)."""

    mode: str
    interval: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> FsyncPolicy:
        if spec in ("always", "never"):
            return cls(spec)
        if spec.startswith("interval:"):
            try:
                seconds = float(spec.partition(":")[2])
            except ValueError:
                seconds = -1.0
            if seconds > 0 and seconds == seconds and seconds != float("inf"):
                return cls("interval", seconds)
        raise ValueError(
            f"fsync policy must be 'always', 'never' or 'interval:<seconds>': {spec!r}"
        )
