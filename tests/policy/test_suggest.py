"""Drafts for unmapped routes (hardened_server/policy/suggest.py): what the start-up warning
prints and what ``hardened-server policy suggest`` writes. A draft is a valid policy layer, maps
exactly the routes given with the methods each handler implements, and is strict (admin) until
a person narrows it."""

from __future__ import annotations

from hardened_server.policy.loader import build_policy, default_layer, layer_from_bytes
from hardened_server.policy.scopemap import RouteMap, scope_allows
from hardened_server.policy.scopes import ADMIN, KNOWN_SCOPES
from hardened_server.policy.suggest import (
    UnmappedRoute,
    draft_layer,
    hint_entry,
    mapped_methods,
    toml_key,
)

ROUTES = [
    UnmappedRoute("/ext/items/(.*)", "ext.handlers.Items", ("GET", "HEAD", "POST", "DELETE")),
    UnmappedRoute("/ext/ws", "ext.handlers.Socket", ("GET",), websocket=True),
    UnmappedRoute(
        "/ext/known_hosts",
        "ext.handlers.Hosts",
        ("GET", "POST"),
        authorization={"GET": "ssh:read", "POST": "ssh:write"},
    ),
    UnmappedRoute("/ext/raw'quote", "ext.handlers.Raw", ("PUT",), undecorated=("PUT",)),
]


def _policy(text: str):
    return build_policy([default_layer(), layer_from_bytes("draft.toml", text.encode())])


def test_the_draft_is_a_valid_layer_mapping_exactly_the_routes_with_their_methods() -> None:
    text = draft_layer(ROUTES, header=["test"], keep_accepted=["/lsp/ws/(?P<language_server>.*)"])
    routes = _policy(text).scopes.routes
    assert set(routes) == {r.pattern for r in ROUTES}
    assert routes["/ext/items/(.*)"] == {
        "GET": (ADMIN,),
        "POST": (ADMIN,),
        "DELETE": (ADMIN,),
    }  # HEAD follows GET: not listed
    assert routes["/ext/ws"] == {"GET": (ADMIN,)}
    assert routes["/ext/raw'quote"] == {"PUT": (ADMIN,)}


def test_an_unreviewed_draft_opens_the_routes_to_admin_only() -> None:
    rmap = RouteMap(_policy(draft_layer(ROUTES)).scopes.routes)
    everything_else = frozenset(KNOWN_SCOPES - {ADMIN})
    for r in ROUTES:
        route = rmap.lookup(r.pattern, r.handler, frozenset(r.methods))
        for method in r.methods:
            assert not scope_allows(route, method, everything_else)
            assert scope_allows(route, method, frozenset({ADMIN}))


def test_the_draft_says_what_to_review() -> None:
    text = draft_layer(ROUTES, keep_accepted=["/lsp/ws/(?P<language_server>.*)"])
    assert "websocket of ext.handlers.Socket" in text
    assert "its @authorized asks: GET ssh:read, POST ssh:write" in text
    assert "PUT carry no authentication decorator" in text
    # the accept_undecorated proposal stays a comment, the list in force first
    block = text[text.index("# accept_undecorated = [") :]
    assert block.index("/lsp/ws/") < block.index("/ext/raw")
    assert "\naccept_undecorated" not in text


def test_an_empty_draft_says_so_and_is_valid() -> None:
    text = draft_layer([])
    assert "nothing to draft" in text
    assert _policy(text).scopes.routes == {}


def test_hint_names_the_methods_the_handler_has() -> None:
    assert hint_entry("/x", ("GET", "HEAD", "POST")) == (
        'scopes.routes = { "/x" = { GET = "admin", POST = "admin" } }'
    )
    assert mapped_methods(("HEAD",)) == ["HEAD"]
    assert toml_key(r"/a/(\d+)") == r"'/a/(\d+)'"
    assert toml_key("/a'b") == '"/a\'b"'
