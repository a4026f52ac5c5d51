"""The session manager: session ``path``, ``name`` and ``type`` values checked on the way in,
and one audit record per session operation.

A session's ``path`` becomes the kernel's working directory (through the contents manager's
``get_kernel_path``, which applies the path policy) and part of the kernel's environment; stock
jupyter_server turns every exception in ``create_session`` into a 500, so a NUL byte in a path
answered 500 (and a non-string value reached SQLite). Here malformed values are refused with 400
before the handler's catch-all can see them: ``session_exists`` runs first, outside it.

**One record per session operation** (issue #18). A session operation changes a kernel too, and
the kernel manager records its own starts and shut-downs (app.py), so stock's calls would write
two or three records for one request. Here the session's record is the one, and names the kernel
changes it folded in (:func:`~hardened_server.enforcement.recorder.folded`):

=====================================  =========================================================
``POST /api/sessions``                 ``session_created`` (HS-KERNEL-005), with the kernel it
                                       started; none if the session existed (nothing changed)
``PATCH /api/sessions/{id}``           ``session_changed`` (HS-KERNEL-006), with the kernel a
                                       new ``kernel.name`` started and the one it replaced (the
                                       handler shuts that one down *after* the update: claimed
                                       for this record with :func:`claim_event`)
``DELETE /api/sessions/{id}``          ``session_deleted`` (HS-KERNEL-007), with the kernel it
                                       shut down
=====================================  =========================================================
"""

from __future__ import annotations

import re
from typing import Any

from jupyter_server.services.sessions.sessionmanager import SessionManager
from tornado import web

from hardened_server.enforcement.context import current_request
from hardened_server.enforcement.recorder import claim_event, folded, folding, record_event
from hardened_server.policy.rules import Rule
from hardened_server.trail.record import EventKind

_CONTROL = re.compile("[\x00-\x1f\x7f]")
MAX_FIELD_CHARS = 4096


def check_session_fields(**fields: Any) -> None:
    for name, value in fields.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise web.HTTPError(400, f"session {name} must be a string")
        if len(value) > MAX_FIELD_CHARS or _CONTROL.search(value):
            raise web.HTTPError(400, f"session {name} is malformed")


class HardenedSessionManager(SessionManager):
    async def session_exists(self, path: Any) -> bool:
        check_session_fields(path=path)
        return await super().session_exists(path)

    async def create_session(
        self,
        path: Any = None,
        name: Any = None,
        type: Any = None,
        kernel_name: Any = None,
        kernel_id: Any = None,
    ) -> dict[str, Any]:
        check_session_fields(path=path, name=name, type=type, kernel_name=kernel_name)
        with folded() as notes:
            model = await super().create_session(
                path=path, name=name, type=type, kernel_name=kernel_name, kernel_id=kernel_id
            )
        _record_session(
            EventKind.SESSION_CREATED,
            Rule.KERNEL_SESSION_CREATED,
            "session created",
            model.get("id"),
            notes,
            kernel_id=(model.get("kernel") or {}).get("id"),
            path=path,
        )
        return model

    async def start_kernel_for_session(
        self,
        session_id: str,
        path: Any,
        name: Any,
        type: Any,
        kernel_name: Any,
        kernel_id: str | None = None,
    ) -> str:
        """Inside ``create_session`` the kernel's start is folded into its record already.
        Called by the sessions handler's PATCH (a new ``kernel.name``), the start is held on the
        request for the ``session_changed`` record ``update_session`` writes next."""
        request = current_request()
        if folding() or request is None:
            return await super().start_kernel_for_session(
                session_id, path, name, type, kernel_name, kernel_id
            )
        with folded() as notes:
            started = await super().start_kernel_for_session(
                session_id, path, name, type, kernel_name, kernel_id
            )
        held: dict[str, list[str]] = getattr(request, "hs_session_notes", None) or {}
        held.setdefault(session_id, []).extend(notes)
        request.hs_session_notes = held
        return started

    async def update_session(self, session_id: str, **kwargs: Any) -> None:
        request = current_request()
        held = getattr(request, "hs_session_notes", None) or {}
        notes = list(held.pop(session_id, ()))
        old_kernel = None
        if kwargs.get("kernel_id") is not None:
            try:
                old_kernel = (await self.get_session(session_id=session_id))["kernel"]["id"]
            except (web.HTTPError, KeyError, TypeError):
                old_kernel = None
        done = False
        try:
            check_session_fields(
                **{k: v for k, v in kwargs.items() if k in ("path", "name", "type")}
            )
            await super().update_session(session_id, **kwargs)
            done = True
        finally:
            if done or notes:  # a refused update that started a kernel still changed state
                new_kernel = kwargs.get("kernel_id")
                if done and old_kernel is not None and new_kernel != old_kernel:
                    # The sessions handler shuts the replaced kernel down after this update.
                    claim_event(
                        request,
                        EventKind.KERNEL_SHUTDOWN,
                        rule_id=Rule.KERNEL_SHUTDOWN,
                        subject=f"kernel_id={old_kernel}",
                    )
                    notes.append(f"replaces kernel_id={old_kernel} (shut down with it)")
                _record_session(
                    EventKind.SESSION_CHANGED,
                    Rule.KERNEL_SESSION_CHANGED,
                    "session changed" if done else "session change refused after its kernel "
                    "started",
                    session_id,
                    notes,
                    **{k: v for k, v in kwargs.items() if k in _CHANGED_FIELDS},
                )

    async def delete_session(self, session_id: str) -> None:
        try:
            model = await self.get_session(session_id=session_id)
        except web.HTTPError:
            model = None
        notes: list[str] = []
        done = False
        try:
            with folded() as notes:
                await super().delete_session(session_id)
            done = True
        finally:
            if done or notes:
                _record_session(
                    EventKind.SESSION_DELETED,
                    Rule.KERNEL_SESSION_DELETED,
                    "session deleted",
                    session_id,
                    notes,
                    kernel_id=((model or {}).get("kernel") or {}).get("id"),
                    path=(model or {}).get("path"),
                )


#: What a session change may name in its record (the session model's own fields).
_CHANGED_FIELDS = ("path", "name", "type", "kernel_id")


def _record_session(
    kind: EventKind,
    rule: Rule,
    reason: str,
    session_id: Any,
    notes: list[str],
    **detail: Any,
) -> None:
    """The one record of a session operation, naming the kernel changes folded into it."""
    if notes:
        reason = f"{reason} ({'; '.join(notes)})"
    record_event(
        current_request(),
        kind,
        rule_id=rule,
        allowed=True,
        reason=reason,
        subject=f"session_id={session_id}",
        **detail,
    )
