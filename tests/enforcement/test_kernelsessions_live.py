"""Session values are checked on the way in: malformed input is a 400, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
import requests

pytestmark = pytest.mark.live


@pytest.mark.parametrize(
    "body",
    [
        {"path": "a\x00b.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
        {"path": ["x"], "type": "notebook", "kernel": {"name": "python3"}},
        {"path": "ok.ipynb", "name": "n\x01", "type": "notebook", "kernel": {"name": "python3"}},
    ],
    ids=["nul-in-path", "list-as-path", "control-in-name"],
)
def test_malformed_session_values_get_400_not_500(live_server: Any, body: dict[str, Any]) -> None:
    """Stock turns every exception in create_session into a 500: a NUL in a session path (it
    ends up in the kernel's environment) or a non-string value is a 400 instead, and no kernel
    is started for it."""
    r = requests.post(
        live_server.url + "/api/sessions", json=body, headers=live_server.auth(), timeout=30
    )
    assert r.status_code == 400, (r.status_code, r.text)
    kernels = requests.get(live_server.url + "/api/kernels", headers=live_server.auth(), timeout=10)
    assert kernels.json() == []
