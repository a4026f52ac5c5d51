"""The shared CSP answers of :mod:`hardened_server.policy.csp`: the CSP3 fallback lookup, nonce
and hash sources, and which script sources are broad. The loader's floors, the static audit
(HS-CSP-1xx) and the live probes all ask these, so they are pinned once, here."""

from __future__ import annotations

import json

import pytest

from hardened_server.policy import csp
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import build_policy, default_layer, layer_from_bytes

# -- effective_directive: CSP3's directive fallback list ---------------------------------------


@pytest.mark.parametrize(
    ("directives", "name", "expected"),
    [
        ({"script-src": ("'self'",), "default-src": ("'none'",)}, "script-src",
         ("script-src", ("'self'",))),
        ({"default-src": ("'none'",)}, "object-src", ("default-src", ("'none'",))),
        ({"script-src": ("'self'",), "default-src": ("'none'",)}, "script-src-elem",
         ("script-src", ("'self'",))),
        ({"default-src": ("'none'",)}, "script-src-attr", ("default-src", ("'none'",))),
        ({"style-src": ("'self'",)}, "style-src-attr", ("style-src", ("'self'",))),
        # worker-src: child-src, then script-src, then default-src
        ({"script-src": ("'self'",), "default-src": ("'none'",)}, "worker-src",
         ("script-src", ("'self'",))),
        ({"child-src": ("blob:",), "script-src": ("'self'",)}, "worker-src",
         ("child-src", ("blob:",))),
        ({"child-src": ("'self'",), "default-src": ("'none'",)}, "frame-src",
         ("child-src", ("'self'",))),
        ({"img-src": ("data:",)}, "object-src", (None, None)),
        # base-uri and form-action never fall back to default-src
        ({"default-src": ("'none'",)}, "base-uri", (None, None)),
        ({"default-src": ("'none'",)}, "form-action", (None, None)),
    ],
)
def test_effective_directive_follows_the_csp3_fallback_list(directives, name, expected):
    assert csp.effective_directive(directives, name) == expected
    assert csp.effective(directives, name) == expected[1]


def test_every_fetch_directive_is_a_directive_and_falls_back_to_default_src():
    assert set(csp.FETCH_DIRECTIVES) <= set(csp.DIRECTIVES)
    for name, chain in csp.FALLBACK.items():
        assert chain[-1] == "default-src", name


# -- nonce and hash sources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "token", ["'nonce-abc123'", "'sha256-AbC='", "'sha384-x'", "'sha512-x'", "'NONCE-abc'"]
)
def test_nonce_and_hash_sources(token):
    assert csp.is_nonce_or_hash(token)
    assert csp.has_nonce_or_hash(["'self'", "'unsafe-inline'", token])


@pytest.mark.parametrize("token", ["'self'", "'unsafe-inline'", "'sha1-x'", "nonce-abc", "*"])
def test_other_sources_are_not_nonces_or_hashes(token):
    assert not csp.is_nonce_or_hash(token)
    assert not csp.has_nonce_or_hash([token])


# -- broad script sources: one answer for the loader and the audit ------------------------------

BROAD = [
    "*", "https://*", "*:*", "http://*:8080/js/", "HTTPS:", "http:", "data:", "Data:", "blob:",
    "filesystem:", "*.com",
    # CSP3 scheme-part matching: wss: matches https: URLs, ws: matches wss:, http: and https:
    "ws:", "wss:", "WSS:",
]
NOT_BROAD = [
    "'self'", "'none'", "'unsafe-inline'", "'sha256-AbC='", "'nonce-abc'",
    "https://cdn.example.com", "https://*.example.com", "*.example.com", "wss://kernels.example",
    "mediastream:",
]


@pytest.mark.parametrize("token", BROAD)
def test_broad_script_sources(token):
    assert csp.is_broad_script_source(token)


@pytest.mark.parametrize("token", NOT_BROAD)
def test_specific_script_sources_are_not_broad(token):
    assert not csp.is_broad_script_source(token)


def _load(script_src: list[str]):
    toml = f"[csp.page]\nscript-src = {json.dumps(script_src)}\n"
    return build_policy([default_layer(), layer_from_bytes("user.toml", toml.encode())])


@pytest.mark.parametrize("token", ["ws:", "wss:"])
def test_the_loader_refuses_a_websocket_scheme_in_script_src(token):
    """``script-src 'self' wss:`` loads script from any HTTPS host (CSP3 #match-schemes)."""
    with pytest.raises(PolicyError) as caught:
        _load(["'self'", token])
    assert caught.value.key == "csp.page.script-src"
    assert "below the floor" in caught.value.problem


def test_the_loader_accepts_a_wildcard_over_a_named_domain():
    policy = _load(["'self'", "https://*.example.com"])
    assert "https://*.example.com" in policy.csp["page"]["script-src"]
