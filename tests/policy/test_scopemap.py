"""The route map without a server: route -> (resource, action) per method -> required scopes.

Examples pin the decisions SECURITY.md documents (what a contents:read token may do, what starts a
kernel); properties pin the invariants (admin holds every scope, more scopes never lose access,
an unmapped route is refused for everyone, the fast path and the recorded decision agree); and
one test checks, handler by handler, that jupyter_server's ``@authorized`` asks the same question
``prepare()`` answers.
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardened_server.policy.decisions import Rule
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import (
    build_policy,
    default_layer,
    loosening_verb,
    parse_layer,
    unscoped_entries,
)
from hardened_server.policy.scopemap import (
    AUTHORIZED_CLAIMS,
    BUILTIN_HANDLERS,
    BUILTIN_PATTERNS,
    METHODS,
    RESOURCE_SCOPES,
    SOURCE_AUTHORIZED,
    SOURCE_BUILTIN,
    SOURCE_POLICY,
    SOURCE_UNMAPPED,
    RouteMap,
    authorizer_scopes,
    client_event_decision,
    refusal_message,
    scope_allows,
    scope_decision,
)
from hardened_server.policy.scopes import ADMIN, ALL_SCOPES, SCOPES, has_scopes

CONTENTS = "jupyter_server.services.contents.handlers.ContentsHandler"
KERNELS = "jupyter_server.services.kernels.handlers.MainKernelHandler"
KERNEL_WS = "jupyter_server.services.kernels.websocket.KernelWebsocketHandler"
SESSIONS = "jupyter_server.services.sessions.handlers.SessionRootHandler"
SETTINGS = "jupyterlab_server.settings_handler.SettingsHandler"
METRICS = "jupyter_server.base.handlers.PrometheusMetricsHandler"

EMPTY = RouteMap({})


def needs(handler: str, method: str, pattern: str = "/x") -> frozenset[str]:
    rule = EMPTY.lookup(pattern, handler).rule_for(method)
    assert rule is not None, (handler, method)
    return rule.scopes


def allowed(handler: str, method: str, *granted: str, pattern: str = "/x") -> bool:
    return scope_allows(EMPTY.lookup(pattern, handler), method, frozenset(granted))


# --- the documented decisions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "method", "scopes"),
    [
        (CONTENTS, "GET", {"contents:read"}),
        (CONTENTS, "HEAD", {"contents:read"}),
        (CONTENTS, "PUT", {"contents:write"}),
        (CONTENTS, "PATCH", {"contents:write"}),
        (CONTENTS, "POST", {"contents:write"}),
        (CONTENTS, "DELETE", {"contents:write"}),
        ("hardened_server.enforcement.files.HardenedFileHandler", "GET", {"contents:read"}),
        ("jupyter_server.nbconvert.handlers.NbconvertFileHandler", "GET", {"contents:read"}),
        (KERNELS, "GET", {"kernels:read"}),
        (KERNELS, "POST", {"kernels:execute"}),
        (
            "jupyter_server.services.kernels.handlers.KernelActionHandler",
            "POST",
            {"kernels:execute"},
        ),
        ("jupyter_server.services.kernels.handlers.KernelHandler", "DELETE", {"kernels:execute"}),
        (KERNEL_WS, "GET", {"kernels:execute"}),
        (
            "jupyter_server.services.kernelspecs.handlers.MainKernelSpecHandler",
            "GET",
            {"kernels:read"},
        ),
        (SESSIONS, "GET", {"sessions:read"}),
        (SESSIONS, "POST", {"sessions:write", "kernels:execute"}),
        ("jupyter_server_terminals.handlers.TermSocket", "GET", {"terminals"}),
        ("jupyter_server_terminals.api_handlers.TerminalRootHandler", "POST", {"terminals"}),
        (METRICS, "GET", {"metrics:read"}),
        ("jupyter_server.services.events.handlers.EventHandler", "POST", {"events:write"}),
        ("jupyter_server.services.events.handlers.SubscribeWebsocket", "GET", {"events:read"}),
        (SETTINGS, "GET", {"frontend:read"}),
        (SETTINGS, "PUT", {"frontend:write"}),
        ("jupyterlab_server.workspaces_handler.WorkspacesHandler", "PUT", {"frontend:write"}),
        ("jupyterlab_server.handlers.LabHandler", "GET", {"frontend:read"}),
        ("jupyterlab.handlers.extension_manager_handler.ExtensionHandler", "POST", {ADMIN}),
        ("jupyterlab.handlers.build_handler.BuildHandler", "POST", {ADMIN}),
        ("jupyter_server.services.shutdown.ShutdownHandler", "POST", {ADMIN}),
        ("jupyter_lsp.handlers.LanguageServerWebSocketHandler", "GET", {"kernels:execute"}),
        # Any authenticated principal: who am I, the API's description, redirects, 404s.
        ("jupyter_server.services.api.handlers.IdentityHandler", "GET", set()),
        ("jupyter_server.base.handlers.APIVersionHandler", "GET", set()),
        ("jupyter_server.services.api.handlers.APIStatusHandler", "GET", set()),
        ("jupyter_server.base.handlers.Template404", "GET", set()),
        ("jupyter_server.auth.logout.LogoutHandler", "POST", set()),
    ],
)
def test_builtin_requirement(handler: str, method: str, scopes: set[str]) -> None:
    assert needs(handler, method) == frozenset(scopes)


def test_contents_read_reads_and_does_nothing_else_on_core_routes() -> None:
    assert allowed(CONTENTS, "GET", "contents:read")
    assert not allowed(CONTENTS, "PUT", "contents:read")
    assert not allowed(KERNELS, "POST", "contents:read")
    assert not allowed(KERNEL_WS, "GET", "contents:read")
    assert not allowed(SESSIONS, "GET", "contents:read")
    assert not allowed(METRICS, "GET", "contents:read")
    assert not allowed(SETTINGS, "GET", "contents:read")


def test_a_session_write_needs_kernels_execute_too() -> None:
    """POST /api/sessions starts a kernel: sessions:write alone does not run code."""
    assert not allowed(SESSIONS, "POST", "sessions:write")
    assert not allowed(SESSIONS, "POST", "kernels:execute")
    assert allowed(SESSIONS, "POST", "sessions:write", "kernels:execute")


def test_metrics_are_found_by_pattern_whatever_handler_serves_them() -> None:
    """hardened-server's audit trail serves /metrics with its own handler."""
    route = EMPTY.lookup("/metrics", "hardened_server.trail.metrics.SomeMetricsHandler")
    assert route.source == SOURCE_BUILTIN
    assert route.rule_for("GET").scopes == frozenset({"metrics:read"})  # type: ignore[union-attr]


def test_every_builtin_handler_names_a_real_class() -> None:
    """A typo in a module path would leave that route unmapped (refused) without a word."""
    for name in BUILTIN_HANDLERS:
        module, _, qualname = name.rpartition(".")
        cls = getattr(importlib.import_module(module), qualname)
        assert inspect.isclass(cls), name


def test_every_builtin_entry_resolves_to_known_scopes() -> None:
    for table in (*BUILTIN_HANDLERS.values(), *BUILTIN_PATTERNS.values()):
        for resource_action in table.values():
            assert resource_action in RESOURCE_SCOPES, resource_action
    for scopes in RESOURCE_SCOPES.values():
        assert scopes <= set(SCOPES)


def test_a_principal_holding_the_scopes_is_granted_and_one_lacking_them_is_not() -> None:
    """The allow names what was granted (HS-SCOPE-004, for ``policy explain`` and the tests: it
    is not recorded per request); the refusal names the missing scope (HS-SCOPE-001)."""
    route = EMPTY.lookup("/api/contents", CONTENTS)
    granted = scope_decision(route, "GET", frozenset({"contents:read"}))
    assert granted.allowed
    assert granted.rule_id == Rule.SCOPE_GRANTED
    assert granted.reason == "contents:read"
    assert scope_decision(route, "PUT", frozenset({ADMIN})).rule_id == Rule.SCOPE_GRANTED
    refused = scope_decision(route, "PUT", frozenset({"contents:read"}))
    assert not refused
    assert refused.rule_id == Rule.SCOPE_MISSING
    assert "contents:write" in refusal_message(refused, route, "PUT")
    assert "HS-SCOPE-001" in refusal_message(refused, route, "PUT")


# --- unmapped routes and methods ----------------------------------------------------------------


def test_unmapped_route_is_refused_for_everyone_admin_included() -> None:
    route = EMPTY.lookup("/hello", "hello_extension.handlers.HelloHandler")
    assert route.source == SOURCE_UNMAPPED
    for method in METHODS:
        decision = scope_decision(route, method, ALL_SCOPES)
        assert not decision
        assert decision.rule_id == Rule.SCOPE_UNMAPPED
        assert "scopes.routes" in decision.reason
        assert not scope_allows(route, method, ALL_SCOPES)
    assert "scopes.routes" in refusal_message(decision, route, "GET")
    assert "HS-SCOPE-002" in refusal_message(decision, route, "GET")


def test_a_subclass_of_a_known_handler_is_not_mapped() -> None:
    """An extension's subclass may do anything its base does not: fail closed."""
    route = EMPTY.lookup("/my/contents", "my_ext.handlers.ContentsHandler")
    assert not route.mapped


def test_implemented_but_unlisted_method_is_refused_unimplemented_passes_to_405() -> None:
    implemented = frozenset({"GET", "POST"})
    route = EMPTY.lookup("/api/kernels", KERNELS, implemented)
    unimplemented = scope_decision(route, "PUT", ALL_SCOPES)
    assert unimplemented.allowed  # tornado answers 405
    assert unimplemented.rule_id == Rule.SCOPE_GRANTED
    weird = EMPTY.lookup("/api/kernels", KERNELS, frozenset({"GET", "POST", "PUT"}))
    decision = scope_decision(weird, "PUT", ALL_SCOPES)
    assert not decision
    assert decision.rule_id == Rule.SCOPE_UNMAPPED


def test_declared_scopes_count_only_for_hardened_server_handlers() -> None:
    declared = {"GET": ("metrics", "read")}
    ours = EMPTY.lookup("/hs/x", "hardened_server.audit.x.Handler", declared=declared)
    theirs = EMPTY.lookup("/ext/x", "evil_ext.Handler", declared=declared)
    assert ours.mapped
    assert ours.rule_for("GET").scopes == {"metrics:read"}  # type: ignore[union-attr]
    assert not theirs.mapped


# --- an extension's own auth_resource + @authorized ----------------------------------------------


def test_authorized_claims_map_an_extension_route_through_the_resource_table() -> None:
    claims = {"GET": ("contents", "read"), "PUT": ("contents", "write")}
    route = EMPTY.lookup(
        "/ext/doc", "ext.DocHandler", frozenset({"GET", "PUT"}), authorized=claims
    )
    assert route.source == SOURCE_AUTHORIZED
    assert route.rule_for("GET").scopes == {"contents:read"}  # type: ignore[union-attr]
    assert route.rule_for("HEAD").scopes == {"contents:read"}  # type: ignore[union-attr]
    assert route.rule_for("PUT").scopes == {"contents:write"}  # type: ignore[union-attr]
    assert scope_allows(route, "GET", frozenset({"contents:read"}))
    assert not scope_allows(route, "PUT", frozenset({"contents:read"}))


def test_every_claimable_pair_needs_a_scope() -> None:
    """No extension gets "any logged-in principal" by naming a resource."""
    for pair in AUTHORIZED_CLAIMS:
        assert RESOURCE_SCOPES[pair], pair
    for resource in ("api", "identity", "csp", "navigation", "frontend", "extensions", "metrics"):
        assert not any(r == resource for r, _ in AUTHORIZED_CLAIMS), resource


@pytest.mark.parametrize(
    "claim",
    [("gizmos", "read"), ("api", "read"), ("identity", "read"), ("contents", "execute")],
)
def test_unreviewed_claims_leave_the_route_unmapped(claim: tuple[str, str]) -> None:
    route = EMPTY.lookup("/ext/x", "ext.X", frozenset({"GET"}), authorized={"GET": claim})
    assert route.source == SOURCE_UNMAPPED
    assert not scope_allows(route, "GET", ALL_SCOPES)


def test_a_method_without_a_reviewed_claim_is_refused_on_an_authorized_route() -> None:
    route = EMPTY.lookup(
        "/ext/x",
        "ext.X",
        frozenset({"GET", "POST"}),
        authorized={"GET": ("contents", "read"), "POST": ("gizmos", "write")},
    )
    assert route.source == SOURCE_AUTHORIZED
    decision = scope_decision(route, "POST", ALL_SCOPES)
    assert not decision
    assert decision.rule_id == Rule.SCOPE_UNMAPPED


def test_policy_and_builtin_entries_win_over_authorized_claims() -> None:
    claims = {"GET": ("contents", "read")}
    mapped = RouteMap({"/ext/x": {"GET": ("admin",)}}).lookup("/ext/x", "ext.X", authorized=claims)
    assert mapped.source == SOURCE_POLICY
    assert not scope_allows(mapped, "GET", frozenset({"contents:read"}))
    builtin = EMPTY.lookup("/api/kernels", KERNELS, authorized={"POST": ("contents", "read")})
    assert builtin.source == SOURCE_BUILTIN


# --- the policy's scopes.routes -----------------------------------------------------------------


def policy_with(doc: dict[str, Any]) -> Any:
    return build_policy([default_layer(), parse_layer("user.toml", doc)])


def test_policy_maps_an_extension_route_and_head_follows_get() -> None:
    policy = policy_with({"scopes": {"routes": {"/hello/(.*)": {"GET": "contents:read"}}}})
    route = RouteMap(policy.scopes.routes).lookup("/hello/(.*)", "hello.Handler")
    assert route.source == SOURCE_POLICY
    assert route.rule_for("GET").scopes == {"contents:read"}  # type: ignore[union-attr]
    assert route.rule_for("HEAD").scopes == {"contents:read"}  # type: ignore[union-attr]
    assert route.rule_for("POST") is None
    assert not scope_allows(route, "POST", ALL_SCOPES)


def test_policy_star_method_and_lists_of_scopes() -> None:
    policy = policy_with(
        {"scopes": {"routes": {"/x": {"*": ["kernels:execute", "contents:write"], "get": []}}}}
    )
    route = RouteMap(policy.scopes.routes).lookup("/x", "ext.Handler")
    assert route.rule_for("GET").scopes == frozenset()  # type: ignore[union-attr]
    assert route.rule_for("DELETE").scopes == {"kernels:execute", "contents:write"}  # type: ignore[union-attr]
    assert not scope_allows(route, "PUT", frozenset({"kernels:execute"}))
    assert scope_allows(route, "PUT", frozenset({"kernels:execute", "contents:write"}))


def test_policy_entry_overrides_a_builtin_route() -> None:
    policy = policy_with({"scopes": {"routes": {"/api/status": {"GET": "admin"}}}})
    rmap = RouteMap(policy.scopes.routes)
    route = rmap.lookup("/api/status", "jupyter_server.services.api.handlers.APIStatusHandler")
    assert route.source == SOURCE_POLICY
    assert not scope_allows(route, "GET", frozenset({"contents:read"}))


@pytest.mark.parametrize(
    ("routes", "fragment"),
    [
        ({"hello": {"GET": "contents:read"}}, "starts with '/'"),
        ({"/hello$": {"GET": "contents:read"}}, "trailing '$'"),
        ({"/hel(lo": {"GET": "contents:read"}}, "regular expression"),
        ({"/hello": {"FETCH": "contents:read"}}, "not one of GET"),
        ({"/hello": {"OPTIONS": "contents:read"}}, "not one of GET"),
        ({"/hello": {"GET": "contents:raed"}}, "unknown scope 'contents:raed'"),
        ({"/hello": {"GET": 3}}, "a scope name or a list"),
        ({"/hello": {}}, "a table of methods"),
        ({"/hello": "contents:read"}, "a table of methods"),
        ({"/hello": {"GET": "contents:read", "get": "admin"}}, "given twice"),
        ("contents:read", "a table of route patterns"),
    ],
)
def test_bad_scopes_routes_names_the_key_and_the_fix(routes: Any, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_layer("user.toml", {"scopes": {"routes": routes}})
    text = str(info.value)
    assert "user.toml" in text
    assert "scopes.routes" in text
    assert fragment in text
    assert info.value.fix


def test_unscoped_entry_is_a_loosening_a_scoped_one_a_change_to_review() -> None:
    scoped = policy_with({"scopes": {"routes": {"/hello": {"GET": "contents:read"}}}})
    unscoped = policy_with({"scopes": {"routes": {"/hello": {"GET": [], "PUT": "admin"}}}})
    default = build_policy([default_layer()])
    base = default.values["scopes.routes"]
    assert base == {}
    assert loosening_verb("scopes.routes", base, base) == ""
    assert loosening_verb("scopes.routes", scoped.values["scopes.routes"], base).startswith(
        "CHANGED"
    )
    assert loosening_verb("scopes.routes", unscoped.values["scopes.routes"], base) == "LOOSENED"
    assert unscoped_entries(unscoped.values["scopes.routes"]) == ["/hello GET"]


def test_client_event_schemas_is_a_list_that_loosens_when_it_grows() -> None:
    policy = policy_with({"scopes": {"client_event_schemas": ["https://e.example/x/v1"]}})
    assert policy.scopes.client_event_schemas == ("https://e.example/x/v1",)
    default = build_policy([default_layer()]).values["scopes.client_event_schemas"]
    assert default == ()
    assert (
        loosening_verb(
            "scopes.client_event_schemas", policy.values["scopes.client_event_schemas"], default
        )
        == "LOOSENED"
    )
    with pytest.raises(PolicyError, match=r"scopes\.client_event_schemas"):
        parse_layer("user.toml", {"scopes": {"client_event_schemas": ["has space"]}})


# --- properties ---------------------------------------------------------------------------------

scope_sets = st.frozensets(st.sampled_from(SCOPES))
handlers = st.sampled_from([*sorted(BUILTIN_HANDLERS), "ext.Unknown"])
methods = st.sampled_from(METHODS)
implemented_sets = st.frozensets(st.sampled_from(METHODS))


@given(handlers, methods, scope_sets, implemented_sets)
def test_fast_path_agrees_with_the_recorded_decision(
    handler: str, method: str, granted: frozenset[str], implemented: frozenset[str]
) -> None:
    route = EMPTY.lookup("/p", handler, implemented)
    assert scope_allows(route, method, granted) == scope_decision(route, method, granted).allowed


@given(handlers, methods, scope_sets, scope_sets)
def test_more_scopes_never_lose_access(
    handler: str, method: str, granted: frozenset[str], extra: frozenset[str]
) -> None:
    route = EMPTY.lookup("/p", handler)
    if scope_allows(route, method, granted):
        assert scope_allows(route, method, granted | extra)


@given(handlers, methods)
def test_admin_may_do_everything_mapped_and_nothing_unmapped(handler: str, method: str) -> None:
    route = EMPTY.lookup("/p", handler)
    if route.rule_for(method) is not None:
        assert scope_allows(route, method, frozenset({ADMIN}))
    if not route.mapped:
        assert not scope_allows(route, method, ALL_SCOPES)


@given(handlers, methods, scope_sets)
def test_a_denial_names_a_scope_the_principal_lacks(
    handler: str, method: str, granted: frozenset[str]
) -> None:
    route = EMPTY.lookup("/p", handler)
    decision = scope_decision(route, method, granted)
    if not decision and decision.rule_id == Rule.SCOPE_MISSING:
        rule = route.rule_for(method)
        assert rule is not None
        missing = rule.scopes - granted
        assert missing
        assert ADMIN not in granted
        assert all(name in decision.reason for name in missing)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode), scope_sets)
def test_client_event_decision_never_raises_and_allows_only_listed(
    body: bytes, listed: frozenset[str]
) -> None:
    decision = client_event_decision(body, listed)
    if decision:
        assert json.loads(body)["schema_id"] in listed


def test_client_event_decision_examples() -> None:
    listed = frozenset({"https://e.example/ok/v1"})
    ok = json.dumps({"schema_id": "https://e.example/ok/v1", "version": "1", "data": {}})
    server = json.dumps(
        {"schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1"}
    )
    assert client_event_decision(ok.encode(), listed)
    refused = client_event_decision(server.encode(), listed)
    assert not refused
    assert refused.rule_id == Rule.SCOPE_EVENT_SCHEMA
    assert "contents_service" in refused.reason
    assert not client_event_decision(b"not json", listed)
    assert not client_event_decision(b'{"schema_id": 3}', listed)
    assert not client_event_decision(b"[]", listed)
    forged = json.dumps({"schema_id": "x\n[W 2026 ServerApp] forged"}).encode()
    assert "\n" not in client_event_decision(forged, listed).reason


# --- the Authorizer and prepare() agree ---------------------------------------------------------


def _authorized_calls(cls: type) -> dict[str, tuple[str, str]]:
    """method -> (resource, action) that jupyter_server's ``@authorized`` will ask, read off the
    decorator's closure (explicit arguments) or its defaults (auth_resource, HTTP method)."""
    from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION

    out = {}
    for method in METHODS:
        func = getattr(cls, method.lower(), None)
        layer, seen = func, 0
        while layer is not None and seen < 16:
            code = getattr(layer, "__code__", None)
            if code is not None and code.co_qualname.startswith("authorized."):
                free = inspect.getclosurevars(layer).nonlocals
                resource = free.get("resource") or cls.auth_resource
                action = free.get("action")
                if not isinstance(action, str):
                    action = HTTP_METHOD_TO_AUTH_ACTION[method]
                out[method] = (resource, action)
                break
            layer, seen = getattr(layer, "__wrapped__", None), seen + 1
    return out


# Handlers that call ``self.authorizer.is_authorized`` in their own code (not a decorator).
IN_CODE_CALLS = {
    KERNEL_WS: ("GET", "kernels", "execute"),
    "jupyter_server.services.events.handlers.SubscribeWebsocket": ("GET", "events", "execute"),
    "jupyter_server_terminals.handlers.TermSocket": ("GET", "terminals", "execute"),
    "jupyter_lsp.handlers.LanguageServerWebSocketHandler": ("GET", "lsp", "execute"),
}


# Where the route map asks for more than the handler's own @authorized: jupyter_server files
# resolvePath under its "api" resource, but it answers whether a path exists (a contents read).
STRICTER_IN_PREPARE = {("jupyter_server.services.api.handlers.PathResolverHandler", "GET")}


def test_every_authorized_method_asks_what_prepare_already_checked() -> None:
    """For every built-in handler, the (resource, action) ``@authorized`` asks resolves to
    exactly the scopes the route map requires of that method (the listed exceptions: a subset),
    so the Authorizer never refuses what prepare() let through, nor lets through what it
    refused."""
    mismatches = []
    checked = 0
    for name in BUILTIN_HANDLERS:
        module, _, qualname = name.rpartition(".")
        cls = getattr(importlib.import_module(module), qualname)
        route = EMPTY.lookup("/p", name)
        calls = _authorized_calls(cls)
        if name in IN_CODE_CALLS:
            method, resource, action = IN_CODE_CALLS[name]
            calls[method] = (resource, action)
        for method, (resource, action) in calls.items():
            rule = route.rule_for(method)
            assert rule is not None, (name, method)
            asked = authorizer_scopes(resource, action, route, method)
            assert asked is not None, (name, method, resource, action)
            if (name, method) in STRICTER_IN_PREPARE:
                assert asked < rule.scopes, (name, method)
            elif asked != rule.scopes:
                mismatches.append((name, method, resource, action, asked, rule.scopes))
            checked += 1
    assert not mismatches
    assert checked >= 40


def test_authorizer_refuses_unknown_resources_unless_the_route_is_policy_mapped() -> None:
    builtin = EMPTY.lookup("/api/me", "jupyter_server.services.api.handlers.IdentityHandler")
    assert authorizer_scopes("made-up", "read", builtin, "GET") is None
    assert authorizer_scopes("contents", "write", builtin, "GET") == {"contents:write"}
    mapped = RouteMap({"/hello": {"GET": ("frontend:read",)}}).lookup("/hello", "ext.H")
    assert authorizer_scopes("hello", "read", mapped, "GET") == {"frontend:read"}
    assert authorizer_scopes("hello", "read", mapped, "POST") is None


def test_hardened_authorizer_answers_from_the_table() -> None:
    from types import SimpleNamespace

    from hardened_server.enforcement.identity.authorizer import HardenedAuthorizer

    authorizer = HardenedAuthorizer()
    reader = SimpleNamespace(hs_scopes=frozenset({"contents:read"}))
    nobody = SimpleNamespace()
    handler = SimpleNamespace(
        _hs_scopes=EMPTY.lookup("/api/contents", CONTENTS), request=SimpleNamespace(method="GET")
    )
    assert authorizer.is_authorized(handler, reader, "read", "contents")
    assert not authorizer.is_authorized(handler, reader, "write", "contents")
    assert not authorizer.is_authorized(handler, reader, "execute", "kernels")
    assert not authorizer.is_authorized(handler, nobody, "read", "contents")
    assert authorizer.is_authorized(handler, nobody, "read", "api")  # any principal
    assert not authorizer.is_authorized(handler, reader, "read", "no-such-resource")
    assert has_scopes(SimpleNamespace(hs_scopes=frozenset({ADMIN})), frozenset({"terminals"}))


def test_admin_does_not_imply_audit_read() -> None:
    """Issue #19: under JupyterHub the audited user is ``admin`` of their own server (the hub
    grants ALL_SCOPES); the evidence about them is theirs only when granted by name."""
    from types import SimpleNamespace

    from hardened_server.policy.scopes import AUDIT_READ, has_scope

    admin = SimpleNamespace(hs_scopes=frozenset({ADMIN}))
    reader = SimpleNamespace(hs_scopes=frozenset({AUDIT_READ}))
    assert AUDIT_READ in SCOPES
    assert AUDIT_READ not in ALL_SCOPES
    assert not has_scope(admin, AUDIT_READ)
    assert not has_scopes(admin, frozenset({AUDIT_READ, "terminals"}))
    assert has_scope(reader, AUDIT_READ)
    assert has_scopes(SimpleNamespace(hs_scopes=ALL_SCOPES | {AUDIT_READ}), frozenset({AUDIT_READ}))


def test_describe_says_what_each_method_needs_for_audit_routes() -> None:
    from hardened_server.policy.scopemap import describe

    sessions = EMPTY.lookup("/api/sessions", SESSIONS, frozenset({"GET", "POST", "PUT"}))
    assert describe(sessions, ["GET", "POST", "PUT", "DELETE", "OPTIONS"]) == {
        "GET": "sessions:read",
        "POST": "kernels:execute+sessions:write",
        "PUT": "refused",
        "DELETE": "n/a",
    }
    status = EMPTY.lookup("/api/status", "jupyter_server.services.api.handlers.APIStatusHandler")
    assert describe(status, ["GET"]) == {"GET": "none"}
    assert describe(EMPTY.lookup("/hello", "ext.H"), ["GET"]) == {"*": "unmapped"}
