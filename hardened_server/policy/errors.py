"""Errors a policy file can cause, worded for the person who has to fix the file."""

from __future__ import annotations


class PolicyError(ValueError):
    """A policy file is unusable. Names the file, the key, the bad value, what is allowed and
    how to fix it; the server refuses to start (or keeps the old policy on reload)."""

    def __init__(
        self,
        source: str,
        key: str,
        problem: str,
        *,
        value: object = None,
        allowed: str = "",
        fix: str = "",
    ) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        self.value = value
        self.allowed = allowed
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        parts = [f"{where}: {self.problem}"]
        if self.value is not None:
            parts.append(f"  value: {self.value!r}")
        if self.allowed:
            parts.append(f"  allowed: {self.allowed}")
        if self.fix:
            parts.append(f"  fix: {self.fix}")
        return "\n".join(parts)


class UnsafeStartup(RuntimeError):
    """The server refuses to start: a setting or a route is unsafe under the policy.

    ``rule_id`` is the stable id of the start-up check; ``setting`` names what to change.
    """

    def __init__(self, rule_id: str, message: str, *, setting: str = "", fix: str = "") -> None:
        self.rule_id = rule_id
        self.setting = setting
        self.fix = fix
        text = f"[{rule_id}] refusing to start: {message}"
        if setting:
            text += f"\n  setting: {setting}"
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)
