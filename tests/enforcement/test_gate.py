"""The request gate's tornado-side glue, without a server: the rate limiter, the session-bound
XSRF token, the Location validator, the client resolution and the policy keys it reads."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from hardened_server.enforcement import gate
from hardened_server.enforcement.runtime import RateLimiter, client_key, compile_policy
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import build_policy, default_layer, parse_layer
from hardened_server.policy.rules import Rule


def policy_with(doc: dict[str, Any]) -> Any:
    return build_policy([default_layer(), parse_layer("test.toml", doc)])


def request(
    uri: str = "/", peer: str = "127.0.0.1", host: str = "127.0.0.1:8888", **headers: str
) -> HTTPServerRequest:
    h = HTTPHeaders({"Host": host})
    for name, value in headers.items():
        h[name.replace("_", "-")] = value
    req = HTTPServerRequest(
        start_line=RequestStartLine("GET", uri, "HTTP/1.1"), headers=h
    )
    req.remote_ip = peer
    req.protocol = "http"
    return req


# -- rate limiter ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(60, 10, clock=clock)  # one token a second
    assert all(limiter.charge("a") is None for _ in range(10))
    assert limiter.charge("a") == 1
    assert limiter.peek("a") == 1
    clock.now += 1
    assert limiter.peek("a") is None
    assert limiter.charge("a") is None
    assert limiter.charge("b") is None, "another client has its own bucket"


def test_expensive_request_waits_for_its_whole_cost_and_takes_nothing_when_refused() -> None:
    clock = Clock()
    limiter = RateLimiter(60, 30, clock=clock)
    assert [limiter.charge("a", 10) for _ in range(4)] == [None, None, None, 10]
    clock.now += 5
    assert limiter.charge("a", 10) == 5
    clock.now += 5
    assert limiter.charge("a", 10) is None


def test_limiter_memory_is_bounded() -> None:
    class Small(RateLimiter):
        MAX_CLIENTS = 3

    limiter = Small(60, 10, clock=Clock())
    for key in "abcde":
        limiter.charge(key)
    assert len(limiter._buckets) == 3


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("203.0.113.7") == "203.0.113.7"


# -- XSRF --------------------------------------------------------------------------------------


def test_bound_token_round_trips_masked_differently_each_time() -> None:
    raw = gate.bound_xsrf_raw(b"secret", "user:alice")
    one, two = gate.encode_xsrf(raw), gate.encode_xsrf(raw)
    assert one != two
    assert gate.decode_xsrf(one) == gate.decode_xsrf(two) == raw
    for supplied in (one, two):
        decision = gate.xsrf_decision(supplied.decode(), raw)
        assert decision.allowed
        assert decision.rule_id == Rule.XSRF_BOUND


def test_bound_token_depends_on_secret_and_identity() -> None:
    raw = gate.bound_xsrf_raw(b"secret", "user:alice")
    assert raw != gate.bound_xsrf_raw(b"secret", "user:mallory")
    assert raw != gate.bound_xsrf_raw(b"other", "user:alice")


@pytest.mark.parametrize(
    "supplied", [None, "", "1", "2|zz|00|1", "2|deadbeef|" + "00" * 32 + "|1", "3|a|b|c"]
)
def test_anything_but_the_bound_token_is_refused(supplied: str | None) -> None:
    raw = gate.bound_xsrf_raw(b"secret", "user:alice")
    decision = gate.xsrf_decision(supplied, raw)
    assert not decision.allowed
    assert decision.rule_id in (Rule.XSRF_MISSING, Rule.XSRF_MISMATCH)


def test_session_identity() -> None:
    class User:
        username = "abc"

    assert gate.session_identity(User()) == "user:abc"
    assert gate.session_identity("bob") == "user:bob"
    assert gate.session_identity(None) is None


# -- Location ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/lab", "/lab"),
        ("/lab?reset=", "/lab?reset="),
        ("http://127.0.0.1:8888/lab?x=1", "/lab?x=1"),
        ("http://127.0.0.1:8888", "/"),
        ("http://127.0.0.1:9999/lab", "/"),
        ("https://127.0.0.1:8888/lab", "/"),
        ("http://127.0.0.1:8888@evil.example/", "/"),
        ("//evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("https:evil.example", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_location_is_a_same_origin_path(url: str, expected: str) -> None:
    target, _decision = gate.checked_location(url, request(), "/")
    assert target == expected
    again, decision = gate.checked_location(target, request(), "/")
    assert again == target, "the validator's output passes it again"
    assert decision.allowed


def test_location_outside_base_url_goes_to_base_url() -> None:
    assert gate.checked_location("/elsewhere", request(), "/jp/")[0] == "/jp/"
    assert gate.checked_location("/jp/lab", request(), "/jp/")[0] == "/jp/lab"


AUTHORIZE = "https://hub.example/hub/api/oauth2/authorize"


def test_the_identity_providers_login_endpoint_is_the_one_outside_location() -> None:
    """JupyterHub's OAuth ``authorize`` endpoint (set by the server, never by the request) is
    sent as is, its query included (HS-REDIRECT-006); the same host with another path, or the
    endpoint with a control character or a space, is not it."""
    external = frozenset({AUTHORIZE})
    url = AUTHORIZE + "?client_id=jupyterhub-user-alice&state=abc&response_type=code"
    target, decision = gate.checked_location(url, request(), "/", external=external)
    assert target == url
    assert decision.allowed
    assert decision.rule_id == Rule.REDIRECT_EXTERNAL
    for other in (
        "https://hub.example/hub/api/oauth2/authorize/../../evil",
        "https://hub.example/hub/login",
        AUTHORIZE + "?next=a b",
        AUTHORIZE + "?x=\r\nSet-Cookie:a=b",
    ):
        target, decision = gate.checked_location(other, request(), "/", external=external)
        assert target == "/", other
        assert decision.rule_id != Rule.REDIRECT_EXTERNAL, other
    assert gate.checked_location(url, request(), "/")[0] == "/"  # not configured: refused


# -- client resolution -------------------------------------------------------------------------


def compiled(trusted: list[str]) -> Any:
    return compile_policy(policy_with({"server": {"trusted_proxies": trusted}}), "/")


def test_trusted_proxy_that_only_sends_the_scheme_is_itself_the_client() -> None:
    req = request(X_Forwarded_Proto="https")
    client = gate.resolve_client(req, compiled(["127.0.0.1/32"]))
    assert (client.ip, client.scheme) == ("127.0.0.1", "https")
    assert req.protocol == "https"


def test_untrusted_peer_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    req = request(X_Forwarded_Proto="https", X_Forwarded_For="6.6.6.6",
                  X_Forwarded_Host="evil.example")
    client = gate.resolve_client(req, compiled(["10.0.0.0/8"]))
    assert (req.remote_ip, req.protocol, req.host) == ("127.0.0.1", "http", "127.0.0.1:8888")
    assert client.ignored_headers
    assert "HS-PROXY-002" in caplog.text


def test_forwarded_host_and_client_from_a_trusted_proxy() -> None:
    req = request(X_Forwarded_For="6.6.6.6, 203.0.113.5", X_Forwarded_Host="jupyter.example.org")
    gate.resolve_client(req, compiled(["127.0.0.1/32"]))
    assert req.remote_ip == "203.0.113.5"
    assert req.host == "jupyter.example.org"
    assert req.hs_peer_ip == "127.0.0.1"  # type: ignore[attr-defined]


# -- policy keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        {"cors": {"allow_headers": ["*"]}},
        {"cors": {"allow_methods": ["TRACE"]}},
        {"cors": {"allow_origin_patterns": [".*"]}},
        {"cors": {"allow_origin_patterns": ["https://.*"]}},
        {"server": {"client_header": "x-client-ip"}},
        {"limits": {"max_body_bytes": 0}},
        {"limits": {"unauthenticated_burst": 5}},
    ],
)
def test_new_gate_keys_refuse_bad_values(doc: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        policy_with(doc)


def test_trusting_every_peer_stops_the_server_like_a_bad_file() -> None:
    with pytest.raises(PolicyError) as info:
        compiled(["0.0.0.0/0"])
    assert info.value.key == "server.trusted_proxies"


def test_default_limits_are_far_below_stock() -> None:
    limits = policy_with({}).limits
    assert limits.max_body_bytes <= 64 * 1024 * 1024
    assert limits.max_header_bytes < 65536


def test_a_client_refused_over_fifty_times_a_second_is_flooding() -> None:
    clock = Clock()
    limiter = RateLimiter(60, 10, clock=clock)
    limit = RateLimiter.FLOOD_REFUSALS_PER_SECOND
    assert not any(limiter.flooding("a") for _ in range(limit))
    assert limiter.flooding("a")
    assert not limiter.flooding("b"), "counted per client"
    clock.now += 1
    assert limiter.flooding("a"), "flooded the last window: held from the first refusal"
    for _ in range(limit // 5 - 1):
        limiter.flooding("a")
    clock.now += 1
    assert not limiter.flooding("a"), "a held flood that stopped is let go"
    clock.now += 5
    assert not limiter.flooding("b"), "a window long past counts for nothing"


def test_held_refusals_are_bounded_and_do_not_block_the_loop() -> None:
    import asyncio

    class Quick(RateLimiter):
        HOLD_SECONDS = 0.2
        MAX_HELD = 2

    limiter = Quick(60, 10, clock=Clock())

    import random

    random.seed(1)

    async def scenario() -> tuple[float, list[float]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        done: list[float] = []

        async def held() -> None:
            await limiter.hold()
            done.append(loop.time() - start)

        tasks = [asyncio.create_task(held()) for _ in range(3)]
        await asyncio.sleep(0)
        other = loop.time() - start  # the loop is free while two are held
        await asyncio.gather(*tasks)
        return other, sorted(done)

    other, done = asyncio.run(scenario())
    assert other < 0.1
    assert done[0] < 0.1, "the third is over MAX_HELD: answered at once"
    assert done[1] >= 0.2 * 0.5  # jittered: 0.5 to 1.5 times HOLD_SECONDS
    assert limiter._held == 0


# -- the anonymous body limit (HS-LIMIT-005) -------------------------------------------------

_SIGNED = "2|1:0|10:1765000000|8:username|4:YWJj|" + "0" * 64


def post(uri: str = "/api/contents", **headers: str) -> HTTPServerRequest:
    req = request(uri, **headers)
    req.method = "POST"
    return req


@pytest.mark.parametrize(
    ("headers", "authenticated"),
    [
        ({}, False),
        ({"Authorization": "token abc"}, True),
        ({"Authorization": "Bearer abc"}, True),
        ({"Authorization": "token"}, False),
        ({"Cookie": "a=b"}, False),
        ({"Cookie": "_xsrf=" + _SIGNED}, False),
        ({"Cookie": f"username-127-0-0-1-8888=\"{_SIGNED}\""}, True),
    ],
)
def test_only_a_credential_shaped_header_buys_the_large_body_limit(
    headers: dict[str, str], authenticated: bool
) -> None:
    limits = policy_with({}).limits
    size, rule = gate.body_limit(post(**headers), limits, "/")
    if authenticated:
        assert (size, rule) == (limits.max_body_bytes, Rule.LIMIT_BODY)
    else:
        assert (size, rule) == (limits.anonymous_body_bytes, Rule.LIMIT_ANONYMOUS_BODY)
        assert size == 65536


def test_admit_looks_at_the_cookies_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """admit asks may_authenticate twice (body limit, budget check): the second answer is the
    first one, kept on the request (#22), for the XSRF cookie name it was asked with."""
    calls: list[str] = []
    real = gate._may_authenticate

    def counting(req: HTTPServerRequest, xsrf_cookie_name: str) -> bool:
        calls.append(xsrf_cookie_name)
        return real(req, xsrf_cookie_name)

    monkeypatch.setattr(gate, "_may_authenticate", counting)
    req = request(Cookie=f"username-127-0-0-1-8888={_SIGNED}")
    assert gate.may_authenticate(req)
    assert gate.may_authenticate(req)
    assert calls == ["_xsrf"]
    assert not gate.may_authenticate(req, "username-127-0-0-1-8888")  # another question
    assert calls == ["_xsrf", "username-127-0-0-1-8888"]


def test_the_login_form_gets_the_anonymous_limit_even_with_a_credential() -> None:
    limits = policy_with({}).limits
    size, rule = gate.body_limit(
        post("/jp/login", Authorization="token abc"), limits, "/jp/"
    )
    assert (size, rule) == (limits.anonymous_body_bytes, Rule.LIMIT_ANONYMOUS_BODY)


def test_the_anonymous_limit_is_capped_by_the_body_limit() -> None:
    limits = policy_with(
        {"limits": {"max_body_bytes": 65536, "anonymous_body_bytes": 1048576}}
    ).limits
    assert gate.body_limit(post(), limits, "/")[0] == 65536


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, True),
        ({"Cookie": "a=b"}, True),  # a made-up cookie used to walk past the spent budget
        ({"Cookie": "_xsrf=" + _SIGNED}, True),
        ({"Authorization": "token"}, True),
        ({"Authorization": "token abc"}, False),  # the handler decides, and charges a failure
        ({"Cookie": f"username-127-0-0-1-8888=\"{_SIGNED}\""}, False),
    ],
)
def test_a_spent_budget_is_refused_at_the_gate_unless_a_credential_shaped_header_is_sent(
    headers: dict[str, str], refused: bool
) -> None:
    from hardened_server.enforcement.runtime import PolicyRuntime

    runtime = PolicyRuntime(policy_with({}), "/")
    while runtime.limiter.charge(gate.client_key("127.0.0.1")) is None:
        pass
    refusal = gate.admit(request("/api/contents", **headers), runtime)
    if refused:
        assert refusal is not None
        assert refusal.status == 429
        assert refusal.decision.rule_id == Rule.LIMIT_RATE
    else:
        assert refusal is None


def test_anonymous_large_bodies_are_charged_and_a_spent_budget_gets_the_429() -> None:
    """Each anonymous 413 costs the client one unit of its budget; once it is spent, the
    refusal is the rate limit's (whose flooding clients are held), so a loop of large bodies
    cannot make the server log and record without bound."""
    from hardened_server.enforcement.runtime import PolicyRuntime

    runtime = PolicyRuntime(policy_with({}), "/")
    big = {"Content-Length": str(10 * 1024 * 1024), "Content-Type": "application/json"}
    burst = int(runtime.limiter.burst)
    statuses = [
        getattr(gate.admit(post(**big), runtime), "status", None) for _ in range(burst + 3)
    ]
    assert statuses[:burst] == [413] * burst
    assert statuses[burst:] == [429] * 3
    # a credential-shaped request is not charged for its 413
    owner = PolicyRuntime(policy_with({}), "/")
    for _ in range(burst + 3):
        refusal = gate.admit(post(Authorization="token abc", **{
            "Content-Length": str(2**40)}), owner)
        assert refusal is not None
        assert refusal.status == 413


def _over(family: int) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(context=SimpleNamespace(address_family=family))


@pytest.mark.parametrize(
    ("host", "family", "sock", "admitted"),
    [
        ("%2Ftmp%2Fjp.sock", socket.AF_UNIX, "/tmp/jp.sock", True),  # jupyter_server's client
        ("%2Ftmp%2Fjp.sock", socket.AF_INET, "/tmp/jp.sock", False),  # not over the socket
        ("%2Ftmp%2Fother.sock", socket.AF_UNIX, "/tmp/jp.sock", False),  # another socket's name
        ("evil.example", socket.AF_UNIX, "/tmp/jp.sock", False),  # a proxy forwarding a browser's
        ("%2Ftmp%2Fjp.sock", socket.AF_UNIX, "", False),  # no socket configured
    ],
)
def test_a_unix_socket_client_names_the_socket_as_its_host(
    host: str, family: int, sock: str, admitted: bool
) -> None:
    from hardened_server.enforcement.runtime import PolicyRuntime
    from hardened_server.policy.hosts import unix_socket_host

    runtime = PolicyRuntime(policy_with({}), "/")
    runtime.unix_socket_host = unix_socket_host(sock) if sock else ""
    req = request("/api/status", host=host, Authorization="token abc")
    req.connection = _over(family)
    refusal = gate.admit(req, runtime)
    if admitted:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.status == 403
        assert refusal.decision.rule_id == Rule.HOST_FOREIGN
