"""What-if: Host and Origin values are normalised once per distinct value, not per call.

A request parses its Host header three times (``gate.admit``'s ``is_allowed_host``,
``proxies.client_address``'s ``_host`` and the handler's ``check_host``) and normalises its own
origin once more (``gate.own_origin``); each parse builds an ``ipaddress.IPv4Address``. The
functions are pure and the values repeat (a server answers to a handful of names), so a bounded
``functools.lru_cache`` answers all but the first from memory; distinct values from an attacker
only churn the cache. Proposed for real: ``@functools.lru_cache(maxsize=4096)`` on
``hosts.split_host_header``, ``origins.normalize_hostname`` and ``origins.normalize_origin``
(the decorator at the definition covers every importer).
"""

import functools

from hardened_server.enforcement import gate
from hardened_server.policy import cors, fetchmeta, hosts, origins, proxies

_norm_host = functools.lru_cache(maxsize=4096)(origins.normalize_hostname)
_norm_origin = functools.lru_cache(maxsize=4096)(origins.normalize_origin)
_split = functools.lru_cache(maxsize=4096)(hosts.split_host_header)

origins.normalize_hostname = hosts.normalize_hostname = _norm_host
hosts.split_host_header = proxies.split_host_header = _split
origins.normalize_origin = _norm_origin
gate.normalize_origin = fetchmeta.normalize_origin = cors.normalize_origin = _norm_origin
