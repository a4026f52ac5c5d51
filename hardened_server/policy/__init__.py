"""The policy engine: pure functions and frozen data, no tornado, no I/O at decision time."""

from hardened_server.policy.decisions import Decision, RouteClass, Rule
from hardened_server.policy.errors import PolicyError, UnsafeStartup
from hardened_server.policy.loader import load_policy
from hardened_server.policy.model import Policy

__all__ = [
    "Decision",
    "Policy",
    "PolicyError",
    "RouteClass",
    "Rule",
    "UnsafeStartup",
    "load_policy",
]
