"""Log hygiene: a token never reaches a log line, wherever it hides, and client input never
forges a log line (research notes §2.9: ``next=/tree%3Ftoken%3Dx`` logged verbatim; §2.8:
``CSPReportHandler`` forged-line observation)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardened_server.trail.scrub import (
    REDACTED,
    ScrubLogFilter,
    escape_log_value,
    install_log_scrubbing,
    scrub,
)

TOKEN = "6c1f0e2b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817"
ODD_SECRET = "p@ss/w0rd+with spaces&more"  # characters that change under percent-encoding


def _absent(secret: str, text: str) -> bool:
    """Neither the secret nor any percent-decoding of the text reveals its bytes."""
    layer = text
    for _ in range(6):
        if secret in layer:
            return False
        layer = unquote(layer)
    return secret not in layer


# Every place a token shows up in jupyter_server / tornado / proxy logs. Structural cases are
# scrubbed WITHOUT telling scrub() the secret.
STRUCTURAL = {
    "query": f"GET /lab?token={TOKEN} 200",
    "query upper-case name": f"GET /lab?TOKEN={TOKEN}",
    "query after others": f"GET /api/kernels?a=1&b=2&token={TOKEN}&c=3",
    "query auth": f"GET /x?auth={TOKEN}",
    "query key": f"GET /x?api_key={TOKEN}",
    "query code": f"GET /oauth_callback?code={TOKEN}&state=xyz",
    "query state": f"GET /oauth_callback?state={TOKEN}",
    "query xsrf": f"POST /login?_xsrf={TOKEN}",
    "query password": f"POST /login?password={TOKEN}",
    "percent-encoded name": f"GET /lab?%74oken={TOKEN}",
    "matrix parameter": f"GET /files/x;jsessionid={TOKEN}",
    "nested in next": f"GET /login?next=/lab%3Ftoken%3D{TOKEN}",
    "nested after other param": f"GET /login?next=/lab%3Fa%3D1%26token%3D{TOKEN}&x=1",
    "nested lower-case hex": f"GET /login?next=/lab%3ftoken%3d{TOKEN}",
    "double-encoded": f"GET /login?next=%252Flab%253Ftoken%253D{TOKEN}",
    "triple-encoded": f"GET /login?next=%25252Flab%25253Ftoken%25253D{TOKEN}",
    "nested unencoded": f"GET /login?next=/lab?token={TOKEN}",
    "encoded path": f"GET /lab%3Ftoken%3D{TOKEN} 404",
    "double-encoded path": f"GET /lab%253Ftoken%253D{TOKEN} 404",
    "fragment": f"https://h/lab#token={TOKEN}",
    "fragment after route": f"https://h/lab#/tree?x=1&access_token={TOKEN}",
    "referer header": f"Referer: https://h.example/lab?token={TOKEN}",
    "referer nested": f"referer=https://h/login%3Fnext%3D%252Flab%253Ftoken%253D{TOKEN}",
    "access log referer": f"403 GET /api (u@1.2.3.4) 2.0ms referer=http://h/lab?token={TOKEN}",
    "authorization token": f"Authorization: token {TOKEN}",
    "authorization bearer": f"Authorization: Bearer {TOKEN}",
    "authorization basic": f"Authorization: Basic {TOKEN}",
    "authorization bare": f"Authorization: {TOKEN}",
    "authorization lower-case": f"authorization: token {TOKEN}",
    "proxy-authorization": f"Proxy-Authorization: Basic {TOKEN}",
    "header dict repr": f"{{'Host': 'h', 'Authorization': 'token {TOKEN}'}}",
    "header json dump": f'{{\n  "Host": "h",\n  "Authorization": "Bearer {TOKEN}"\n}}',
    "bearer in prose": f"retrying with Bearer {TOKEN} after 401",
    "cookie header": f"Cookie: username-127-0-0-1-8888={TOKEN}; _xsrf=2|ab|cd|ef",
    "cookie second value": f"Cookie: theme=dark; session={TOKEN}",
    "set-cookie": f"Set-Cookie: username-h={TOKEN}; Path=/; HttpOnly; SameSite=Lax",
    "cookie dict repr": f"{{'Cookie': 'a=b; jupyter={TOKEN}'}}",
    "xsrf header": f"X-XSRFToken: {TOKEN}",
    "api key header": f"X-Api-Key: {TOKEN}",
    "json body password": f'{{"username": "bob", "password": "{TOKEN}"}}',
    "json body token": f'{{"token": "{TOKEN}"}}',
    "form body": f"password={TOKEN}&_xsrf={TOKEN}",
    "websocket url": f"ws://h/api/kernels/k/channels?session_id=s&token={TOKEN}",
}


@pytest.mark.parametrize("text", STRUCTURAL.values(), ids=STRUCTURAL.keys())
def test_structural_places_are_scrubbed(text: str) -> None:
    out = scrub(text)
    assert _absent(TOKEN, out), out
    assert REDACTED in out or "[secret]" in unquote(out)
    assert scrub(out) == out  # idempotent


LITERAL = {
    "bare": f"serving at http://127.0.0.1:8888/ with {TOKEN}",
    "banner url path": f"http://127.0.0.1:8888/lab/{TOKEN}",
    "in a json value with innocent key": f'{{"note": "{TOKEN}"}}',
    "percent-encoded": f"GET /x?note={quote(ODD_SECRET, safe='')}",
    "percent-encoded lower hex": "GET /x/" + quote(ODD_SECRET, safe="").lower(),
    "double-encoded": "GET /x/" + quote(quote(ODD_SECRET, safe=""), safe=""),
    "raw odd": f"login with {ODD_SECRET} ok",
}


@pytest.mark.parametrize("text", LITERAL.values(), ids=LITERAL.keys())
def test_known_secrets_are_scrubbed_in_any_encoding(text: str) -> None:
    out = scrub(text, [TOKEN, ODD_SECRET])
    assert _absent(TOKEN, out), out
    assert _absent(ODD_SECRET, out), out


BENIGN = [
    "200 GET /api/kernels (alice@127.0.0.1) 1.20ms",
    "Kernel started: 0b6f4c0e-1e1b-4a52-a06a-5c4b6b52a1f2",
    "Serving notebooks from local directory: /home/alice/work",
    "policy denial rule=HS-HOST-002 class=api method=GET path=/api/contents peer=10.0.0.1",
    "GET /lab/tree/notes.ipynb?reset 200",
    "Authorization failed for user bob",
    "token authentication is enabled",
]


@pytest.mark.parametrize("text", BENIGN)
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert scrub(text, [TOKEN]) == text


def test_short_secrets_are_not_searched_literally() -> None:
    assert scrub("a cat sat", ["a"]) == "a cat sat"


def test_large_input_is_linear() -> None:
    """A logged 1 MB body (CSP reports may be 512 MiB) must not hang the logging thread."""
    blob = ("x" * 1_000_000) + f" token={TOKEN} " + ("'a':\"" * 20_000) + "%" * 10_000
    start = time.perf_counter()
    out = scrub(blob, [TOKEN])
    assert time.perf_counter() - start < 5
    assert TOKEN not in out


@given(
    secret=st.from_regex(r"[A-Za-z0-9_-]{16,48}", fullmatch=True),
    template=st.sampled_from(
        [
            "GET /lab?token={s}",
            "GET /login?next={e}",
            "GET /login?next={ee}",
            "Authorization: token {s}",
            "Cookie: a={s}",
            "Referer: http://h/x?b=1&_xsrf={s}",
            "#access_token={s}",
        ]
    ),
)
def test_property_token_never_survives(secret: str, template: str) -> None:
    nested = "/lab?token=" + secret
    text = template.format(
        s=secret, e=quote(nested, safe=""), ee=quote(quote(nested, safe=""), safe="")
    )
    assert _absent(secret, scrub(text))


# -- escape_log_value ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "forged\n[E 2026 ServerApp] fake log line",
        "cr\r[I] fake",
        "nel\x85fake",
        "ls\u2028fake",
        "ps\u2029fake",
        "esc \x1b[31mred\x1b[0m",
        "nul\x00byte",
        "bidi \u202eenil ekaf",
        "zero\u200bwidth",
        "lone \ud800 surrogate",
    ],
)
def test_escape_log_value_keeps_one_line(raw: str) -> None:
    out = escape_log_value(raw)
    assert out.isprintable()
    assert len(out.splitlines()) == 1
    assert "\\" in out


def test_escape_log_value_keeps_readable_text() -> None:
    assert escape_log_value("café ünïcode 日本 ✓") == "café ünïcode 日本 ✓"
    assert escape_log_value("a\\nb") == "a\\\\nb"  # a literal backslash cannot fake an escape
    assert escape_log_value("x" * 100, limit=10) == "x" * 10 + "...[truncated]"


# -- the logging filter on a real logger -----------------------------------------------------------


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s %(name)s] %(message)s"))
    handler.addFilter(ScrubLogFilter(lambda: [TOKEN]))
    logger = logging.getLogger("tests.audit.scrub")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_filter_scrubs_message_and_args(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.info("302 GET %s (%s@%s) %.2fms", f"/login?next=/lab%3Ftoken%3D{TOKEN}", "", "::1", 1.5)
    logger.warning(f"literal in message {TOKEN}")
    logger.debug("headers: %s", {"Authorization": f"token {TOKEN}", "Cookie": f"_xsrf={TOKEN}"})
    logger.info("%(uri)s", {"uri": f"/lab?token={TOKEN}"})
    logger.info("%d requests", 5)
    out = stream.getvalue()
    assert _absent(TOKEN, out), out
    assert "1.50ms" in out
    assert "5 requests" in out
    assert len(out.splitlines()) == 5


def test_filter_defeats_the_csp_report_forged_line(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    body = "forged\n[E 2026-05-09 07:35:25.123 ServerApp] fake log line"
    logger.warning("Content security violation: %s", body)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "[WARNING tests.audit.scrub] Content security violation: forged\\x0a"
    )


def test_filter_keeps_server_multiline_messages(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.info("To access the server, open:\n    %s", f"http://127.0.0.1:8888/lab?token={TOKEN}")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert _absent(TOKEN, stream.getvalue())


def test_filter_scrubs_tracebacks_and_extra(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    try:
        raise ValueError(f"bad redirect https://h/lab?token={TOKEN}")
    except ValueError:
        logger.exception("request failed", extra={"uri": f"/x?token={TOKEN}"})
    out = stream.getvalue()
    assert "Traceback" in out
    assert _absent(TOKEN, out), out


def test_filter_survives_a_broken_format_string(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.info("%d items from %s", "not-a-number", f"/lab?token={TOKEN}")
    out = stream.getvalue()
    assert "%d items" in out
    assert _absent(TOKEN, out)


def test_install_attaches_to_handlers_of_propagating_loggers() -> None:
    """Filters on a logger do not see records of its children; on its handlers they do."""
    stream = io.StringIO()
    parent = logging.getLogger("tests.audit.parent")
    parent.propagate = False
    parent.setLevel(logging.INFO)
    handler = logging.StreamHandler(stream)
    parent.addHandler(handler)
    log_filter = ScrubLogFilter([TOKEN])
    try:
        assert install_log_scrubbing(log_filter, ["tests.audit.parent"]) == [handler]
        install_log_scrubbing(log_filter, ["tests.audit.parent"])
        assert handler.filters.count(log_filter) == 1
        logging.getLogger("tests.audit.parent.child").info("GET /lab?token=%s", TOKEN)
        assert _absent(TOKEN, stream.getvalue())
        assert "token=[secret]" in stream.getvalue()
    finally:
        parent.removeHandler(handler)
        parent.removeFilter(log_filter)


def test_logger_level_filter_skips_only_records_no_handler_writes() -> None:
    """A server logger at DEBUG with its handler at INFO (jupyter_server's default) creates
    debug records on every request that nobody writes: they are not formatted and scrubbed
    for nothing. Every record a handler writes still is, including one added later."""
    stream = io.StringIO()
    logger = logging.getLogger("tests.audit.levels")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    calls: list[str] = []

    class Counting(ScrubLogFilter):
        def filter(self, record: logging.LogRecord) -> bool:
            calls.append(record.levelname)
            return super().filter(record)

    log_filter = Counting([TOKEN])
    late = logging.StreamHandler(io.StringIO())
    try:
        install_log_scrubbing(log_filter, ["tests.audit.levels"])
        assert any(f == log_filter for f in logger.filters)
        logger.debug("GET /lab?token=%s", TOKEN)
        assert calls == []
        logger.info("GET /lab?token=%s", TOKEN)
        assert "token=[secret]" in stream.getvalue()
        assert _absent(TOKEN, stream.getvalue())
        # a handler added after installation has no filter of its own: the logger's scrubs
        late.setLevel(logging.DEBUG)
        logger.addHandler(late)
        logger.debug("GET /lab?token=%s", TOKEN)
        assert _absent(TOKEN, late.stream.getvalue())
        assert "token=[secret]" in late.stream.getvalue()
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(late)
        logger.removeFilter(log_filter)
    assert not logger.filters


def test_logger_level_filter_walks_from_its_own_logger_without_a_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The logger's filter knows its logger: no ``logging.getLogger`` (a module lock) per
    record, and the same answers as the look-up by name: a debug record no handler writes is
    left alone, one a handler writes is scrubbed, and a record handed to the logger under
    another name is still judged by that name's logger."""
    from hardened_server.trail import scrub as scrub_module

    stream, quiet = io.StringIO(), io.StringIO()
    logger = logging.getLogger("tests.audit.ownlogger")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    other = logging.getLogger("tests.audit.ownlogger.other")
    other.propagate = False
    loud = logging.StreamHandler(quiet)
    loud.setLevel(logging.DEBUG)
    other.addHandler(loud)
    calls: list[str] = []

    class Counting(ScrubLogFilter):
        def filter(self, record: logging.LogRecord) -> bool:
            calls.append(record.name)
            return super().filter(record)

    log_filter = Counting([TOKEN])
    lookups: list[str | None] = []
    real_get_logger = logging.getLogger
    try:
        install_log_scrubbing(log_filter, ["tests.audit.ownlogger"])

        def counting_get_logger(name: str | None = None) -> logging.Logger:
            lookups.append(name)
            return real_get_logger(name)

        monkeypatch.setattr(scrub_module.logging, "getLogger", counting_get_logger)
        logger.debug("GET /lab?token=%s", TOKEN)
        logger.info("GET /lab?token=%s", TOKEN)
        assert lookups == []
        # the info record only: the logger's filter, then the handler's (already scrubbed)
        assert calls == ["tests.audit.ownlogger"] * 2
        assert "token=[secret]" in stream.getvalue()
        assert _absent(TOKEN, stream.getvalue())
        # a foreign record handed to this logger: judged by its own logger (DEBUG handler)
        foreign = logging.makeLogRecord(
            {"name": other.name, "levelno": logging.DEBUG, "msg": f"?token={TOKEN}"}
        )
        logger.handle(foreign)
        assert lookups == [other.name]
        assert calls[-1] == other.name
    finally:
        monkeypatch.undo()
        logger.removeHandler(handler)
        logger.removeFilter(log_filter)
        other.removeHandler(loud)
    assert not logger.filters


def test_filter_keeps_structured_event_messages_as_mappings() -> None:
    """jupyter_events logs a dict for its JSON formatter: the filter scrubs its strings and
    keeps it a dict (stringifying it would make every EventLogger handler fail)."""
    secret = "c0ffee" * 8
    record = logging.makeLogRecord(
        {"msg": {"__schema__": "s", "path": f"/lab?token={secret}", "n": 1, "xs": [secret]}}
    )
    assert ScrubLogFilter((secret,)).filter(record)
    assert isinstance(record.msg, dict)
    assert record.msg["__schema__"] == "s"
    assert record.msg["n"] == 1
    assert secret not in repr(record.msg)
