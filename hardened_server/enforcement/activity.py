"""Accountability (issue #20): who ran which code, typed which terminal line, read which file.

Where each record comes from, and what it keeps:

==============================  ===============================================================
what                            where it is seen
==============================  ===============================================================
``execute_request``             :class:`KernelActivityMixin.on_message`, in front of
(HS-ACCT-001)                   jupyter_server's ``KernelWebsocketHandler.on_message``: the
                                client's message as it arrives, in either framing: protocol v1
                                (``v1.kernel.websocket.jupyter.org``, binary, offsets table) or
                                the legacy one (JSON text, or jupyter's binary framing with
                                buffers). Kernel id, the Jupyter session and notebook path (the
                                session manager's table), message id, code per ``audit.code``.
terminal line (HS-ACCT-002)     :class:`TerminalActivityMixin.on_message`, in front of
                                terminado's: ``["stdin", text]`` accumulated up to Enter;
                                backspace, Ctrl-C/Ctrl-U and escape sequences applied or
                                dropped, so the line is what was typed (history recall and tab
                                completion happen in the shell and are not seen).
file read (HS-ACCT-003)         :class:`FileReadMixin.on_finish`: a 200 answer to ``GET
                                /files/...`` (downloads included), ``GET /api/contents/...``
                                with content (never a directory listing or ``content=0``) and
                                ``GET /nbconvert/<format>/...``; path and response bytes.
==============================  ===============================================================

Parsing is cheap and never in the message's way: a kernel frame is looked at only if its shell
header names ``execute_request`` (a substring test before any JSON), a terminal frame only if it
starts ``["stdin"``; anything that does not parse is passed on untouched and unrecorded (the
kernel or terminado decide what a malformed frame means). Comm and widget messages
(``comm_open``, ``comm_msg``) are never recorded. The record is written *before* the message is
passed on: with ``audit.fail_closed`` a cell whose record cannot be written does not run (the
socket is closed 1011 naming the audit rule).

Cost (``make bench``, "Accountability recording"): one record per cell is the whole price. The
records carry no ``subject`` (the detail says it all, and the subject's token scrubber was a third
of a record's CPU), and their log line is DEBUG.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import AuthenticatedFileHandler
from jupyter_server.files.handlers import FilesHandler
from jupyter_server.nbconvert.handlers import NbconvertFileHandler
from jupyter_server.services.contents.handlers import ContentsHandler
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from tornado import web

from hardened_server.enforcement.recorder import record_activity
from hardened_server.policy.activity import TextMode, keep_text
from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.paths import ServerFile, served_file_problem
from hardened_server.policy.rules import Rule
from hardened_server.trail.hmackey import HmacKeyError, default_key_path, load_or_create
from hardened_server.trail.record import EventKind

if TYPE_CHECKING:
    from hardened_server.policy.model import AuditPolicy, PathsPolicy

__all__ = [
    "ActivityConfig",
    "FileReadMixin",
    "KernelActivityMixin",
    "TerminalActivityMixin",
    "activity_config",
    "activity_mixins",
    "execute_request_of",
    "install_activity",
    "open_activity_for",
    "resolve_key_path",
]

log = logging.getLogger("hardened_server.audit")

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
_WS_INTERNAL_ERROR = 1011


@dataclass(frozen=True, slots=True)
class ActivityConfig:
    """The ``audit.activity`` keys, resolved at start-up (the key read once)."""

    enabled: bool
    code: str
    terminal_input: str
    max_text_bytes: int
    key: bytes | None
    key_path: str = ""


_CONFIG: list[ActivityConfig | None] = [None]


def install_activity(config: ActivityConfig | None) -> None:
    _CONFIG[0] = config


def activity_config() -> ActivityConfig | None:
    config = _CONFIG[0]
    return config if config is not None and config.enabled else None


def resolve_key_path(policy: AuditPolicy, data_dir: str) -> Path:
    """``audit.hmac_key``, or the generated key's place in the Jupyter data directory."""
    if policy.hmac_key:
        return Path(os.path.abspath(os.path.expanduser(policy.hmac_key)))
    return Path(os.path.abspath(default_key_path(data_dir)))


def open_activity_for(
    policy: AuditPolicy,
    *,
    data_dir: str,
    root_dir: str,
    paths: PathsPolicy | None,
    source: str = "",
) -> ActivityConfig:
    """Resolve the activity keys. Raises :class:`UnsafeStartup`: HS-ACCT-010 when the key lies
    where the contents API could read it, HS-ACCT-011 when it cannot be read or generated, is
    too short or has a group/world permission bit. The key is needed (and so checked) whenever
    recording is on, even with both modes 'full' or 'off': an oversized text is kept as HMAC."""
    if not policy.activity:
        return ActivityConfig(
            False, policy.code, policy.terminal_input, policy.max_text_bytes, None
        )
    configured = bool(policy.hmac_key)
    path = resolve_key_path(policy, data_dir)
    setting = f"audit.hmac_key ({source})" if configured and source else "audit.hmac_key"
    problem = served_file_problem(
        ServerFile.HMAC_KEY,
        str(path),
        root_dir,
        paths,
        what="audit.hmac_key" if configured else "the generated HMAC key (in the data directory)",
        setting=setting,
    )
    if problem:
        raise problem
    try:
        if configured:
            from hardened_server.trail.hmackey import load_hmac_key

            key = load_hmac_key(path)
        else:
            key, created = load_or_create(path)
            if created:
                log.warning("audit: generated the HMAC key for activity records at %s", path)
    except (HmacKeyError, OSError) as exc:
        raise UnsafeStartup(
            Rule.ACCT_KEY_UNUSABLE,
            f"the audit HMAC key cannot be used: {exc}",
            setting=setting,
            fix="write at least 32 random bytes to the file (e.g. `head -c 32 /dev/urandom "
            '| base64 > FILE`), chmod 600 it, or set audit.hmac_key = "" for a generated key',
        ) from None
    return ActivityConfig(
        True, policy.code, policy.terminal_input, policy.max_text_bytes, key, str(path)
    )


def _kept(config: ActivityConfig, text: str, mode: str, field: str) -> dict[str, Any]:
    return keep_text(text, mode, config.key, config.max_text_bytes, field=field)


def _fail_closed(handler: Any, exc: web.HTTPError) -> None:
    """The record was refused and audit.fail_closed holds: the message is not passed on."""
    log.critical("activity not recorded, websocket closed: %s", exc.log_message)
    if handler.ws_connection is not None:
        handler.close(_WS_INTERNAL_ERROR, "audit trail unavailable")


# -- kernel messages -------------------------------------------------------------------------

_EXECUTE = "execute_request"
_EXECUTE_BYTES = b'"execute_request"'


def _v1_parts(message: bytes) -> list[bytes] | None:
    """The parts of a v1 frame (``deserialize_msg_from_ws_v1``): channel, header, parent,
    metadata, content, buffers...; None when the offsets are not a frame's."""
    if len(message) < 8:
        return None
    count = int.from_bytes(message[:8], "little")
    if count < 6 or 8 * (count + 1) > len(message):
        return None
    offsets = [int.from_bytes(message[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    return [message[offsets[i] : offsets[i + 1]] for i in range(min(count - 1, 5))]


def _legacy_binary(message: bytes) -> bytes | None:
    """The JSON part of jupyter's legacy binary framing (``deserialize_binary_message``)."""
    if len(message) < 8:
        return None
    count = int.from_bytes(message[:4], "big")
    if count < 1 or 4 * (count + 1) > len(message):
        return None
    start = int.from_bytes(message[4:8], "big")
    end = int.from_bytes(message[8:12], "big") if count > 1 else len(message)
    return message[start:end]


def execute_request_of(
    message: str | bytes, subprotocol: str | None
) -> tuple[dict[str, Any], str] | None:
    """(header, code) when ``message`` is a client's ``execute_request`` on the shell channel;
    None for every other message, and for one that does not parse."""
    try:
        if isinstance(message, bytes) and subprotocol == V1_PROTOCOL:
            parts = _v1_parts(message)
            if parts is None or len(parts) < 5 or parts[0] != b"shell":
                return None
            if _EXECUTE_BYTES not in parts[1]:
                return None
            header, content = json.loads(parts[1]), json.loads(parts[4])
        else:
            if isinstance(message, bytes):
                body: str | bytes | None = _legacy_binary(message)
                if body is None or _EXECUTE_BYTES not in body:
                    return None
            else:
                if _EXECUTE not in message:
                    return None
                body = message
            msg = json.loads(body)
            if not isinstance(msg, dict) or msg.get("channel", "shell") not in ("shell", None):
                return None
            header, content = msg.get("header"), msg.get("content")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or header.get("msg_type") != _EXECUTE:
        return None
    code = content.get("code") if isinstance(content, dict) else None
    if not isinstance(code, str):
        return None
    return header, code


def _session_of(handler: Any, kernel_id: str) -> tuple[str | None, str | None]:
    """(session id, notebook path) of the Jupyter session that owns ``kernel_id``, read from
    the session manager's table (a synchronous SQLite lookup: the record is not held up by an
    await). None, None for a kernel started without a session."""
    manager = handler.settings.get("session_manager")
    cursor = getattr(manager, "cursor", None)
    if cursor is None:
        return None, None
    try:
        row = cursor.execute(
            "SELECT session_id, path FROM session WHERE kernel_id=?", (kernel_id,)
        ).fetchone()
    except Exception:  # a replaced session manager with another table: no path, still a record
        return None, None
    if not row:
        return None, None
    return (str(row[0]) if row[0] else None), (str(row[1]) if row[1] else None)


class KernelActivityMixin:
    """In front of ``KernelWebsocketHandler``: one HS-ACCT-001 record per ``execute_request``."""

    def on_message(self, message: str | bytes) -> Any:
        config = activity_config()
        if config is not None:
            try:
                self._hs_record_execute(config, message)
            except web.HTTPError as exc:
                _fail_closed(self, exc)
                return None
        return super().on_message(message)  # type: ignore[misc]

    def _hs_record_execute(self, config: ActivityConfig, message: str | bytes) -> None:
        handler: Any = self
        connection = getattr(handler, "connection", None)
        subprotocol = getattr(connection, "subprotocol", None)
        found = execute_request_of(message, subprotocol)
        if found is None:
            return
        header, code = found
        kernel_id = str(getattr(handler, "kernel_id", "") or "")
        session_id, notebook = _session_of(handler, kernel_id)
        detail: dict[str, Any] = {
            "kernel_id": kernel_id,
            "session_id": session_id,
            "notebook": notebook,
            "msg_id": str(header.get("msg_id", ""))[:256] or None,
        }
        detail.update(_kept(config, code, config.code, "code"))
        record_activity(
            handler.request,
            EventKind.CODE_EXECUTED,
            rule_id=Rule.ACCT_CODE_EXECUTED,
            reason="execute_request sent to a kernel",
            detail=detail,
            user=handler.current_user,
        )


# -- terminal input --------------------------------------------------------------------------

_ESCAPE = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|O.|[^\[O])")
_ERASE = frozenset("\x7f\x08")
_KILL = frozenset("\x03\x15")  # Ctrl-C, Ctrl-U: the line is abandoned
_ENTER = frozenset("\r\n")


class TerminalActivityMixin:
    """In front of terminado's ``TermSocket``: one HS-ACCT-002 record per line typed."""

    _hs_line: str = ""
    _hs_line_size: int = 0

    def on_message(self, message: str) -> Any:
        config = activity_config()
        if config is not None and isinstance(message, str) and message.startswith('["stdin"'):
            try:
                self._hs_feed(config, message)
            except web.HTTPError as exc:
                _fail_closed(self, exc)
                return None
        return super().on_message(message)  # type: ignore[misc]

    def _hs_feed(self, config: ActivityConfig, message: str) -> None:
        try:
            command = json.loads(message)
        except ValueError:
            return
        if not isinstance(command, list) or len(command) < 2 or not isinstance(command[1], str):
            return
        text = _ESCAPE.sub("", command[1]) if "\x1b" in command[1] else command[1]
        line, cap = self._hs_line, config.max_text_bytes + 1
        for char in text:
            if char in _ENTER:
                if line:
                    self._hs_record_line(config, line)
                line = ""
            elif char in _ERASE:
                line = line[:-1]
            elif char in _KILL:
                line = ""
            elif len(line) < cap:  # beyond the cap the line is kept as its HMAC anyway
                line += char
        self._hs_line = line

    def _hs_record_line(self, config: ActivityConfig, line: str) -> None:
        handler: Any = self
        name = str(getattr(handler, "term_name", "") or "")
        detail: dict[str, Any] = {"terminal": name}
        detail.update(_kept(config, line, config.terminal_input, "line"))
        record_activity(
            handler.request,
            EventKind.TERMINAL_INPUT,
            rule_id=Rule.ACCT_TERMINAL_INPUT,
            reason="a line typed into a terminal",
            detail=detail,
            user=handler.current_user,
        )


# -- file reads ------------------------------------------------------------------------------


class FileReadMixin:
    """In front of ``/files``, the contents API's GET and ``/nbconvert``'s GET: one HS-ACCT-003
    record per 200 answer that carried a file's content (``size``: response body bytes)."""

    _hs_sent: int = 0
    _hs_read_file: str | None = None

    def flush(self, *args: Any, **kwargs: Any) -> Any:
        handler: Any = self
        buffer = getattr(handler, "_write_buffer", None)
        if buffer:
            self._hs_sent += sum(len(chunk) for chunk in buffer)
        return super().flush(*args, **kwargs)  # type: ignore[misc]

    def _finish_model(self, model: dict[str, Any], location: bool = True) -> None:
        """The contents API's answer: a file's or notebook's content (never a listing)."""
        if (
            isinstance(model, dict)
            and model.get("type") != "directory"
            and model.get("content") is not None
        ):
            self._hs_read_file = str(model.get("path") or "")
        super()._finish_model(model, location)  # type: ignore[misc]

    def on_finish(self) -> None:
        handler: Any = self
        try:
            self._hs_record_read(handler)
        finally:
            super().on_finish()  # type: ignore[misc]

    def _hs_record_read(self, handler: Any) -> None:
        if handler.request.method != "GET" or handler.get_status() != 200:
            return
        config = activity_config()
        if config is None:
            return
        # jupyter_server's routes name their groups (``(?P<format>...)``): kwargs first
        named = dict(handler.path_kwargs or {})
        args = [*(handler.path_args or ()), *named.values()]
        fmt: str | None = None
        if isinstance(handler, ContentsHandler):
            if self._hs_read_file is None:
                return
            via, name = "contents", self._hs_read_file
        elif isinstance(handler, NbconvertFileHandler):
            via = "nbconvert"
            fmt = str(named.get("format", args[0] if args else "")) or None
            name = str(named.get("path", args[1] if len(args) > 1 else ""))
        else:
            via, name = "files", str(named.get("path", args[0] if args else ""))
        detail: dict[str, Any] = {"file": name.strip("/"), "via": via, "size": self._hs_sent}
        if fmt:
            detail["format"] = fmt
        try:
            record_activity(
                handler.request,
                EventKind.FILE_READ,
                rule_id=Rule.ACCT_FILE_READ,
                reason=f"a file was read ({via})",
                detail=detail,
                user=handler.current_user,
            )
        except web.HTTPError as exc:  # the answer is gone: fail-closed can only log it
            log.critical("file read not recorded: %s", exc.log_message)


def _terminal_socket() -> type | None:
    try:
        from terminado.websocket import TermSocket
    except ImportError:  # pragma: no cover - terminals not installed
        return None
    return TermSocket


def activity_mixins(cls: type) -> tuple[type, ...]:
    """The mixins ``wrap_handler`` puts in front of ``cls`` (empty for other handlers)."""
    if issubclass(cls, KernelWebsocketHandler):
        return (KernelActivityMixin,)
    term = _terminal_socket()
    if term is not None and issubclass(cls, term):
        return (TerminalActivityMixin,)
    if issubclass(
        cls, AuthenticatedFileHandler | FilesHandler | NbconvertFileHandler | ContentsHandler
    ):
        return (FileReadMixin,)
    return ()


#: For the record's ``mode``: the three values (``TextMode``), re-exported for tests.
MODES = tuple(TextMode)
