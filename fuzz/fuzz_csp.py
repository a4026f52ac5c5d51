#!/usr/bin/env python3
"""atheris harness for :mod:`hardened_server.policy.csp`: the CSP builder, parser and floors.

The input is text (UTF-8; bytes that are not UTF-8 become lone surrogates), read three ways so
that a seed written as a CSP header means something to each:

1. **as a header**: :func:`csp.parse` must never raise and must return lower-case directive
   names and tokens free of ASCII whitespace and ``;``; if the parsed map is a valid policy
   (:func:`csp.make_policy`), its serialisation parses back to the same model;
2. **as a directive map**: each ``;``-separated record is ``name token token ...`` split on
   single spaces only, so a token can carry a tab, CR, LF, NUL, ``,`` or any non-ASCII
   character. :func:`csp.make_policy` either raises :class:`csp.CSPError` (never anything
   else) or returns a model whose header is printable ASCII, has one directive per ``;``, no
   CR/LF/NUL, and parses back to the same model (deduplicated, canonical order); every pair of
   adjacent tokens joined by an injection separator (``;``, space, ``,``, CR/LF, tab, NUL) is
   refused by :func:`csp.validate_source`; :func:`csp.merge` replaces exactly the overridden
   directives (a token ``false`` alone removes one);
3. **as a policy layer** for one route class (the last byte picks it): the map becomes a
   ``[csp.<class>]`` table loaded on top of the shipped default through the real loader
   (:func:`loader.parse_layer`, :func:`loader.build_policy`). It is either refused with a
   :class:`PolicyError` naming a ``csp.<class>.<directive>`` key, or every route class's emitted
   header (:func:`headers.csp_for`, with template hashes and ``'unsafe-eval'`` where the server
   adds them) passes a reference floor check written here from the browser's point of view
   (CSP3 fallback chains for ``script-src-elem``/``-attr``, case-insensitive schemes, wildcard
   hosts), independent of :func:`csp.floor_problems`.

Run: ``./fuzz/fuzz_csp.py -dict=fuzz/dicts/csp.dict -max_total_time=60 SCRATCH fuzz/corpus/csp``.
Replayed without atheris by ``tests/verification/test_fuzz_corpus.py``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run as ./fuzz/fuzz_csp.py from a checkout
    sys.path.insert(0, str(_REPO))

if __name__ == "__main__":
    import atheris

    with atheris.instrument_imports(include=["hardened_server"]):
        from hardened_server.policy import csp
        from hardened_server.policy.decisions import ROUTE_CLASSES
        from hardened_server.policy.errors import PolicyError
        from hardened_server.policy.headers import csp_for
        from hardened_server.policy.loader import build_policy, default_layer, parse_layer
else:  # imported by the test suite: no atheris needed
    from hardened_server.policy import csp
    from hardened_server.policy.decisions import ROUTE_CLASSES
    from hardened_server.policy.errors import PolicyError
    from hardened_server.policy.headers import csp_for
    from hardened_server.policy.loader import build_policy, default_layer, parse_layer

DEFAULT = default_layer()
SCRIPT_HASHES = ("'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",)
INJECTION_SEPARATORS = (";", " ", ",", "\r\n", "\n", "\t", "\x00", "\x0c")
_ASCII_WS = " \t\n\x0c\r"

# --------------------------------------------------------------------------------------------
# The browser's view of a header (CSP3 §2.2.1 "parse a serialized CSP"), written independently
# of csp.parse: split on ";", then on ASCII whitespace; names are ASCII case-insensitive; the
# first occurrence of a directive wins.


def browser_parse(header: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for part in header.split(";"):
        tokens = [t for t in _split_ascii_ws(part) if t]
        if not tokens:
            continue
        name = tokens[0].lower()
        if name not in out:
            out[name] = tuple(tokens[1:])
    return out


def _split_ascii_ws(text: str) -> list[str]:
    tokens, cur = [], []
    for c in text:
        if c in _ASCII_WS:
            tokens.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    tokens.append("".join(cur))
    return tokens


def _effective(d: dict[str, tuple[str, ...]], *chain: str) -> tuple[str, ...] | None:
    for name in chain:
        if name in d:
            return d[name]
    return None


# ws: and wss: match http(s) URLs under CSP3 scheme-part matching (#match-schemes)
_BROAD_SCHEMES = {"http", "https", "data", "blob", "filesystem", "ws", "wss"}


def _is_broad_script_source(token: str) -> bool:
    """A source that lets scripts come from anywhere (or from content an attacker makes)."""
    low = token.lower()
    if low == "*":
        return True
    if low.endswith(":") and low[:-1] in _BROAD_SCHEMES:
        return True  # "https:", "HTTPS:", "data:" ...
    if low.startswith("'"):
        return False  # keywords, hashes, nonces
    rest = low.split("://", 1)[1] if "://" in low else low
    host = rest.split("/", 1)[0]
    host = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    if host == "*":
        return True  # "https://*", "*:*", "http://*:80"
    # "*.com": every host under a single-label suffix
    return host.startswith("*.") and "." not in host[2:]


def floor_violations(route_class: str, header: str) -> list[str]:
    """What a browser would allow beyond the class's floor (SECURITY.md, CSP floors)."""
    d = browser_parse(header)
    problems = []
    ancestors = d.get("frame-ancestors")
    if ancestors is None or not {a.lower() for a in ancestors} <= {"'none'", "'self'"}:
        problems.append("frame-ancestors")
    objects = _effective(d, "object-src", "default-src")
    if objects is None or [o.lower() for o in objects] != ["'none'"]:
        problems.append("object-src")
    chains = (
        ("script-src", "default-src"),
        ("script-src-elem", "script-src", "default-src"),
        ("script-src-attr", "script-src", "default-src"),
    )
    for chain in chains:
        scripts = _effective(d, *chain)
        if scripts is None:
            problems.append(f"{chain[0]} unrestricted")
            continue
        low = [s.lower() for s in scripts]
        if "'unsafe-inline'" in low:
            problems.append(f"{chain[0]} 'unsafe-inline'")
        if any(_is_broad_script_source(s) for s in scripts):
            problems.append(f"{chain[0]} broad source")
    if route_class in csp.DOCUMENT_CLASSES:
        base = d.get("base-uri")
        if base is None or not {b.lower() for b in base} <= {"'none'", "'self'"}:
            problems.append("base-uri")
    if route_class in ("api", "error") and [s.lower() for s in d.get("default-src", ())] != [
        "'none'"
    ]:
        problems.append("default-src")
    if route_class in csp.USER_CONTENT_CLASSES:
        sandbox = d.get("sandbox")
        if sandbox is None or "allow-same-origin" in {s.lower() for s in sandbox}:
            problems.append("sandbox")
    return problems


# --------------------------------------------------------------------------------------------


def check_header_shape(header: str, model: csp.Directives) -> None:
    assert header.isascii(), header
    assert header.isprintable(), header
    assert not any(c in header for c in "\r\n\x00"), header
    assert header.count(";") == max(len(model) - 1, 0), (header, dict(model))
    assert browser_parse(header) == dict(model), (header, dict(model))
    assert csp.parse(header) == dict(model), (header, dict(model))


def check_as_header(text: str) -> None:
    parsed = csp.parse(text)
    for name, tokens in parsed.items():
        assert name, text
        assert name == name.lower(), (text, name)
        for token in (name, *tokens):
            assert ";" not in token, (text, token)
            assert not any(c in token for c in _ASCII_WS), (text, token)
    try:
        model = csp.make_policy(parsed)
    except csp.CSPError:
        return
    check_header_shape(csp.serialize(model), model)


def as_directive_map(text: str) -> list[tuple[str, list[str]]]:
    records = []
    for record in text.split(";"):
        fields = record.strip(" ").split(" ")
        if fields and fields[0]:
            records.append((fields[0], [f for f in fields[1:] if f]))
    return records


def check_as_map(records: list[tuple[str, list[str]]]) -> None:
    directives: dict[str, list[str]] = {}
    for name, tokens in records:
        directives.setdefault(name, tokens)
    try:
        model = csp.make_policy(directives)
    except csp.CSPError:
        model = None
    if model is not None:
        assert set(model) == set(directives), (directives, dict(model))
        for name, tokens in directives.items():
            assert model[name] == tuple(dict.fromkeys(tokens)), (name, tokens, model[name])
        check_header_shape(csp.serialize(model), model)
    for name, tokens in records[:4]:
        for left, right in itertools.pairwise(tokens):
            for sep in INJECTION_SEPARATORS:
                try:
                    csp.validate_source(name, left + sep + right)
                except csp.CSPError:
                    continue
                raise AssertionError(("injection accepted", name, left + sep + right))
    # merge: the override replaces whole directives; "false" alone removes one.
    base = DEFAULT_MODELS["page"]
    override: dict[str, tuple[str, ...] | None] = {}
    for name, tokens in records:
        override.setdefault(name, None if tokens == ["false"] else tuple(tokens))
    try:
        merged = csp.merge(base, override)
    except csp.CSPError:
        return
    for name in set(base) | set(override):
        if name in override:
            want = override[name]
            assert merged.get(name) == (None if want is None else tuple(dict.fromkeys(want)))
        else:
            assert merged[name] == base[name], name


def check_as_layer(records: list[tuple[str, list[str]]], route_class: str) -> None:
    table: dict[str, object] = {}
    for name, tokens in records:
        if tokens == ["false"]:
            table.setdefault(name, False)
        elif tokens == ["true"]:
            table.setdefault(name, True)
        else:
            table.setdefault(name, tokens)
    try:
        layer = parse_layer("fuzz.toml", {"csp": {route_class: table}})
        policy = build_policy([DEFAULT, layer])
    except PolicyError as exc:
        refused: PolicyError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.source in ("fuzz.toml", DEFAULT.source), refused
        assert refused.key.startswith(f"csp.{route_class}"), refused
        assert refused.problem, refused
        return
    for rc in ROUTE_CLASSES:
        assert csp.floor_problems(rc, policy.csp[rc]) == [], rc
        for unsafe_eval in (False, True) if rc == "page" else (False,):
            header = csp_for(policy, rc, "/", script_hashes=SCRIPT_HASHES, unsafe_eval=unsafe_eval)
            assert header.isascii(), header
            assert header.isprintable(), header
            assert csp.parse(header) == browser_parse(header), header
            problems = floor_violations(rc, header)
            assert not problems, (route_class, rc, header, problems)


DEFAULT_MODELS = build_policy([DEFAULT]).csp


def TestOneInput(data: bytes) -> None:  # the name atheris and OSS-Fuzz expect
    if not data:
        return
    text = data.decode("utf-8", "surrogateescape")
    check_as_header(text)
    records = as_directive_map(text)
    check_as_map(records)
    check_as_layer(records, ROUTE_CLASSES[data[-1] % len(ROUTE_CLASSES)])


def main() -> None:
    atheris.enabled_hooks.add("str")
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
