"""The running server's audit trail: opened at start-up, consulted by the one record funnel.

:mod:`hardened_server.enforcement.recorder` is the only writer: every ``record_*`` call builds one
:class:`~hardened_server.trail.record.DecisionRecord` from the request and hands it to the
:class:`~hardened_server.trail.writer.AuditTrail` installed here (hash-chained file, stdout,
jupyter_server's EventLogger, Prometheus counters). This module holds the process-wide state
(:class:`AuditState`), resolves the ``[audit]`` policy section into a trail
(:func:`open_trail_for`) and refuses an audit file the contents API could reach. The request id
and the user that each record carries come from :mod:`hardened_server.enforcement.context`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.model import PathsPolicy
from hardened_server.policy.paths import ServerFile, served_file_problem
from hardened_server.policy.rules import Rule
from hardened_server.trail.chain import AuditChainError
from hardened_server.trail.origin import server_identity
from hardened_server.trail.writer import AuditTrail, open_audit_trail

if TYPE_CHECKING:
    from jupyter_events import EventLogger

    from hardened_server.enforcement.runtime import PolicyRuntime
    from hardened_server.policy.model import AuditPolicy

__all__ = [
    "AuditState",
    "audit_state",
    "default_audit_file",
    "install",
    "open_trail_for",
    "resolve_audit_file",
    "uninstall",
]


DEFAULT_NAME = "hardened-server-audit-{port}.jsonl"


@dataclass
class AuditState:
    """What the record funnel needs: the trail, the runtime (for the fingerprint of the policy
    in force, which a reload changes), and what to do when a record cannot be written."""

    trail: AuditTrail | None = None
    runtime: PolicyRuntime | None = None
    fail_closed: bool = True
    fingerprint: Callable[[], str | None] = field(default=lambda: None)

    def policy_fingerprint(self) -> str | None:
        if self.runtime is not None:
            return self.runtime.current.policy.fingerprint
        return self.fingerprint()


_STATE = AuditState()


def audit_state() -> AuditState:
    return _STATE


def install(
    trail: AuditTrail | None,
    runtime: PolicyRuntime | None,
    *,
    fail_closed: bool,
) -> AuditState:
    """Make ``trail`` the process's audit trail (one server per process)."""
    _STATE.trail = trail
    _STATE.runtime = runtime
    _STATE.fail_closed = fail_closed
    return _STATE


def uninstall() -> AuditTrail | None:
    trail, _STATE.trail, _STATE.runtime = _STATE.trail, None, None
    return trail


# -- where the file goes ---------------------------------------------------------------------


def default_audit_file(runtime_dir: str | os.PathLike[str], port: int) -> Path:
    """``hardened-server-audit-<port>.jsonl`` in the runtime directory: one chain per server
    (two servers of one user share the runtime directory; a second writer is refused)."""
    return Path(runtime_dir) / DEFAULT_NAME.format(port=port or os.getpid())


def resolve_audit_file(
    policy: AuditPolicy,
    *,
    runtime_dir: str,
    port: int,
    root_dir: str,
    source: str = "",
    paths: PathsPolicy | None = None,
) -> Path:
    """The audit file for ``policy`` (``audit.file`` or the default), refused when it lies
    inside the served root where the contents API could read, rewrite or delete the evidence.
    With ``paths`` (the policy's path rules), a file inside the root under a ``paths.deny``
    glob is out of the API's reach and accepted (serving a home directory: the shipped deny
    list covers the runtime directory); without it, anywhere inside the root is refused."""
    configured = bool(policy.file)
    path = (
        Path(os.path.expanduser(policy.file))
        if configured
        else default_audit_file(runtime_dir, port)
    )
    path = Path(os.path.abspath(path))
    problem = served_file_problem(
        ServerFile.AUDIT_FILE,
        str(path),
        root_dir,
        paths,
        what="audit.file" if configured else "the default audit file (in the runtime directory)",
        setting=f"audit.file ({source})" if configured and source else "",
    )
    if problem:
        raise problem
    return path


def open_trail_for(
    policy: AuditPolicy,
    *,
    runtime_dir: str,
    port: int,
    root_dir: str,
    event_logger: EventLogger | None,
    secrets: tuple[str, ...] = (),
    source: str = "",
    paths: PathsPolicy | None = None,
) -> AuditTrail:
    """Build the trail the ``[audit]`` section describes. Raises :class:`UnsafeStartup` when
    the file is inside the root or cannot be opened (a second writer, a damaged last record,
    an unreadable signing key): the server does not start without its evidence."""
    path = None
    if policy.enabled:
        path = resolve_audit_file(
            policy,
            runtime_dir=runtime_dir,
            port=port,
            root_dir=root_dir,
            source=source,
            paths=paths,
        )
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    signing_key = os.path.expanduser(policy.signing_key) if policy.signing_key else None
    try:
        return open_audit_trail(
            path=path,
            fsync=policy.fsync,
            max_bytes=policy.max_bytes,
            signing_key_path=signing_key,
            checkpoint_every=policy.checkpoint_every,
            stdout=policy.stdout,
            event_logger=event_logger,
            secrets=secrets,
            server=server_identity(port),
            syslog=policy.syslog,
            syslog_tls=policy.syslog_tls,
            syslog_ca=os.path.expanduser(policy.syslog_ca) if policy.syslog_ca else None,
            require=policy.require,
        )
    # AuditChainError (a damaged last record) and AuditLogBusy (a second writer) are neither
    # OSError nor ValueError: without them here a second server on the same file died with a
    # traceback instead of this refusal.
    except (OSError, ValueError, AuditChainError) as exc:  # and a bad or missing key file
        raise UnsafeStartup(
            Rule.AUDIT_OPEN_FAILED,
            f"the audit trail {path} cannot be opened: {exc}",
            setting="audit.file",
            fix="run `hardened-server audit verify-log` on it and move it aside, stop the other "
            "server writing it, correct audit.signing_key or audit.syslog_ca, or name in "
            "audit.require only sinks that are configured",
        ) from None
