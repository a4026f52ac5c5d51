"""The audit trail: one call per decision, fanned out to every configured sink.

    trail = open_audit_trail(path="/var/log/jupyter/audit.jsonl", stdout=True,
                             event_logger=serverapp.event_logger)
    trail.decision(decision, route_class=..., method=..., path=request.uri, ...)

Sinks, in order: Prometheus counters (cannot fail), the hash-chained file
(:class:`~hardened_server.trail.chain.ChainedFileSink`, the evidence), a JSON-lines stream on
stdout for container log collectors (:class:`StdoutSink`; it ships the chain line, so the
collector holds an off-host copy of every ``seq``/``hash``, which is what makes tail removal on
the host detectable), and jupyter_server's EventLogger (:class:`EventLoggerSink`).

Removal of the file while open (issue #19): before every record the trail asks the file sink
whether its descriptor is still the file at the path (:meth:`~hardened_server.trail.chain.
ChainedFileSink.check_file`). On a loss the sink has already continued the chain in a new file;
the trail then records ``HS-AUDIT-004`` (what happened, which records were in the lost file) on
every sink, ahead of the record at hand, so the off-host copies name the event.

Failure policy: a failure of the file sink raises :class:`AuditWriteError` *after* the other
sinks have had the record, so the caller can fail closed (deny the request it could not record)
without losing the record elsewhere. A failure of any other sink is logged and swallowed: a
broken pipe to a log collector must not take the server down.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol

from hardened_server.policy.decisions import Decision
from hardened_server.policy.rules import Rule
from hardened_server.trail.chain import (
    AuditWriteError,
    ChainedFileSink,
    ChainEntry,
    FileLoss,
    unchained_line,
)
from hardened_server.trail.events import EventLoggerSink
from hardened_server.trail.metrics import AuditMetrics, default_metrics
from hardened_server.trail.record import (
    NO_REQUEST,
    DecisionRecord,
    build_decision_record,
    record_from_decision,
)
from hardened_server.trail.scrub import escape_log_value
from hardened_server.trail.syslog import SyslogSink
from hardened_server.trail.verify import VerifyResult, verify_log

if TYPE_CHECKING:
    from jupyter_events import EventLogger

__all__ = [
    "AuditSink",
    "AuditTrail",
    "AuditWriteError",
    "StdoutSink",
    "VerifyResult",
    "open_audit_trail",
    "request_values",
    "verify_log",
]

log = logging.getLogger("hardened_server.audit")


def request_values(
    request: Any,
    *,
    route_class: str,
    user: str | None = None,
    client_ip: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The request fields of a record, read off a tornado ``HTTPServerRequest`` (duck-typed: no
    tornado import here). Pass ``client_ip`` when the trusted-proxy logic resolved it (the
    default is ``request.remote_ip``); ``request_id`` defaults to a client ``X-Request-ID``,
    which the record builder sanitises, or a fresh one."""
    headers = getattr(request, "headers", None) or {}
    scheme = str(getattr(request, "protocol", "") or "")
    if str(headers.get("Upgrade", "")).lower() == "websocket":
        scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    return {
        "route_class": route_class,
        "method": getattr(request, "method", None),
        "path": str(getattr(request, "path", None) or getattr(request, "uri", "") or ""),
        "client_ip": client_ip if client_ip is not None else getattr(request, "remote_ip", None),
        "scheme": scheme,
        "user": user,
        "request_id": request_id or headers.get("X-Request-ID"),
    }


class AuditSink(Protocol):
    def write(self, record: DecisionRecord, entry: ChainEntry | None = None) -> None: ...


class StdoutSink:
    """One JSON object per line on stdout (or ``stream``), for container log collectors.

    With a chained file sink in front, the sink is one of the file sink's ``mirrors``
    (:meth:`write_line`): *every* chain line goes out (genesis, resume, rotation, checkpoints,
    close, decisions), each carrying ``server`` and ``chain``, so the collected stream verifies
    on its own (``verify-log --stream``) and holds an off-host anchor of the chain head.
    Without one (or when the file failed), a decision goes out as an unchained line with the
    ``server`` object. Written with one ``os.write`` per line so lines from concurrent threads
    do not interleave."""

    def __init__(
        self,
        stream: IO[bytes] | None = None,
        fd: int = 1,
        *,
        server: dict[str, str | int] | None = None,
    ) -> None:
        self._stream = stream
        self._fd = fd
        self._server = server
        #: Set when the sink mirrors a chained file sink: chained records arrive by
        #: :meth:`write_line`, and :meth:`write` only ships what the file could not take.
        self.mirrored = False
        #: The last write's error, for audit.require; None after a success.
        self.failure: OSError | None = None

    def write(self, record: DecisionRecord, entry: ChainEntry | None = None) -> None:
        if entry is not None:
            if self.mirrored:
                return  # already shipped, in chain order, by write_line
            line = entry.line
        else:
            line = unchained_line(record, self._server)
        self.write_line(line)

    def write_line(self, line: bytes) -> None:
        try:
            self._write_line(line)
        except OSError as exc:
            self.failure = exc
            raise
        self.failure = None

    def _write_line(self, line: bytes) -> None:
        data = line + b"\n"
        if self._stream is not None:
            self._stream.write(data)
            self._stream.flush()
            return
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]


class AuditTrail:
    """Records decisions to the file sink, the other sinks and the metrics."""

    def __init__(
        self,
        *,
        file_sink: ChainedFileSink | None = None,
        sinks: Sequence[AuditSink] = (),
        metrics: AuditMetrics | None = None,
        secrets: Iterable[str] = (),
        policy_fingerprint: str | None = None,
        required: Mapping[str, Any] | None = None,
    ) -> None:
        self.file_sink = file_sink
        self.sinks = list(sinks)
        #: audit.require: name -> the sink that must accept every record ("file" -> the
        #: file sink; others expose ``failure``, the last error or None).
        self.required = dict(required) if required is not None else {"file": file_sink}
        self.metrics = metrics
        self.secrets = tuple(secrets)
        self.policy_fingerprint = policy_fingerprint
        self._announced: FileLoss | None = None  # a loss the other sinks heard of first

    def record(self, record: DecisionRecord) -> ChainEntry | None:
        """Write ``record`` everywhere. Returns the chain entry (``seq``/``hash``) when a file
        sink is configured. Raises :class:`AuditWriteError` if the file sink failed."""
        entry: ChainEntry | None = None
        failure: AuditWriteError | None = None
        if self.file_sink is not None:
            try:
                self.check_file()
            except AuditWriteError as exc:
                failure = exc
        if self.metrics is not None:
            self.metrics.observe_decision(record)
        if self.file_sink is not None and failure is None:
            try:
                entry = self.file_sink.append(record)
            except AuditWriteError as exc:
                failure = exc
        self._to_sinks(record, entry)
        if failure is not None and "file" not in self.required:
            log.error("audit file failed (not in audit.require): %s", failure)
            failure = None
        if failure is None:
            failure = self._required_failure()
        if failure is not None:
            raise failure
        return entry

    def _required_failure(self) -> AuditWriteError | None:
        """The first sink ``audit.require`` names that did not take the last record."""
        for name, sink in self.required.items():
            if name == "file" or sink is None:
                continue
            problem = getattr(sink, "failure", None)
            if problem is not None:
                error = AuditWriteError(f"audit sink {name} did not accept the record: {problem}")
                error.rule_id = Rule.AUDIT_SINK_REQUIRED
                error.sink = name
                return error
        return None

    def _to_sinks(self, record: DecisionRecord, entry: ChainEntry | None) -> None:
        for sink in self.sinks:
            try:
                sink.write(record, entry)
            except Exception as exc:  # a broken secondary sink must not break the request
                log.error(
                    "audit sink %s failed: %s",
                    type(sink).__name__,
                    escape_log_value(exc, limit=200),
                )

    def check_file(self) -> FileLoss | None:
        """Is the audit file still ours? On a loss (removed, moved, replaced while open) the
        sink continues the chain in a new file and this records ``HS-AUDIT-004`` on every sink.
        Called before every record and from the app's timer. Raises :class:`AuditWriteError`
        when no new file can be opened (the caller fails closed)."""
        if self.file_sink is None:
            return None
        try:
            loss = self.file_sink.check_file()
        except AuditWriteError:
            # No new file: the other sinks still hear of the loss, once.
            pending = self.file_sink.pending_loss
            if pending is not None and pending is not self._announced:
                self._announced = pending
                self._to_sinks(self.loss_record(pending), None)
            raise
        if loss is not None:
            if loss.last_seq == getattr(self._announced, "last_seq", None):
                self._announced = None
                self._to_file_only(self.loss_record(loss))
            else:
                self.record(self.loss_record(loss))
        return loss

    def _to_file_only(self, record: DecisionRecord) -> None:
        """The loss record the other sinks already have (the new file could not be opened at
        the time), now that the file exists again."""
        assert self.file_sink is not None
        self.file_sink.append(record)

    def loss_record(self, loss: FileLoss) -> DecisionRecord:
        kept = f"; the file found in its place was kept as {loss.foreign}" if loss.foreign else ""
        return build_decision_record(
            rule_id=Rule.AUDIT_FILE_LOST,
            allowed=False,
            reason=(
                f"the audit file was {loss.how} while open: records {loss.first_seq}.."
                f"{loss.last_seq} were in it; a new file continues the chain{kept}"
            ),
            route_class=NO_REQUEST,
            method="NONE",
            path="",
            client_ip=None,
            subject=f"audit_file={loss.path} lost={loss.how} last_seq={loss.last_seq}",
            policy_fingerprint=self.policy_fingerprint,
            secrets=self.secrets,
        )

    def decision(self, decision: Decision, **request_values: Any) -> ChainEntry | None:
        """Record a policy :class:`Decision`; ``request_values`` are
        :func:`~hardened_server.trail.record.build_decision_record`'s request fields."""
        request_values.setdefault("policy_fingerprint", self.policy_fingerprint)
        request_values.setdefault("secrets", self.secrets)
        return self.record(record_from_decision(decision, **request_values))

    def event(self, **values: Any) -> ChainEntry | None:
        """Record a sensitive allow (or a failure) that is not a policy ``Decision``: pass
        ``rule_id``, ``allowed``, ``reason``, ``event_kind`` and the request fields."""
        values.setdefault("policy_fingerprint", self.policy_fingerprint)
        values.setdefault("secrets", self.secrets)
        return self.record(build_decision_record(**values))

    @property
    def head(self) -> tuple[int, str] | None:
        return self.file_sink.head if self.file_sink is not None else None

    def sync(self) -> None:
        """fsync the file (the ``interval:`` timer); notices a lost file on the way."""
        if self.file_sink is not None:
            self.check_file()
            self.file_sink.sync()

    def close(self) -> None:
        if self.file_sink is not None:
            self.file_sink.close()
        for sink in self.sinks:
            closer = getattr(sink, "close", None)
            if callable(closer):
                closer()


def open_audit_trail(
    *,
    path: str | os.PathLike[str] | None = None,
    fsync: str | None = None,
    max_bytes: int | None = None,
    signing_key_path: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    stdout: bool = False,
    event_logger: EventLogger | None = None,
    metrics: bool = True,
    secrets: Iterable[str] = (),
    policy_fingerprint: str | None = None,
    server: dict[str, str | int] | None = None,
    syslog: str = "",
    syslog_tls: bool = False,
    syslog_ca: str | None = None,
    require: Iterable[str] = ("file",),
) -> AuditTrail:
    """Build the trail from configuration values (the app's traits or policy keys).
    ``server``: the identity every line carries (:func:`hardened_server.trail.origin.
    server_identity`)."""
    require = tuple(require)
    configured = {"file": path is not None, "stdout": stdout, "syslog": bool(syslog)}
    missing = [name for name in require if not configured.get(name)]
    if missing:  # before anything is opened
        raise ValueError(
            "audit.require names " + ", ".join(missing) + ", which is not configured "
            "(audit.enabled for file, audit.stdout, audit.syslog)"
        )
    stdout_sink = StdoutSink(server=server) if stdout else None
    syslog_sink = (
        SyslogSink(syslog, tls=syslog_tls, cafile=syslog_ca or None, server=server)
        if syslog
        else None
    )
    mirrors = [sink.write_line for sink in (stdout_sink, syslog_sink) if sink is not None]
    file_sink = (
        ChainedFileSink(
            path,
            fsync=fsync,
            max_bytes=max_bytes,
            signing_key_path=signing_key_path,
            checkpoint_every=checkpoint_every,
            server=server,
            mirrors=mirrors,
        )
        if path is not None
        else None
    )
    sinks: list[AuditSink] = []
    for sink in (stdout_sink, syslog_sink):
        if sink is not None:
            sink.mirrored = file_sink is not None
            sinks.append(sink)
    named: dict[str, Any] = {"file": file_sink, "stdout": stdout_sink, "syslog": syslog_sink}
    if event_logger is not None:
        sinks.append(EventLoggerSink(event_logger))
    return AuditTrail(
        file_sink=file_sink,
        sinks=sinks,
        metrics=default_metrics() if metrics else None,
        secrets=secrets,
        policy_fingerprint=policy_fingerprint,
        required={name: named[name] for name in require},
    )
