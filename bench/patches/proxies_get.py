"""What-if: no linear header scan in ``hardened_server.policy.proxies._get``.

``_get`` falls back to scanning every header with ``.lower()`` whenever a header is absent, and
``client_address`` asks for seven forwarding headers that are absent on almost every request:
7 scans of all headers per request, although tornado's ``HTTPHeaders.get`` is already
case-insensitive. Proposed for real: scan only a plain ``dict`` (tests, ``policy explain``).
"""

from hardened_server.policy import proxies

_scan = proxies._get


def _get(headers, name):  # type: ignore[no-untyped-def]
    if isinstance(headers, dict):
        return _scan(headers, name)
    value = headers.get(name)
    if value is None or not isinstance(value, str) or len(value) > proxies._MAX_HEADER_LENGTH:
        return None
    return value


proxies._get = _get
