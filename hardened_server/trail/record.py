"""The audit record of one policy decision, and its registered, versioned event schema.

A record is built from primitive values only (no tornado here: the enforcement layer extracts
the values from the request, this module decides what may be written down). The builder treats
its inputs in two ways, on purpose:

* **server-controlled** values (``rule_id``, ``route_class``, ``policy_fingerprint``,
  ``event_kind``) are validated strictly and a bad one raises ``ValueError``: it is a programming
  error, and silently recording garbage would make the trail useless;
* **client-controlled** values (``method``, ``scheme``, ``client_ip``, ``request_id``, ``path``,
  ``user``) are *normalised* and never raise: an attacker must not be able to make the audit
  write fail (and so, with a fail-closed trail, deny service) or inject a second record by
  sending an odd method, an ``X-Request-ID`` with a newline, or a path with a query carrying a
  token.

What never reaches a record: the query string and fragment (``?token=``, ``#access_token=``),
the scheme/host/userinfo of an absolute-form request target (``http://user:pass@host/``),
cookies and headers. The free-text fields ``reason`` and ``subject`` go through
:func:`hardened_server.trail.scrub.scrub`.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import operator
import re
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from hardened_server.policy.decisions import ROUTE_CLASSES, Decision
from hardened_server.policy.eventschemas import DECISION_SCHEMA_ID
from hardened_server.policy.hub import NON_OWNER_KINDS
from hardened_server.trail.scrub import scrub

__all__ = [
    "DETAIL_FIELDS",
    "NO_REQUEST",
    "OPTIONAL_FIELDS",
    "RECORD_ROUTE_CLASSES",
    "REQUIRED_FIELDS",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "DecisionRecord",
    "EventKind",
    "build_decision_record",
    "decision_schema",
    "format_time",
    "record_from_decision",
    "redact_path",
]

#: The decision record's schema id; its one home is :mod:`hardened_server.policy.eventschemas`.
SCHEMA_ID = DECISION_SCHEMA_ID
SCHEMA_VERSION = "1"  # jupyter_events wants a string (an int is coerced with a warning)
SCHEMA_RESOURCE = "policy_decision.v1.json"

MAX_REASON = 512
MAX_SUBJECT = 1024
MAX_PATH = 2048
MAX_USER = 256

#: The keys an activity record's ``detail`` may carry (issue #20), and their JSON types. A
#: closed set: a record is evidence, and a field nobody documented is one nobody checks. Texts
#: a user typed appear only as ``code``/``line`` (mode 'full') or their ``*_hmac``.
DETAIL_FIELDS: dict[str, tuple[type, ...]] = {
    "kernel_id": (str,),
    "session_id": (str,),
    "notebook": (str,),
    "msg_id": (str,),
    "terminal": (str,),
    "file": (str,),
    "via": (str,),
    "format": (str,),
    "mode": (str,),
    "size": (int,),
    "code": (str,),
    "code_hmac": (str,),
    "line": (str,),
    "line_hmac": (str,),
    "key_id": (str,),
    "truncated": (bool,),
}
MAX_DETAIL_TEXT = 1 << 20  # code/line: the policy's audit.max_text_bytes caps them far below
MAX_DETAIL_VALUE = 2048  # every other string
_TEXT_DETAILS = frozenset({"code", "line"})


class EventKind(StrEnum):
    """Security-relevant events recorded even when they are *allowed*: an investigation needs
    the log-in that preceded the deletion, not only the denials."""

    LOGIN_SUCCESS = "login_success"
    LOGIN_FAILURE = "login_failure"
    LOGOUT = "logout"
    TOKEN_CREATED = "token_created"  # noqa: S105 - an event name, not a secret
    TOKEN_USED = "token_used"  # noqa: S105
    TOKEN_REVOKED = "token_revoked"  # noqa: S105
    FILE_WRITTEN = "file_written"
    FILE_RENAMED = "file_renamed"
    FILE_DELETED = "file_deleted"
    UPLOAD_STARTED = "upload_started"
    CHECKPOINT_CREATED = "checkpoint_created"
    CHECKPOINT_DELETED = "checkpoint_deleted"
    KERNEL_STARTED = "kernel_started"
    KERNEL_RESTARTED = "kernel_restarted"
    KERNEL_INTERRUPTED = "kernel_interrupted"
    KERNEL_SHUTDOWN = "kernel_shutdown"
    SESSION_CREATED = "session_created"
    SESSION_CHANGED = "session_changed"
    SESSION_DELETED = "session_deleted"
    TERMINAL_OPENED = "terminal_opened"
    NON_OWNER_ACCESS = "non_owner_access"
    TERMINAL_CLOSED = "terminal_closed"
    SERVER_STOP_REQUESTED = "server_stop_requested"
    CONFIG_CHANGED = "config_changed"
    POLICY_LOADED = "policy_loaded"
    POLICY_RELOADED = "policy_reloaded"
    # issue #20: what users did (detail holds the structured facts, see DETAIL_FIELDS)
    CODE_EXECUTED = "code_executed"
    TERMINAL_INPUT = "terminal_input"
    FILE_READ = "file_read"


EVENT_KINDS: frozenset[str] = frozenset(k.value for k in EventKind)

#: The route class of a record with no request (start-up, reload, the ``token`` CLI).
NO_REQUEST = "server"
#: Route classes a record may carry: the policy's, and :data:`NO_REQUEST`.
RECORD_ROUTE_CLASSES: tuple[str, ...] = (*ROUTE_CLASSES, NO_REQUEST)
SCHEMES: frozenset[str] = frozenset({"http", "https", "ws", "wss"})

_RULE_ID = re.compile(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)*")
_FINGERPRINT = re.compile(r"[a-z0-9]+:[0-9a-f]{16,128}")
_METHOD = re.compile(r"[A-Z]{1,16}")
_REQUEST_ID_BAD = re.compile(r"[^A-Za-z0-9._:-]")
_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@cache
def decision_schema() -> dict[str, Any]:
    """The registered event schema (``$id`` :data:`SCHEMA_ID`), loaded from package data.

    Returns a fresh-looking but shared dict: callers must not mutate it (jupyter_events'
    ``register_event_schema`` does not)."""
    text = resources.files("hardened_server.trail").joinpath("schemas", SCHEMA_RESOURCE)
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


def format_time(moment: datetime | None = None) -> str:
    """UTC, RFC 3339, milliseconds, ``Z``: ``2026-05-09T07:35:25.123Z``. A naive datetime is
    refused: guessing its zone would put records out of order across a DST change."""
    if moment is None:
        moment = datetime.now(UTC)
    elif moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    moment = moment.astimezone(UTC)
    # strftime was a tenth of a record's build; the part up to the second is formatted once
    # per second (records come in bursts), the same characters strftime gives.
    second = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    last = _LAST_SECOND[0]
    if last[0] == second:
        prefix = last[1]
    else:
        prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.")
        _LAST_SECOND[0] = (second, prefix)
    return f"{prefix}{moment.microsecond // 1000:03d}Z"


#: (the second, its strftime) of the last record's time: see :func:`format_time`.
_LAST_SECOND: list[tuple[tuple[int, ...], str]] = [((), "")]


def redact_path(raw: str) -> str:
    """The path of a request target, with nothing that can carry a secret.

    Dropped: everything from the first ``?`` (query: ``?token=``) or ``#`` (fragment:
    ``#access_token=`` when a client sends one), and the ``scheme://userinfo@host`` of an
    absolute-form target (``GET http://user:password@host/x``). Kept: the path itself, even a
    segment that looks like a token — these are API paths (kernel ids, file names), and
    dropping them would make the record useless. Control characters cannot break a JSON line
    (the encoder escapes them), so they are kept as evidence. Truncated to 2048 characters.
    """
    path = raw.split("?", 1)[0].split("#", 1)[0]
    path = _ABSOLUTE_URI.sub("", path, count=1)
    if len(path) > MAX_PATH:
        path = path[: MAX_PATH - 3] + "..."
    return path


def _normalise_method(method: str | None) -> str:
    value = (method or "").upper()
    return value if _METHOD.fullmatch(value) else "INVALID"


def _normalise_scheme(scheme: str | None) -> str:
    value = (scheme or "").lower()
    return value if value in SCHEMES else "unknown"


def _normalise_ip(client_ip: str | None) -> str:
    if not client_ip:
        return "unknown"
    return _parsed_ip(client_ip)


@functools.lru_cache(maxsize=1024)
def _parsed_ip(client_ip: str) -> str:
    """The address in its normal form (parsed once per distinct peer, not once per record)."""
    try:
        return str(ipaddress.ip_address(client_ip.strip("[]")))
    except ValueError:
        return "invalid"


def _normalise_request_id(request_id: str | None) -> str:
    """A client-supplied ``X-Request-ID`` may carry anything; keep it searchable, not
    dangerous."""
    value = _REQUEST_ID_BAD.sub("_", request_id or "")[:128]
    return value or uuid.uuid4().hex


def _normalise_user(user: str | None) -> str | None:
    if user is None or user == "":
        return None
    return user[:MAX_USER]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One policy decision as recorded by every sink. Field names and meaning are the schema's
    (``hardened_server/trail/schemas/policy_decision.v1.json``); never rename one, add a ``v2``
    schema instead."""

    time: str
    rule_id: str
    decision: str  # "allow" | "deny"
    reason: str
    request_id: str
    user: str | None
    client_ip: str
    scheme: str
    method: str
    route_class: str
    path: str
    policy_fingerprint: str
    event_kind: str | None = None
    subject: str | None = None
    #: Structured facts of an activity record (issue #20); None (and absent from the JSON, so
    #: records written before it hash the same) for every other record.
    detail: dict[str, Any] | None = None
    #: Set only when the request was made by someone other than the server's owner
    #: (:data:`~hardened_server.policy.hub.NON_OWNER_KINDS`: a hub ``"user"`` such as an
    #: admin using "access server", or a hub ``"service"``); ``user`` then names who. Optional
    #: (issue #19 item 8): a record without it is written exactly as before, so the owner's
    #: records and every chain written before it are unchanged.
    non_owner: str | None = None

    def __post_init__(self) -> None:
        if self.decision not in ("allow", "deny"):
            raise ValueError(f"decision must be 'allow' or 'deny', not {self.decision!r}")
        if not _RULE_ID.fullmatch(self.rule_id) or len(self.rule_id) > 64:
            raise ValueError(f"not a stable rule id: {self.rule_id!r}")
        if self.route_class not in RECORD_ROUTE_CLASSES:
            raise ValueError(f"unknown route class {self.route_class!r}")
        if self.event_kind is not None and self.event_kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.event_kind!r}")
        if self.non_owner is not None and self.non_owner not in NON_OWNER_KINDS:
            raise ValueError(f"unknown non-owner kind {self.non_owner!r}")
        if self.policy_fingerprint != "unknown" and not _FINGERPRINT.fullmatch(
            self.policy_fingerprint
        ):
            raise ValueError(f"not a policy fingerprint: {self.policy_fingerprint!r}")
        if not _TIME.fullmatch(self.time):
            raise ValueError(f"time must be UTC RFC 3339 with milliseconds: {self.time!r}")
        if "?" in self.path or "#" in self.path:
            raise ValueError("path must not carry a query or fragment (use redact_path)")
        if self.detail is not None:
            _check_detail(self.detail)

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    def to_dict(self) -> dict[str, Any]:
        # Every field is a str or None: a shallow dict is a copy (dataclasses.asdict's
        # recursive deep copy was a fifth of the cost of a record). The optional fields are
        # left out (not written as null) when not set: records without them hash the same.
        out = dict(zip(_RECORD_FIELDS, _record_values(self), strict=True))
        if self.detail is not None:
            out["detail"] = dict(self.detail)
        if self.non_owner is not None:
            out["non_owner"] = self.non_owner
        return out

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces, ASCII only): one line, no raw control
        character or U+2028 that a line-oriented reader could split on."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionRecord:
        """Rebuild a record read back from a sink (validates like the constructor)."""
        values = {name: data[name] for name in _RECORD_FIELDS}
        return cls(**values, detail=data.get("detail"), non_owner=data.get("non_owner"))


#: Fields a record carries only when they say something (left out, not null, otherwise): the
#: schema lists them under ``properties`` but not ``required``.
OPTIONAL_FIELDS: frozenset[str] = frozenset({"detail", "non_owner"})
#: The fields every record carries (the schema's ``required``).
_RECORD_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(DecisionRecord) if f.name not in OPTIONAL_FIELDS
)
REQUIRED_FIELDS: frozenset[str] = frozenset(_RECORD_FIELDS)
#: Their values, in that order, in one call (``to_dict`` runs twice per record).
_record_values = operator.attrgetter(*_RECORD_FIELDS)


def _check_detail(detail: Any) -> None:
    """Server-built: a bad one is a programming error (ValueError), like a bad rule id."""
    if not isinstance(detail, dict):
        raise ValueError("detail must be an object")
    for name, value in detail.items():
        types = DETAIL_FIELDS.get(name)
        if types is None:
            raise ValueError(f"unknown detail field {name!r}")
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise ValueError(f"detail field {name!r} has the wrong type")
        if isinstance(value, str):
            limit = MAX_DETAIL_TEXT if name in _TEXT_DETAILS else MAX_DETAIL_VALUE
            if len(value) > limit:
                raise ValueError(f"detail field {name!r} is too long")


def _clip_detail(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """Client-influenced strings (a file name, a message id) are clipped, never refused."""
    if detail is None:
        return None
    return {
        name: (
            _clip(value, MAX_DETAIL_VALUE)
            if isinstance(value, str) and name not in _TEXT_DETAILS
            else value
        )
        for name, value in detail.items()
        if value is not None
    }


def _scrubbed_reason(reason: str, secrets: tuple[str, ...]) -> str:
    """``reason`` scrubbed and clipped. Most reasons are the server's own constant texts ("a
    file was read (files)", "execute_request sent to a kernel"): :func:`scrub` is pure, so a
    short one is scrubbed once per (reason, secrets) and remembered (the scrub was two fifths
    of building an activity record). A long one, or unhashable secrets, is scrubbed each time."""
    if len(reason) <= MAX_REASON and type(secrets) is tuple:
        try:
            return _scrubbed_short_reason(reason, secrets)
        except TypeError:  # something unhashable among the secrets: scrubbed below
            pass
    return _clip(scrub(reason, secrets), MAX_REASON)


#: At most 256 reasons of at most MAX_REASON characters each are remembered.
@functools.lru_cache(maxsize=256)
def _scrubbed_short_reason(reason: str, secrets: tuple[str, ...]) -> str:
    return _clip(scrub(reason, secrets), MAX_REASON)


def build_decision_record(
    *,
    rule_id: str,
    allowed: bool,
    reason: str,
    route_class: str,
    method: str | None,
    path: str,
    client_ip: str | None,
    scheme: str | None = None,
    user: str | None = None,
    request_id: str | None = None,
    policy_fingerprint: str | None = None,
    event_kind: EventKind | str | None = None,
    subject: str | None = None,
    non_owner: str | None = None,
    time: datetime | None = None,
    secrets: tuple[str, ...] = (),
    detail: dict[str, Any] | None = None,
) -> DecisionRecord:
    """Build a record from primitive values taken off a request.

    ``path`` may be the raw request URI (``request.uri``): it is passed through
    :func:`redact_path`. ``secrets`` (the server token, …) are removed from ``reason`` and
    ``subject`` in addition to the structural scrubbing. A missing ``request_id`` gets a
    fresh random one so records stay individually addressable.
    """
    return DecisionRecord(
        time=format_time(time),
        rule_id=str(rule_id),
        decision="allow" if allowed else "deny",
        reason=_scrubbed_reason(reason, secrets),
        request_id=_normalise_request_id(request_id),
        user=_normalise_user(user),
        client_ip=_normalise_ip(client_ip),
        scheme=_normalise_scheme(scheme),
        method=_normalise_method(method),
        route_class=str(route_class),
        path=redact_path(path),
        policy_fingerprint=policy_fingerprint or "unknown",
        event_kind=None if event_kind is None else str(event_kind),
        subject=None if subject is None else _clip(scrub(subject, secrets), MAX_SUBJECT),
        detail=_clip_detail(detail),
        non_owner=non_owner,
    )


def record_from_decision(decision: Decision, **request_values: Any) -> DecisionRecord:
    """:func:`build_decision_record` for a policy :class:`Decision` (rule id, outcome and
    reason come from it)."""
    return build_decision_record(
        rule_id=decision.rule_id,
        allowed=decision.allowed,
        reason=decision.reason,
        **request_values,
    )
