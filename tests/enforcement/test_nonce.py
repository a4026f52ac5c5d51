"""enforcement/nonce.py and the output transform: a per-response nonce on a
``routes.script_nonce`` route, in that response's CSP only (issue #16)."""

from __future__ import annotations

from jupyter_server.base.call_context import CallContext
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from hardened_server.enforcement.nonce import (
    NONCE_ATTR,
    current_nonce,
    new_nonce,
    nonce_filter,
    nonce_of,
)
from hardened_server.enforcement.runtime import PolicyRuntime
from hardened_server.enforcement.transform import transform_for
from hardened_server.policy import csp
from hardened_server.policy.loader import build_policy, default_layer, layer_from_bytes

VOILA = "/voila/render/(.*)"


def _request(path: str = "/voila/render/a.ipynb") -> HTTPServerRequest:
    return HTTPServerRequest(
        start_line=RequestStartLine("GET", path, "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "127.0.0.1"}),
    )


def _runtime(listed: bool = True) -> PolicyRuntime:
    toml = f"[routes]\nscript_nonce = ['{VOILA}']\n" if listed else ""
    policy = build_policy([default_layer(), layer_from_bytes("voila.toml", toml.encode())])
    return PolicyRuntime(policy, "/")


def _respond(runtime: PolicyRuntime, nonce: str | None, status: int = 200) -> HTTPHeaders:
    request = _request()
    request.hs_route_class = "page"
    if nonce is not None:
        setattr(request, NONCE_ATTR, nonce)
    transform = transform_for(runtime)(request)
    _, headers, _ = transform.transform_first_chunk(
        status, HTTPHeaders({"Cache-Control": "max-age=60"}), b"", True
    )
    return headers


def test_new_nonces_are_144_bits_and_never_repeat():
    nonces = {new_nonce() for _ in range(1000)}
    assert len(nonces) == 1000
    for nonce in nonces:
        assert len(nonce) == 24
        csp.nonce_source(nonce)  # valid for a header


def test_the_response_csp_carries_its_own_nonce_and_is_not_stored():
    runtime = _runtime()
    a, b = new_nonce(), new_nonce()
    first, second = _respond(runtime, a), _respond(runtime, b)
    script_src = csp.parse(first["Content-Security-Policy"])["script-src"]
    assert f"'nonce-{a}'" in script_src
    assert f"'nonce-{b}'" not in first["Content-Security-Policy"]
    assert f"'nonce-{b}'" in csp.parse(second["Content-Security-Policy"])["script-src"]
    assert "'unsafe-inline'" not in script_src
    assert "'strict-dynamic'" not in script_src
    assert first["Cache-Control"] == "no-store"


def test_a_response_without_a_nonce_gets_the_plain_page_csp():
    runtime = _runtime()
    headers = _respond(runtime, None)
    assert headers["Content-Security-Policy"] == runtime.current.csp["page"]
    assert "'nonce-" not in headers["Content-Security-Policy"]


def test_an_error_response_of_a_nonce_route_gets_no_nonce():
    headers = _respond(_runtime(), new_nonce(), status=500)
    assert "'nonce-" not in headers["Content-Security-Policy"]
    assert headers["Content-Security-Policy"] == _runtime().current.csp["error"]


def test_the_compiled_route_knows_whether_it_gets_a_nonce():
    assert _runtime().current.route(VOILA, frozenset()).script_nonce
    assert not _runtime(listed=False).current.route(VOILA, frozenset()).script_nonce


class _Handler:
    def __init__(self, nonce: str | None) -> None:
        self.request = _request()
        if nonce is not None:
            setattr(self.request, NONCE_ATTR, nonce)


def test_the_template_filter_marks_trusted_text_with_the_current_nonce():
    nonce = new_nonce()
    CallContext.set(CallContext.JUPYTER_HANDLER, _Handler(nonce))
    try:
        assert current_nonce() == nonce
        assert nonce_filter("<script>voila_process(1, 2)</script>") == (
            f'<script nonce="{nonce}">voila_process(1, 2)</script>'
        )
    finally:
        CallContext.set(CallContext.JUPYTER_HANDLER, None)


def test_without_a_nonce_the_filter_changes_nothing_so_the_script_stays_blocked():
    assert current_nonce() is None  # no request: a page rendered ahead of time
    assert nonce_filter("<script>x()</script>") == "<script>x()</script>"
    CallContext.set(CallContext.JUPYTER_HANDLER, _Handler(None))
    try:
        assert nonce_filter("<script>x()</script>") == "<script>x()</script>"
    finally:
        CallContext.set(CallContext.JUPYTER_HANDLER, None)


def test_nonce_of_ignores_anything_but_a_string():
    request = _request("/")
    assert nonce_of(request) is None
    setattr(request, NONCE_ATTR, 42)
    assert nonce_of(request) is None
