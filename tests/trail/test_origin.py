"""The ``server`` object every chain line carries (hardened_server/trail/origin.py)."""

from __future__ import annotations

import socket

from hardened_server.trail.origin import MAX_VALUE, server_identity


def test_under_the_hub_the_line_names_user_server_and_pod() -> None:
    env = {"JUPYTERHUB_USER": "alice", "JUPYTERHUB_SERVER_NAME": "gpu", "POD_NAME": "jupyter-alice"}
    assert server_identity(8888, env) == {
        "hub_user": "alice",
        "server_name": "gpu",
        "pod": "jupyter-alice",
        "host": socket.gethostname()[:MAX_VALUE],
        "port": 8888,
    }


def test_the_default_server_has_an_empty_name_and_a_plain_server_only_host_and_port() -> None:
    assert server_identity(1, {"JUPYTERHUB_USER": "bob"})["server_name"] == ""
    assert set(server_identity(1, {})) == {"host", "port"}


def test_values_stay_one_short_line() -> None:
    ident = server_identity(1, {"JUPYTERHUB_USER": "a\nb\x1b" + "x" * 500})
    user = str(ident["hub_user"])
    assert "\n" not in user
    assert "\x1b" not in user
    assert len(user) == MAX_VALUE
