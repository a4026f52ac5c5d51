"""Static checks of the effective policy: CSP, CORS, hosts and proxies, TLS and HSTS, response
headers, paths, tokens, terminals and public routes.

Each finding points at the policy file and key that set the value (the provenance the loader
records), with the line in that file when it can be found.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

from hardened_server.audit.checks import (
    CRITICAL,
    ERROR,
    INFO,
    WARNING,
    Hit,
    Location,
    check,
)
from hardened_server.audit.facts import Facts, default_profile_path
from hardened_server.policy import csp
from hardened_server.policy.decisions import ROUTE_CLASSES, RouteClass
from hardened_server.policy.headers import HSTS_MIN_MAX_AGE
from hardened_server.policy.hosts import is_loopback_bind
from hardened_server.policy.loader import shipped_policy
from hardened_server.policy.model import Policy
from hardened_server.policy.rules import Rule

# ---------------------------------------------------------------------------------------------
# Locating a policy key in the file that set it


@lru_cache(maxsize=64)
def _key_lines(path: str, mtime: float) -> dict[str, int]:
    """``section.key`` -> first line number in a TOML file (tables and dotted keys)."""
    lines: dict[str, int] = {}
    table = ""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return lines
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$", line)
        if m:
            table = ".".join(p.strip().strip("\"'") for p in m.group(1).split("."))
            lines.setdefault(table, n)
            continue
        m = re.match(r"([A-Za-z0-9_.\-\"' ]+?)\s*=", line)
        if m:
            name = ".".join(p.strip().strip("\"'") for p in m.group(1).split("."))
            full = f"{table}.{name}" if table else name
            lines.setdefault(full, n)
    return lines


def line_of(path: str, key: str) -> int | None:
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        return None
    return _key_lines(path, mtime).get(key)


def where(facts: Facts, key: str) -> Location:
    """The file that set ``key`` (or, for a key no layer set, the last layer: that is where it
    would be added) and the line."""
    policy = facts.policy
    source = None
    if policy is not None:
        source = policy.provenance.get(key)
        if source is None:
            # a CSP directive nobody set: point at the class table in the last layer setting it
            prefix = key.rsplit(".", 1)[0] + "."
            for k, src in policy.provenance.items():
                if k.startswith(prefix):
                    source = src
            if source is None and policy.sources:
                source = policy.sources[-1]
    source = source or default_profile_path()
    line = line_of(source, key) or line_of(source, key.rsplit(".", 1)[0])
    return Location(file=source, key=key, line=line)


# ---------------------------------------------------------------------------------------------
# CSP helpers

SANDBOXED_CLASSES = (RouteClass.FILES, RouteClass.NBCONVERT, RouteClass.KERNELSPEC)
# The CSP3 fallback list (csp.effective_directive), nonce/hash and broad-source answers live
# in hardened_server/policy/csp.py, shared with the loader's floors and the live probes.


def _policy(facts: Facts) -> Policy:
    """The loaded policy: a check under ``@_policy_check`` runs only when there is one."""
    assert facts.policy is not None
    return facts.policy


def _classes(facts: Facts) -> Iterator[tuple[str, csp.Directives]]:
    policy = _policy(facts)
    for rc in ROUTE_CLASSES:
        yield rc, policy.csp.get(rc, {})


def _is_sandboxed(directives: csp.Directives) -> bool:
    return "sandbox" in directives and "allow-same-origin" not in directives["sandbox"]


def _policy_check(func: Callable[[Facts], Iterator[Hit]]) -> Callable[[Facts], Iterator[Hit]]:
    """Policy checks are quiet when the policy does not load (HS-CONF-107 reports that)."""

    def wrapper(facts: Facts) -> Iterator[Hit]:
        if facts.policy is None:
            return iter(())
        return func(facts)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


CSP_TAGS = ("csp", "headers")


@check(
    "HS-CSP-101",
    ERROR,
    "'unsafe-inline' lets injected scripts run",
    fix="remove 'unsafe-inline' from csp.<class>.script-src (use 'self', hashes or nonces)",
    doc="With 'unsafe-inline' in the script sources an HTML injection anywhere on the page is "
    "script execution in the server's origin, with the user's session: that is a kernel.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_unsafe_inline(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        if _is_sandboxed(d):
            continue
        for name in ("script-src", "script-src-elem", "script-src-attr"):
            used, sources = csp.effective_directive(d, name)
            if sources and csp.CSP.UNSAFE_INLINE in sources and not csp.has_nonce_or_hash(sources):
                yield Hit(
                    f"route class {rc!r}: {used} {' '.join(sources)}",
                    where(facts, f"csp.{rc}.{used}"),
                    f"remove 'unsafe-inline' from csp.{rc}.{used}",
                )
                break


@check(
    "HS-CSP-102",
    WARNING,
    "'unsafe-eval' outside the application pages",
    fix="remove 'unsafe-eval' from csp.<class>.script-src",
    doc="'unsafe-eval' turns strings into code (eval, new Function). No route class needs it; "
    "on application pages it is routes.unsafe_eval's loosening (HS-CSP-103), anywhere else "
    "it only helps an injection.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_unsafe_eval_elsewhere(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        if rc == RouteClass.PAGE or _is_sandboxed(d):
            continue
        used, sources = csp.effective_directive(d, "script-src")
        if sources and csp.CSP.UNSAFE_EVAL in sources:
            yield Hit(
                f"route class {rc!r}: {used} {' '.join(sources)}",
                where(facts, f"csp.{rc}.{used}"),
                f"remove 'unsafe-eval' from csp.{rc}.{used}",
            )


@check(
    "HS-CSP-103",
    WARNING,
    "'unsafe-eval' granted on application pages (a loosening)",
    fix="set routes.unsafe_eval = [] (the shipped default): JupyterLab and Notebook 7 run "
    "without it",
    doc="'unsafe-eval' turns strings into code (eval, new Function). JupyterLab 4 and "
    "Notebook 7 do not need it with hardened-server (its labextension validates settings "
    "without code generation; SECURITY.md), so the shipped default grants it to no route; a "
    "policy that lists routes in routes.unsafe_eval, or adds it to csp.page, loosens that.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_unsafe_eval_page(facts: Facts) -> Iterator[Hit]:
    routes = _policy(facts).routes.unsafe_eval
    if routes:
        yield Hit(
            f"'unsafe-eval' granted on {len(routes)} page route(s): {', '.join(routes)}",
            where(facts, "routes.unsafe_eval"),
        )
    d = _policy(facts).csp.get(RouteClass.PAGE, {})
    used, sources = csp.effective_directive(d, "script-src")
    if sources and csp.CSP.UNSAFE_EVAL in sources:
        yield Hit(f"route class 'page': {used} {' '.join(sources)}",
                  where(facts, f"csp.page.{used}"))


@check(
    "HS-CSP-104",
    ERROR,
    "scripts are not restricted at all",
    fix="set csp.<class>.script-src (or default-src) to [\"'self'\"] or [\"'none'\"]",
    doc="Without script-src and default-src, a CSP does nothing against cross-site scripting: "
    "stock Jupyter's page policy is exactly this (frame-ancestors and report-uri only).",
    tags=CSP_TAGS,
)
@_policy_check
def csp_scripts_unrestricted(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        if _is_sandboxed(d):
            continue
        used, _sources = csp.effective_directive(d, "script-src")
        if used is None:
            yield Hit(
                f"route class {rc!r} has neither script-src nor default-src",
                where(facts, f"csp.{rc}.script-src"),
                f"set csp.{rc}.script-src = [\"'self'\"] (or csp.{rc}.default-src = "
                "[\"'none'\"])",
            )


@check(
    "HS-CSP-105",
    WARNING,
    "plugins (object-src) are not blocked",
    fix="set csp.<class>.object-src = [\"'none'\"] (or default-src = [\"'none'\"])",
    doc="<object> and <embed> load plugins and can execute script in older browsers; CSP "
    "Evaluator and the HTTP Observatory both require object-src 'none'.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_object_src(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        used, sources = csp.effective_directive(d, "object-src")
        if sources != (csp.CSP.NONE,):
            shown = f"{used} {' '.join(sources or ())}" if used else "no object-src, no default-src"
            yield Hit(
                f"route class {rc!r}: {shown}",
                where(facts, f"csp.{rc}.object-src"),
                f"set csp.{rc}.object-src = [\"'none'\"]",
            )


@check(
    "HS-CSP-106",
    WARNING,
    "base-uri is missing",
    fix="set csp.<class>.base-uri = [\"'none'\"]",
    doc="base-uri does not fall back to default-src: an injected <base href> re-points every "
    "relative script URL of the page at another host.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_base_uri(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        if rc == RouteClass.API:
            continue  # JSON, never parsed as HTML
        if "base-uri" not in d:
            yield Hit(f"route class {rc!r} has no base-uri", where(facts, f"csp.{rc}.base-uri"),
                      f"set csp.{rc}.base-uri = [\"'none'\"]")


@check(
    "HS-CSP-107",
    WARNING,
    "frame-ancestors is missing",
    fix="set csp.<class>.frame-ancestors = [\"'none'\"] (or [\"'self'\"] for user content)",
    doc="Without frame-ancestors only X-Frame-Options stops clickjacking; frame-ancestors is "
    "the standard and the one that covers nested frames.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_frame_ancestors_missing(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        if "frame-ancestors" not in d:
            yield Hit(f"route class {rc!r} has no frame-ancestors",
                      where(facts, f"csp.{rc}.frame-ancestors"),
                      f"set csp.{rc}.frame-ancestors = [\"'none'\"]")


@check(
    "HS-CSP-108",
    WARNING,
    "frame-ancestors lets other sites frame the server",
    fix="keep csp.<class>.frame-ancestors to 'none' or 'self'",
    doc="Any source other than 'none' and 'self' in frame-ancestors lets that site put the "
    "server's pages in a frame and trick the user into clicks (clickjacking).",
    tags=CSP_TAGS,
)
@_policy_check
def csp_frame_ancestors_broad(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        foreign = [s for s in d.get("frame-ancestors", ()) if s not in (csp.CSP.NONE,
                                                                          csp.CSP.SELF)]
        if foreign:
            yield Hit(f"route class {rc!r}: frame-ancestors {' '.join(d['frame-ancestors'])}",
                      where(facts, f"csp.{rc}.frame-ancestors"))


@check(
    "HS-CSP-109",
    ERROR,
    "scripts or plugins may load from any host",
    fix="list exact sources in csp.<class>.script-src / object-src; never *, http:, https:, "
    "data: or blob:",
    doc="A wildcard or a bare scheme in script-src or object-src allows scripts from any site "
    "(or data: URLs an injection writes itself): CSP Evaluator rates it HIGH, the Observatory "
    "treats it like 'unsafe-inline'.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_broad_script_sources(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        if _is_sandboxed(d):
            continue
        for name in ("script-src", "object-src"):
            used, sources = csp.effective_directive(d, name)
            broad = [s for s in sources or () if csp.is_broad_script_source(s)]
            if broad:
                yield Hit(f"route class {rc!r}: {used} allows {' '.join(broad)}",
                          where(facts, f"csp.{rc}.{used}"))


@check(
    "HS-CSP-110",
    WARNING,
    "a fetch directive allows any host",
    fix="replace '*' in csp.<class>.<directive> with the hosts really needed",
    doc="'*' in connect-src, img-src, frame-src and the like lets an injection send data to, or "
    "load content from, any site (exfiltration through image or fetch URLs).",
    tags=CSP_TAGS,
)
@_policy_check
def csp_wildcard_fetch(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        for name in csp.FETCH_DIRECTIVES:
            if name in ("script-src", "object-src", "script-src-elem", "script-src-attr"):
                continue
            sources = d.get(name, ())
            wild = [s for s in sources if s == "*" or s.startswith("*") or "://*" in s]
            if wild:
                yield Hit(f"route class {rc!r}: {name} {' '.join(sources)}",
                          where(facts, f"csp.{rc}.{name}"))


@check(
    "HS-CSP-111",
    CRITICAL,
    "user content is not sandboxed",
    fix="set csp.<class>.sandbox = [] for files, nbconvert and kernelspec",
    doc="/files, nbconvert output and kernelspec resources are written by users or by anyone "
    "who can share a notebook. Without the sandbox directive an HTML file runs script in the "
    "server's origin (notebook CVE-2018-19351, jupyter_server GHSA-fcw5-x6j4-ccmp, CVSS 9.3).",
    tags=CSP_TAGS,
)
@_policy_check
def csp_sandbox_missing(facts: Facts) -> Iterator[Hit]:
    for rc in SANDBOXED_CLASSES:
        d = _policy(facts).csp.get(rc, {})
        if "sandbox" not in d:
            yield Hit(f"route class {rc.value!r} has no sandbox directive",
                      where(facts, f"csp.{rc.value}.sandbox"),
                      f"set csp.{rc.value}.sandbox = []")


@check(
    "HS-CSP-112",
    ERROR,
    "the user-content sandbox keeps the server's origin",
    fix="remove allow-same-origin from csp.<class>.sandbox",
    doc="allow-same-origin gives sandboxed user content the server's origin back: with "
    "allow-scripts it can remove its own sandbox and call the API as the user.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_sandbox_same_origin(facts: Facts) -> Iterator[Hit]:
    for rc in SANDBOXED_CLASSES:
        flags = _policy(facts).csp.get(rc, {}).get("sandbox")
        if flags is not None and "allow-same-origin" in flags:
            yield Hit(f"route class {rc.value!r}: sandbox {' '.join(flags)}",
                      where(facts, f"csp.{rc.value}.sandbox"))


_ESCAPE_FLAGS = ("allow-top-navigation", "allow-top-navigation-to-custom-protocols",
                 "allow-popups-to-escape-sandbox")


@check(
    "HS-CSP-113",
    WARNING,
    "the user-content sandbox lets content navigate away or escape in pop-ups",
    fix="remove allow-top-navigation* and allow-popups-to-escape-sandbox from csp.<class>.sandbox",
    doc="These flags let a user's HTML file replace the whole JupyterLab tab with a look-alike "
    "login page, or open unsandboxed windows.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_sandbox_escape(facts: Facts) -> Iterator[Hit]:
    for rc in SANDBOXED_CLASSES:
        flags = _policy(facts).csp.get(rc, {}).get("sandbox") or ()
        bad = [f for f in flags if f in _ESCAPE_FLAGS]
        if bad:
            yield Hit(f"route class {rc.value!r}: sandbox {' '.join(bad)}",
                      where(facts, f"csp.{rc.value}.sandbox"))


@check(
    "HS-CSP-114",
    INFO,
    "CSP violations are not reported",
    fix="set headers.csp_report = true",
    doc="Reports of blocked scripts are the first sign of an injection attempt, and of a policy "
    "too strict for an extension.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_reporting(facts: Facts) -> Iterator[Hit]:
    if not facts.value("headers.csp_report"):
        own = [rc for rc, d in _classes(facts) if "report-uri" in d or "report-to" in d]
        if len(own) < len(ROUTE_CLASSES):
            yield Hit("headers.csp_report = false", where(facts, "headers.csp_report"))


@check(
    "HS-CSP-115",
    WARNING,
    "form-action is missing on an HTML class",
    fix="set csp.<class>.form-action = [\"'self'\"] (or [\"'none'\"])",
    doc="form-action does not fall back to default-src: an injected <form> can post the "
    "user's input (a password) to any site.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_form_action(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        if rc == RouteClass.API or _is_sandboxed(d):
            continue
        if "form-action" not in d:
            yield Hit(f"route class {rc!r} has no form-action",
                      where(facts, f"csp.{rc}.form-action"),
                      f"set csp.{rc}.form-action = [\"'self'\"]")


def _insecure_source(source: str) -> bool:
    low = source.lower()
    if low == "http:" or low == "ws:":
        return True
    if low.startswith(("http://", "ws://")):
        host = low.split("://", 1)[1].split("/")[0].rsplit(":", 1)[0]
        return host not in ("localhost", "127.0.0.1", "[::1]")
    return False


@check(
    "HS-CSP-116",
    WARNING,
    "a CSP source is plain HTTP",
    fix="use https:// (wss://) sources only",
    doc="Content loaded over plain HTTP can be replaced by anyone on the network path; a "
    "plain-http script source is a script injection for a network attacker.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_insecure_sources(facts: Facts) -> Iterator[Hit]:
    for rc, d in _classes(facts):
        for name, sources in d.items():
            bad = [s for s in sources if _insecure_source(s)]
            if bad:
                yield Hit(f"route class {rc!r}: {name} {' '.join(bad)}",
                          where(facts, f"csp.{rc}.{name}"))


@check(
    "HS-CSP-117",
    INFO,
    "a per-response script nonce on page routes (routes.script_nonce)",
    fix="set routes.script_nonce = [] (the listed front-end's inline scripts are then blocked)",
    doc="A route in routes.script_nonce gets a fresh nonce in script-src for every response; "
    "the inline scripts its own templates mark with it run (Voila's per-cell scripts, "
    "policies/voila.toml). Output scripts and injected ones carry no nonce and stay blocked "
    "(SECURITY.md, 'Per-response nonces'); the risk accepted is the marked template code.",
    tags=CSP_TAGS,
)
@_policy_check
def csp_script_nonce(facts: Facts) -> Iterator[Hit]:
    routes = _policy(facts).routes.script_nonce
    if routes:
        yield Hit(
            f"a per-response nonce in script-src on {len(routes)} page route(s): "
            + ", ".join(routes),
            where(facts, "routes.script_nonce"),
        )


# ---------------------------------------------------------------------------------------------
# CORS

CORS_TAGS = ("cors",)


def _listed(facts: Facts) -> list[str]:
    return list(facts.value("cors.allow_origins") or ())


def _patterns(facts: Facts) -> list[str]:
    return list(facts.value("cors.allow_origin_patterns") or ())


@check(
    "HS-CORS-101",
    INFO,
    "cross-origin access is granted to listed origins",
    fix="keep cors.allow_origins to origins you control",
    doc="Each listed origin can read API responses cross-origin (with the user's session if "
    "cors.allow_credentials is true); an XSS on any of them reaches this server.",
    tags=CORS_TAGS,
)
@_policy_check
def cors_listed(facts: Facts) -> Iterator[Hit]:
    origins = _listed(facts)
    if origins:
        yield Hit("cors.allow_origins = " + ", ".join(origins),
                  where(facts, "cors.allow_origins"))


@check(
    "HS-CORS-102",
    WARNING,
    "listed origins may make credentialed requests",
    fix="set cors.allow_credentials = false unless a listed site must act as the logged-in user",
    doc="With credentials, a listed origin reads and writes the API with the user's cookie: "
    "every listed site becomes as powerful as the user.",
    tags=CORS_TAGS,
)
@_policy_check
def cors_credentials(facts: Facts) -> Iterator[Hit]:
    origins = [o for o in _listed(facts) if o != "null"] + _patterns(facts)
    if facts.value("cors.allow_credentials") and origins:
        yield Hit("cors.allow_credentials = true for " + ", ".join(origins),
                  where(facts, "cors.allow_credentials"))


def _loopback_origin(origin: str) -> bool:
    host = origin.split("://", 1)[-1].rsplit(":", 1)[0] if "]" not in origin else "[::1]"
    return host in ("localhost", "127.0.0.1", "[::1]")


@check(
    "HS-CORS-103",
    WARNING,
    "a plain-HTTP origin is listed",
    fix="list https:// origins only in cors.allow_origins",
    doc="A network attacker can answer for a plain-HTTP origin and, through it, read this "
    "server's API cross-origin.",
    tags=CORS_TAGS,
)
@_policy_check
def cors_http_origin(facts: Facts) -> Iterator[Hit]:
    for origin in _listed(facts):
        if origin.startswith("http://") and not _loopback_origin(origin):
            yield Hit(f"cors.allow_origins lists {origin}", where(facts, "cors.allow_origins"))


@check(
    "HS-CORS-104",
    ERROR,
    "the 'null' origin is listed",
    fix="remove \"null\" from cors.allow_origins",
    doc="Origin: null is sent by every sandboxed iframe, data: and file: document on the "
    "internet, including this server's own sandboxed user content: listing it lets any of "
    "them read the API.",
    tags=CORS_TAGS,
)
@_policy_check
def cors_null(facts: Facts) -> Iterator[Hit]:
    if "null" in _listed(facts):
        yield Hit("cors.allow_origins lists null", where(facts, "cors.allow_origins"))


@check(
    "HS-CORS-105",
    INFO,
    "cors.allow_credentials has no effect",
    fix="set cors.allow_credentials = false (no origin is listed)",
    doc="Credentials are only ever sent to listed origins; with none listed the setting is "
    "dead configuration that becomes live the day someone adds an origin.",
    tags=CORS_TAGS,
)
@_policy_check
def cors_credentials_unused(facts: Facts) -> Iterator[Hit]:
    listed = [o for o in _listed(facts) if o != "null"] + _patterns(facts)
    if facts.value("cors.allow_credentials") and not listed:
        yield Hit("cors.allow_credentials = true with no origin listed",
                  where(facts, "cors.allow_credentials"))


@check(
    "HS-CORS-107",
    WARNING,
    "origins are allowed by regular expression",
    fix="list exact origins in cors.allow_origins instead of cors.allow_origin_patterns",
    doc="A pattern allows every origin it matches, today's and tomorrow's: a sibling host, a "
    "preview deployment or a typo-squatted name. Stock jupyter_server's unanchored "
    "allow_origin_pat was CVE-2026-40110.",
    tags=CORS_TAGS,
)
@_policy_check
def cors_patterns(facts: Facts) -> Iterator[Hit]:
    for pattern in _patterns(facts):
        plain = " (matches plain-http origins)" if pattern.startswith("http://") else ""
        yield Hit(f"cors.allow_origin_patterns contains {pattern!r}{plain}",
                  where(facts, "cors.allow_origin_patterns"))


# ---------------------------------------------------------------------------------------------
# Hosts, proxies, TLS


@check(
    "HS-HOST-101",
    WARNING,
    "bound beyond loopback with no public host name",
    fix="list the names clients use in server.public_hostnames",
    doc="The Host allow-list always holds; with only loopback names on it, every remote "
    "client gets 403 (and someone will 'fix' that by loosening something else).",
    tags=("hosts",),
)
@_policy_check
def host_no_public_names(facts: Facts) -> Iterator[Hit]:
    if not is_loopback_bind(facts.ip) and not facts.value("server.public_hostnames"):
        yield Hit(f"ip = {facts.ip or '(all interfaces)'!r}, server.public_hostnames = []",
                  where(facts, "server.public_hostnames"))


def _networks(facts: Facts) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for text in facts.value("server.trusted_proxies") or ():
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    return out


@check(
    "HS-PROXY-101",
    ERROR,
    "every address is a trusted proxy",
    fix="list only your reverse proxies' addresses in server.trusted_proxies",
    doc="X-Forwarded-For/-Proto from a trusted proxy decide the client address (audit trail) "
    "and the scheme (Secure cookies, HSTS): trusting every address lets anyone spoof both.",
    tags=("proxies",),
)
@_policy_check
def proxy_everyone(facts: Facts) -> Iterator[Hit]:
    for net in _networks(facts):
        if net.prefixlen == 0:
            yield Hit(f"server.trusted_proxies contains {net}",
                      where(facts, "server.trusted_proxies"))


@check(
    "HS-PROXY-102",
    WARNING,
    "a trusted proxy network is very broad",
    fix="narrow server.trusted_proxies to the proxies' own addresses (a /32, or the ingress "
    "subnet)",
    doc="A /8 trusts every host of a data centre (every pod of a cluster) to tell the server "
    "who the client is.",
    tags=("proxies",),
)
@_policy_check
def proxy_broad(facts: Facts) -> Iterator[Hit]:
    for net in _networks(facts):
        limit = 16 if net.version == 4 else 48
        if 0 < net.prefixlen < limit:
            yield Hit(f"server.trusted_proxies contains {net} ({net.num_addresses} addresses)",
                      where(facts, "server.trusted_proxies"))


@check(
    "HS-PROXY-103",
    WARNING,
    "a trusted proxy network contains public addresses",
    fix="trust private or loopback addresses only in server.trusted_proxies",
    doc="A public range trusts hosts on the internet to set X-Forwarded-*.",
    tags=("proxies",),
)
@_policy_check
def proxy_public(facts: Facts) -> Iterator[Hit]:
    for net in _networks(facts):
        if net.prefixlen == 0:
            continue  # HS-PROXY-101 says it louder
        if not (net.is_private or net.is_loopback or net.is_link_local):
            yield Hit(f"server.trusted_proxies contains {net}",
                      where(facts, "server.trusted_proxies"))


@check(
    "HS-PROXY-105",
    WARNING,
    "the client address is read from X-Real-IP",
    fix="set server.client_header = \"x-forwarded-for\" (or \"forwarded\") unless every "
    "trusted proxy overwrites X-Real-IP",
    doc="configurable-http-proxy and Caddy pass a client's own X-Real-IP through: the client "
    "then chooses the address the audit trail and the rate limit see.",
    tags=("proxies",),
)
@_policy_check
def proxy_real_ip(facts: Facts) -> Iterator[Hit]:
    if facts.value("server.client_header") == "x-real-ip" and facts.value(
        "server.trusted_proxies"
    ):
        yield Hit("server.client_header = \"x-real-ip\" with trusted proxies "
                  + ", ".join(facts.value("server.trusted_proxies")),
                  where(facts, "server.client_header"))


@check(
    "HS-TLS-101",
    WARNING,
    "plain-HTTP remote access is accepted by the policy",
    fix="set server.allow_insecure_remote = false and use TLS or a trusted TLS proxy",
    doc="The switch exists for lab networks; anywhere else tokens and cookies would cross the "
    "network in clear.",
    tags=("tls",),
)
@_policy_check
def tls_insecure_allowed(facts: Facts) -> Iterator[Hit]:
    if facts.value("server.allow_insecure_remote"):
        yield Hit("server.allow_insecure_remote = true",
                  where(facts, "server.allow_insecure_remote"))


@check(
    "HS-TLS-102",
    CRITICAL,
    "tokens and cookies cross the network in clear",
    fix="give --certfile/--keyfile, or a TLS proxy in server.trusted_proxies, or bind to "
    "127.0.0.1",
    doc="Bound beyond loopback with neither TLS nor a proxy, and the policy accepts it: anyone "
    "on the path reads the token and the session cookie.",
    tags=("tls",),
)
@_policy_check
def tls_cleartext(facts: Facts) -> Iterator[Hit]:
    if (
        not is_loopback_bind(facts.ip)
        and not facts.has_tls
        and not facts.value("server.trusted_proxies")
        and facts.value("server.allow_insecure_remote")
    ):
        yield Hit(f"ip = {facts.ip or '(all interfaces)'!r}, no certfile/keyfile, no trusted "
                  "proxy, server.allow_insecure_remote = true",
                  where(facts, "server.allow_insecure_remote"))


@check(
    "HS-TLS-104",
    WARNING,
    "HSTS is off",
    fix=f"set headers.hsts_max_age = {HSTS_MIN_MAX_AGE} (or more)",
    doc="Without Strict-Transport-Security the first plain-HTTP request (a typed address, an "
    "old bookmark) can be intercepted and the session cookie read.",
    tags=("tls", "headers"),
)
@_policy_check
def hsts_off(facts: Facts) -> Iterator[Hit]:
    if facts.value("headers.hsts_max_age") == 0:
        yield Hit("headers.hsts_max_age = 0", where(facts, "headers.hsts_max_age"))


@check(
    "HS-TLS-105",
    WARNING,
    "HSTS max-age is shorter than a year",
    fix=f"set headers.hsts_max_age = {HSTS_MIN_MAX_AGE} (or more)",
    doc="Browsers forget a short HSTS policy between visits; a year is the minimum the HSTS "
    "preload list and the HTTP Observatory accept.",
    tags=("tls", "headers"),
)
@_policy_check
def hsts_short(facts: Facts) -> Iterator[Hit]:
    age = facts.value("headers.hsts_max_age")
    if isinstance(age, int) and 0 < age < HSTS_MIN_MAX_AGE:
        yield Hit(f"headers.hsts_max_age = {age} ({age / 86400:.0f} days)",
                  where(facts, "headers.hsts_max_age"))


@check(
    "HS-TLS-106",
    INFO,
    "HSTS does not cover subdomains",
    fix="set headers.hsts_include_subdomains = true",
    doc="A sibling subdomain over plain HTTP can set cookies for the parent domain (cookie "
    "tossing) unless HSTS includes subdomains.",
    tags=("tls", "headers"),
)
@_policy_check
def hsts_subdomains(facts: Facts) -> Iterator[Hit]:
    if facts.value("headers.hsts_max_age") and not facts.value("headers.hsts_include_subdomains"):
        yield Hit("headers.hsts_include_subdomains = false",
                  where(facts, "headers.hsts_include_subdomains"))


# ---------------------------------------------------------------------------------------------
# Other headers


@check(
    "HS-HDR-101",
    WARNING,
    "responses may be embedded by any site",
    fix="set headers.cross_origin_resource_policy = \"same-origin\"",
    doc="Cross-Origin-Resource-Policy: cross-origin lets any page include API and file "
    "responses as <script>/<img> (XSSI, Spectre-style reads).",
    tags=("headers", "xsite"),
)
@_policy_check
def corp_cross_origin(facts: Facts) -> Iterator[Hit]:
    if facts.value("headers.cross_origin_resource_policy") == "cross-origin":
        yield Hit("headers.cross_origin_resource_policy = \"cross-origin\"",
                  where(facts, "headers.cross_origin_resource_policy"))


@check(
    "HS-HDR-102",
    INFO,
    "the window is not isolated from pages it opens",
    fix="set headers.cross_origin_opener_policy = \"same-origin\"",
    doc="With COOP unsafe-none a page opened from JupyterLab (or that opened it) keeps a "
    "handle on its window.",
    tags=("headers",),
)
@_policy_check
def coop_unsafe(facts: Facts) -> Iterator[Hit]:
    if facts.value("headers.cross_origin_opener_policy") == "unsafe-none":
        yield Hit("headers.cross_origin_opener_policy = \"unsafe-none\"",
                  where(facts, "headers.cross_origin_opener_policy"))


_PRIVATE_CLASSES = ("page", "api", "files", "nbconvert", "kernelspec")


@check(
    "HS-HDR-103",
    WARNING,
    "responses with user data may be cached",
    fix="set headers.cache_control.<class> = \"no-store\"",
    doc="Notebooks, file contents and API answers cached by the browser or a shared proxy "
    "outlive the session (and reach the next user of a shared machine).",
    tags=("headers",),
)
@_policy_check
def cache_control(facts: Facts) -> Iterator[Hit]:
    for rc in _PRIVATE_CLASSES:
        key = f"headers.cache_control.{rc}"
        if key not in _policy(facts).values:
            continue
        value = facts.value(key) or ""
        if "no-store" not in value.lower():
            yield Hit(f"{key} = {value!r}", where(facts, key), f"set {key} = \"no-store\"")


@check(
    "HS-HDR-104",
    INFO,
    "Permissions-Policy denies nothing",
    fix="restore headers.permissions_policy from the shipped default",
    doc="Without it, user content and extensions can ask for camera, microphone, geolocation "
    "and the like in the server's name.",
    tags=("headers",),
)
@_policy_check
def permissions_policy(facts: Facts) -> Iterator[Hit]:
    if not (facts.value("headers.permissions_policy") or "").strip():
        yield Hit("headers.permissions_policy = \"\"", where(facts, "headers.permissions_policy"))


@check(
    "HS-HDR-105",
    INFO,
    "the Referer tells other sites the server's origin",
    fix="set headers.referrer_policy = \"same-origin\" (or \"no-referrer\")",
    doc="strict-origin* sends the server's scheme, host and port to every site a notebook "
    "links to: internal host names leave the network.",
    tags=("headers",),
)
@_policy_check
def referrer_policy(facts: Facts) -> Iterator[Hit]:
    value = facts.value("headers.referrer_policy")
    if value in ("strict-origin", "strict-origin-when-cross-origin"):
        yield Hit(f"headers.referrer_policy = {value!r}", where(facts, "headers.referrer_policy"))


# ---------------------------------------------------------------------------------------------
# Paths


@check(
    "HS-PATH-101",
    WARNING,
    "hidden files are served",
    fix="set paths.allow_hidden = false (and list exceptions in paths.allow)",
    doc="Dot-files hold credentials (.netrc, .config/*, .kube) that the deny list cannot "
    "enumerate; with hidden files on, only paths.deny stands in front of them.",
    tags=("paths",),
)
@_policy_check
def paths_hidden(facts: Facts) -> Iterator[Hit]:
    if facts.value("paths.allow_hidden"):
        yield Hit("paths.allow_hidden = true", where(facts, "paths.allow_hidden"))


@check(
    "HS-PATH-102",
    WARNING,
    "a shipped deny rule was removed",
    fix="add the glob back to paths.deny (the list replaces the default as a whole)",
    doc="paths.deny is replaced, not appended: a policy that lists its own globs drops the "
    "shipped ones (SSH keys, cloud credentials, the server's own runtime files) unless it "
    "repeats them.",
    tags=("paths",),
)
@_policy_check
def paths_deny_removed(facts: Facts) -> Iterator[Hit]:
    current = set(facts.value("paths.deny") or ())
    for glob in facts.default_policy.values.get("paths.deny", ()):
        if glob not in current:
            yield Hit(f"paths.deny no longer contains {glob!r}", where(facts, "paths.deny"),
                      f"add {glob!r} to paths.deny")


@check(
    "HS-PATH-108",
    ERROR,
    "a shipped execution-persistence or secret path is no longer protected",
    fix="add the glob back to paths.protected (extend the list, never shorten it)",
    doc="paths.protected names the files that run later as the owner (IPython profiles, "
    "Jupyter config and kernel specs, shell and Python start-up files, git hooks, .ssh, "
    "autostart) or hold the server's secrets: with one removed, a contents:write client can "
    "plant code that runs as the owner, or read what lets it in (issue #18).",
    tags=("paths",),
)
@_policy_check
def paths_protected_removed(facts: Facts) -> Iterator[Hit]:
    current = set(facts.value("paths.protected") or ())
    for glob in facts.default_policy.values.get("paths.protected", ()):
        if glob not in current:
            yield Hit(f"paths.protected no longer contains {glob!r}",
                      where(facts, "paths.protected"), f"add {glob!r} to paths.protected")


@check(
    "HS-PATH-103",
    INFO,
    "hidden-file exceptions are listed",
    fix="review each glob in paths.allow",
    doc="Each paths.allow glob re-exposes hidden files (never denied ones) below it.",
    tags=("paths",),
)
@_policy_check
def paths_allow(facts: Facts) -> Iterator[Hit]:
    for glob in facts.value("paths.allow") or ():
        yield Hit(f"paths.allow contains {glob!r}", where(facts, "paths.allow"))


_ALL_HIDDEN = {"*", "**", "**/*", ".*", "**/.*", ".*/**", "**/.*/**", "**/.**"}


@check(
    "HS-PATH-104",
    WARNING,
    "a hidden-file exception matches every hidden file",
    fix="narrow the glob in paths.allow to the directory really needed (e.g. \".jupyter/lab/**\")",
    doc="An exception such as '**' or '.*' is allow_hidden = true in disguise.",
    tags=("paths",),
)
@_policy_check
def paths_allow_broad(facts: Facts) -> Iterator[Hit]:
    for glob in facts.value("paths.allow") or ():
        if glob in _ALL_HIDDEN:
            yield Hit(f"paths.allow contains {glob!r}", where(facts, "paths.allow"))


# ---------------------------------------------------------------------------------------------
# Tokens, terminals, routes


@check(
    "HS-TOKEN-103",
    INFO,
    "a URL token is accepted on page navigations",
    fix="set tokens.url_tokens = \"never\" once every user logs in with a password or a header",
    doc="The printed login URL carries the token. It is accepted only on a top-level page "
    "navigation and exchanged at once for a session (the URL is redirected without it), but it "
    "still passes through the address bar and, if pasted, chat logs.",
    tags=("tokens",),
)
@_policy_check
def url_tokens(facts: Facts) -> Iterator[Hit]:
    value = facts.value("tokens.url_tokens")
    if value != "never":
        yield Hit(f"tokens.url_tokens = {value!r}", where(facts, "tokens.url_tokens"))


@check(
    "HS-TOKEN-112",
    WARNING,
    "stored tokens are accepted in websocket URLs",
    fix='set tokens.websocket_url_tokens = "never" once every client sends '
    "'Authorization: token ...' on its websocket handshake",
    doc="With tokens.websocket_url_tokens = \"stored-scoped\" a stored, scoped token "
    "(hst_...) opens a websocket from ?token= in its URL (clients such as "
    "jupyter_kernel_client and @jupyterlab/services in Node). The owner's start-up token never "
    "does, but a URL is written to proxy and server access logs, where the stored token can be "
    "read until it expires or is revoked.",
    tags=("tokens",),
)
@_policy_check
def websocket_url_tokens(facts: Facts) -> Iterator[Hit]:
    value = facts.value("tokens.websocket_url_tokens")
    if value != "never":
        yield Hit(
            f"tokens.websocket_url_tokens = {value!r}",
            where(facts, "tokens.websocket_url_tokens"),
        )


@check(
    "HS-TERM-101",
    WARNING,
    "terminals are enabled",
    fix="set terminals.enabled = false unless users need a shell in the browser",
    doc="A terminal is a shell as the server's user over a websocket: any session hijack or "
    "cross-site websocket flaw is then a shell.",
    tags=("terminals",),
)
@_policy_check
def terminals_enabled(facts: Facts) -> Iterator[Hit]:
    if facts.value("terminals.enabled"):
        yield Hit("terminals.enabled = true", where(facts, "terminals.enabled"))


def _matches(pattern: str, path: str) -> bool:
    try:
        return re.fullmatch(pattern, path) is not None
    except re.error:
        return False


@check(
    "HS-METRICS-101",
    WARNING,
    "Prometheus metrics are public",
    fix="remove the /metrics pattern from routes.public (scrape with a token instead)",
    doc="/metrics tells anyone the handlers in use, request counts per route, kernel counts and "
    "user activity: reconnaissance for free.",
    tags=("routes", "metrics"),
)
@_policy_check
def metrics_public(facts: Facts) -> Iterator[Hit]:
    for pattern in facts.value("routes.public") or ():
        if _matches(pattern, "/metrics"):
            yield Hit(f"routes.public contains {pattern!r}, which matches /metrics",
                      where(facts, "routes.public"))


@check(
    "HS-ROUTE-101",
    WARNING,
    "routes were made public beyond the shipped list",
    fix="remove the pattern from routes.public unless it must be reached without logging in",
    doc="A public route answers anyone who can reach the port; the shipped list is the login "
    "page and application assets only.",
    tags=("routes", "auth"),
)
@_policy_check
def routes_public_added(facts: Facts) -> Iterator[Hit]:
    default = set(facts.default_policy.values.get("routes.public", ()))
    for pattern in facts.value("routes.public") or ():
        if pattern not in default and not _matches(pattern, "/metrics"):
            yield Hit(f"routes.public adds {pattern!r}", where(facts, "routes.public"))


@check(
    "HS-ROUTE-102",
    INFO,
    "undecorated routes were accepted beyond the shipped list",
    fix="review the handler and keep the pattern in routes.accept_undecorated only if it "
    "authenticates in its own code",
    doc="routes.accept_undecorated silences the start-up check for handlers without an "
    "authentication decorator; the policy's login gate still applies.",
    tags=("routes", "auth"),
)
@_policy_check
def routes_accept_added(facts: Facts) -> Iterator[Hit]:
    default = set(facts.default_policy.values.get("routes.accept_undecorated", ()))
    for pattern in facts.value("routes.accept_undecorated") or ():
        if pattern not in default:
            yield Hit(f"routes.accept_undecorated adds {pattern!r}",
                      where(facts, "routes.accept_undecorated"))


@check(
    "HS-SCOPE-104",
    INFO,
    "routes are mapped to scopes by the policy",
    fix="review each entry: the scopes should match what the extension's handler does",
    doc="scopes.routes opens extension routes the shipped route map refuses (or changes what a "
    "built-in route needs); each entry is a decision someone should have reviewed.",
    tags=("routes", "scopes"),
)
@_policy_check
def scopes_mapped_routes(facts: Facts) -> Iterator[Hit]:
    # An entry a shipped extension profile made (default_policy includes the applied profiles)
    # was reviewed with the package: not reported again, unless a file changed it.
    shipped = facts.default_policy.values.get("scopes.routes") or {}
    for pattern, methods in (facts.value("scopes.routes") or {}).items():
        if shipped.get(pattern) == methods:
            continue
        needs = ", ".join(f"{m} = {'+'.join(s) or '[]'}" for m, s in methods.items())
        yield Hit(f"scopes.routes {pattern!r}: {needs}", where(facts, "scopes.routes"))


@check(
    "HS-SCOPE-105",
    WARNING,
    "clients may emit events",
    fix="empty scopes.client_event_schemas unless an extension's front-end must post events",
    doc="POST /api/events puts a client's event on the server's bus, which the audit trail and "
    "every subscriber read; each listed schema is one a token with events:write can forge.",
    tags=("events", "scopes"),
)
@_policy_check
def scopes_client_events(facts: Facts) -> Iterator[Hit]:
    for schema in facts.value("scopes.client_event_schemas") or ():
        yield Hit(
            f"scopes.client_event_schemas lists {schema!r}",
            where(facts, "scopes.client_event_schemas"),
        )


# ---------------------------------------------------------------------------------------------
# Audit trail and metrics


@check(
    "HS-AUDIT-101",
    WARNING,
    "the audit trail is off",
    fix="set audit.enabled = true (the default)",
    doc="With no audit file, denials and sensitive allows (log-ins, tokens, file deletions, "
    "kernels) leave only log lines: nothing hash-chained, nothing verify-log can check.",
    tags=("audit",),
)
@_policy_check
def audit_off(facts: Facts) -> Iterator[Hit]:
    if facts.value("audit.enabled") is False:
        yield Hit("audit.enabled = false", where(facts, "audit.enabled"))


@check(
    "HS-AUDIT-104",
    WARNING,
    "the audit file is never fsynced",
    fix='set audit.fsync = "interval:1" (the default) or "always"',
    doc="With fsync never, a power loss or kernel crash can take the last records (the last "
    "seconds of an incident) with it; a killed process alone loses nothing.",
    tags=("audit",),
)
@_policy_check
def audit_no_fsync(facts: Facts) -> Iterator[Hit]:
    if facts.value("audit.enabled") and facts.value("audit.fsync") == "never":
        yield Hit('audit.fsync = "never"', where(facts, "audit.fsync"))


@check(
    "HS-AUDIT-105",
    INFO,
    "the audit trail has no signed checkpoints",
    fix="give an Ed25519 key in audit.signing_key (`openssl genpkey -algorithm ed25519`)",
    doc="The hash chain shows an edit in the middle of the file; without signatures, whoever "
    "can write the file (the server's user, every kernel) can rewrite its tail and recompute "
    "the hashes undetected, unless the head is anchored elsewhere (audit.stdout to a log "
    "collector).",
    tags=("audit",),
)
@_policy_check
def audit_unsigned(facts: Facts) -> Iterator[Hit]:
    if facts.value("audit.enabled") and not facts.value("audit.signing_key"):
        yield Hit('audit.signing_key = ""', where(facts, "audit.signing_key"))


@check(
    "HS-AUDIT-107",
    WARNING,
    "a request is answered even when its record could not be written to the audit file",
    fix='keep "file" in audit.require (the default: audit.require = ["file"])',
    doc="audit.require lists the sinks that must accept a record before the request is "
    "answered; without \"file\" a full disk or a removed directory leaves requests unrecorded "
    "in the hash-chained file (issue #19; HashiCorp Vault's rule for audit devices).",
    tags=("audit",),
)
@_policy_check
def audit_file_not_required(facts: Facts) -> Iterator[Hit]:
    required = tuple(facts.value("audit.require") or ())
    if facts.value("audit.enabled") and "file" not in required:
        yield Hit("audit.require = " + repr(list(required)), where(facts, "audit.require"))


@check(
    "HS-AUDIT-108",
    INFO,
    "the audit trail has no copy outside the server user's reach",
    fix='set audit.stdout = true (a container log collector) or audit.syslog = "host:port"',
    doc="Every kernel runs as the server's user and can delete or rewrite the audit file; a "
    f"removal is noticed and recorded ({Rule.AUDIT_FILE_LOST}), but the records before it "
    "survive only on a sink that user cannot reach: stdout to a collector, or a syslog "
    "collector (issue #19). Verify the collected copy with "
    "`hardened-server audit verify-log --stream`.",
    tags=("audit",),
)
@_policy_check
def audit_no_offhost_copy(facts: Facts) -> Iterator[Hit]:
    if facts.value("audit.enabled") and not (
        facts.value("audit.stdout") or facts.value("audit.syslog")
    ):
        yield Hit('audit.stdout = false, audit.syslog = ""', where(facts, "audit.stdout"))


@check(
    "HS-ACCT-101",
    WARNING,
    "nobody can later tell who ran which code, typed which command or read which file",
    fix="set audit.activity = true (the default)",
    doc="With audit.activity off the trail keeps decisions only: no record of the cells sent "
    f"to kernels ({Rule.ACCT_CODE_EXECUTED}), the lines typed into terminals "
    f"({Rule.ACCT_TERMINAL_INPUT}) or the files read and downloaded ({Rule.ACCT_FILE_READ}) "
    "(issue #20).",
    tags=("audit",),
)
@_policy_check
def activity_off(facts: Facts) -> Iterator[Hit]:
    if facts.value("audit.enabled") and facts.value("audit.activity") is False:
        yield Hit("audit.activity = false", where(facts, "audit.activity"))


@check(
    "HS-ACCT-102",
    WARNING,
    "what users type is recorded in clear",
    fix='set audit.code and audit.terminal_input to "hmac" (the default)',
    doc="In 'full' mode the code of every cell and every terminal line is written to the trail "
    "and every sink (stdout, syslog, the EventLogger): secrets typed into a cell, passwords "
    "typed at a prompt that does not echo. 'hmac' keeps a keyed digest an auditor can check "
    "with `hardened-server audit hash`.",
    tags=("audit",),
)
@_policy_check
def activity_in_clear(facts: Facts) -> Iterator[Hit]:
    if not (facts.value("audit.enabled") and facts.value("audit.activity")):
        return
    for key in ("audit.code", "audit.terminal_input"):
        if facts.value(key) == "full":
            yield Hit(f'{key} = "full"', where(facts, key))


@check(
    "HS-METRICS-102",
    WARNING,
    "/metrics needs no metrics:read scope",
    fix='map /metrics to "metrics:read" in scopes.routes, or remove the entry',
    doc="scopes.routes replaces the shipped requirement of /metrics (metrics:read): with no "
    "scope, or another one, every token and session of that kind reads request counts, "
    "decision counts and user activity.",
    tags=("metrics", "scopes"),
)
@_policy_check
def metrics_unscoped(facts: Facts) -> Iterator[Hit]:
    for pattern, methods in (facts.value("scopes.routes") or {}).items():
        if not _matches(pattern, "/metrics"):
            continue
        for method in ("GET", "*"):
            scopes = methods.get(method)
            if scopes is None:
                continue
            if not scopes or not {"metrics:read", "admin"} & set(scopes):
                shown = "+".join(scopes) or "no scope"
                yield Hit(
                    f"scopes.routes {pattern!r} {method} needs {shown}",
                    where(facts, "scopes.routes"),
                )


# ---------------------------------------------------------------------------------------------
# Limits

_MIB = 1024 * 1024


@check(
    "HS-LIMIT-101",
    WARNING,
    "request bodies may be huge",
    fix="set limits.max_body_bytes to 64 MiB or less (JupyterLab uploads in chunks)",
    doc="Bodies below the limit are buffered before any handler code (the login gate included) "
    "runs: an anonymous client can make the server hold the limit per request (stock "
    "jupyter_server: 512 MiB).",
    tags=("limits",),
)
@_policy_check
def limit_body(facts: Facts) -> Iterator[Hit]:
    size = facts.value("limits.max_body_bytes")
    if isinstance(size, int) and size > 256 * _MIB:
        yield Hit(f"limits.max_body_bytes = {size} ({size // _MIB} MiB)",
                  where(facts, "limits.max_body_bytes"))


@check(
    "HS-LIMIT-102",
    INFO,
    "the rate limit for anonymous requests is loose",
    fix="keep limits.unauthenticated_requests_per_minute at 600 or less (default "
    f"{shipped_policy().limits.unauthenticated_requests_per_minute})",
    doc="The limit is what slows password guessing and token-oracle probing from one address; "
    "a failed credential costs ten requests.",
    tags=("limits", "passwords"),
)
@_policy_check
def limit_rate(facts: Facts) -> Iterator[Hit]:
    rate = facts.value("limits.unauthenticated_requests_per_minute")
    burst = facts.value("limits.unauthenticated_burst")
    if isinstance(rate, int) and rate > 600:
        yield Hit(f"limits.unauthenticated_requests_per_minute = {rate}",
                  where(facts, "limits.unauthenticated_requests_per_minute"))
    if isinstance(burst, int) and burst > 1000:
        yield Hit(f"limits.unauthenticated_burst = {burst}",
                  where(facts, "limits.unauthenticated_burst"))


@check(
    "HS-LIMIT-103",
    INFO,
    "websocket messages may be very large",
    fix="keep limits.websocket_max_message_bytes at 100 MiB or less (default 10 MiB)",
    doc="Each websocket message is held in memory whole before the kernel sees it.",
    tags=("limits", "websockets"),
)
@_policy_check
def limit_websocket(facts: Facts) -> Iterator[Hit]:
    size = facts.value("limits.websocket_max_message_bytes")
    if isinstance(size, int) and size > 100 * _MIB:
        yield Hit(f"limits.websocket_max_message_bytes = {size} ({size // _MIB} MiB)",
                  where(facts, "limits.websocket_max_message_bytes"))


#: The connection limits and the slowloris arithmetic they stand for.
_CONNECTION_KEYS = (
    "limits.header_timeout_seconds",
    "limits.idle_timeout_seconds",
    "limits.connections_per_client",
)


@check(
    "HS-LIMIT-104",
    WARNING,
    "connection limits are looser than the shipped defaults",
    fix="keep limits.header_timeout_seconds at "
    f"{shipped_policy().limits.header_timeout_seconds}, limits.idle_timeout_seconds at "
    f"{shipped_policy().limits.idle_timeout_seconds} and limits.connections_per_client at "
    f"{shipped_policy().limits.connections_per_client} or less",
    doc="Each connection holds a file descriptor until it is closed. A longer header timeout "
    "lets a slowloris client (one header byte every few seconds) hold each of its "
    "connections longer, a higher per-client cap lets it hold more of them: 1,500 such "
    "connections under ulimit -n 1024 stopped the owner's own requests (issue #18).",
    tags=("limits",),
)
@_policy_check
def limit_connections(facts: Facts) -> Iterator[Hit]:
    shipped = shipped_policy().values
    for key in _CONNECTION_KEYS:
        value = facts.value(key)
        default = shipped.get(key)
        if isinstance(value, int) and isinstance(default, int) and value > default:
            yield Hit(f"{key} = {value} (default {default})", where(facts, key))


# ---------------------------------------------------------------------------------------------
# nbconvert


@check(
    "HS-NBC-101",
    WARNING,
    "notebooks are converted to HTML without sanitising",
    fix="nbconvert.sanitize_html = true (the default)",
    doc="The HTML export keeps the notebook's scripts and event handlers. The nbconvert route's "
    "sandbox CSP still holds them in the browser, but a downloaded export opened from disk "
    "has no CSP (GHSA-fcw5-x6j4-ccmp).",
    tags=("csp", "nbconvert"),
)
def nbconvert_unsanitised(facts: Facts) -> Iterator[Hit]:
    if facts.policy is None:
        return
    if not facts.policy.nbconvert.sanitize_html:
        yield Hit("nbconvert.sanitize_html = false", where(facts, "nbconvert.sanitize_html"))
