"""Instruction counts of the pure decision chain, for a machine too busy for wall-clock numbers.

``N`` iterations of what ``bench/test_micro.py``'s full chain does for ``GET /api/contents/<file>``
(client address, route, Host, fetch metadata, path with the resolver the server uses, scopes,
header set). Run it twice under callgrind and subtract, so start-up cancels::

    for n in 0 1000; do
        valgrind --tool=callgrind --callgrind-out-file=cg.$n .venv/bin/python bench/icount.py $n
    done
    # instructions per request = (Ir of cg.1000 - Ir of cg.0) / 1000  (callgrind_annotate)

Works on older trees too (no ``RootResolver``: ``os.path.realpath``; no route map: no scopes).
"""

import atexit
import os
import shutil
import sys
import tempfile

from tornado.httputil import HTTPHeaders

from hardened_server.enforcement.runtime import compile_policy
from hardened_server.policy import proxies
from hardened_server.policy.fetchmeta import cross_site_decision
from hardened_server.policy.hosts import is_allowed_host
from hardened_server.policy.loader import load_policy
from hardened_server.policy.paths import PathOp, PathPolicy

try:
    from hardened_server.enforcement.contents import RootResolver
except ImportError:
    RootResolver = None
P = load_policy()
C = compile_policy(P, "/")
pp = PathPolicy.from_paths_policy(P.paths)
root = tempfile.mkdtemp(prefix="icount-")
atexit.register(shutil.rmtree, root, True)
os.makedirs(root + "/dir200")
open(root + "/dir200/notes-000.md", "w").close()
resolve = RootResolver(root) if RootResolver else os.path.realpath
trusted = proxies.compile_trusted([])
h = HTTPHeaders()
for k, v in [
    ("Host", "127.0.0.1:8888"),
    ("Connection", "keep-alive"),
    ("User-Agent", "Mozilla/5.0"),
    ("Accept", "*/*"),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-Mode", "cors"),
    ("Sec-Fetch-Dest", "empty"),
    ("Referer", "http://127.0.0.1:8888/lab"),
    ("Accept-Encoding", "gzip"),
    ("Accept-Language", "en"),
    ("Cookie", "_xsrf=1; username-x=2"),
]:
    h.add(k, v)
own = frozenset({"http://127.0.0.1:8888"})
kinds = frozenset({"api"})
pattern = "/api/contents(?P<path>(?:(?:/[^/]+)+|/?))$"


def chain():
    proxies.client_address("127.0.0.1", h, trusted)
    route = C.route(pattern, kinds)
    assert is_allowed_host("127.0.0.1:8888", C.hosts)
    assert cross_site_decision(
        "GET",
        route.route_class,
        "same-origin",
        "cors",
        "empty",
        None,
        None,
        own_origins=own,
        cors_origins=C.cors_origins,
    )
    assert pp.decide("dir200/notes-000.md", PathOp.READ, root=root, resolve=resolve)
    if hasattr(C, "route_scopes"):
        from hardened_server.policy.scopemap import scope_allows

        assert scope_allows(
            C.route_scopes(
                pattern,
                "jupyter_server.services.contents.handlers.ContentsHandler",
                frozenset({"GET"}),
            ),
            "GET",
            frozenset({"admin"}),
        )
    assert C.headers[(route.route_class, False)]


chain()
for _ in range(int(sys.argv[1])):
    chain()
