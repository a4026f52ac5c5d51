"""deploy/kubernetes: the Zero to JupyterHub values and the policy ConfigMap, as the chart and
KubeSpawner apply them (no cluster, no Helm; tests/support/kubernetes.py).

The values are turned into KubeSpawner configuration the way z2jh's
``jupyterhub/files/hub/jupyterhub_config.py`` does for the keys they use (an unmapped key fails),
and KubeSpawner itself (``jupyterhub-kubespawner`` from PyPI, the test extra) renders the user's
pod with ``get_pod_manifest`` → ``make_pod``. On that pod: the command runs ``hardened-server
singleuser`` with the site policy from the mounted ConfigMap, ``fsGroup`` survives next to the
rest of the pod security context, and the liveness probe is the server's ``/hs-health``.

The pod's command with exactly the files it mounts, under a real JupyterHub and
configurable-http-proxy (site policy loaded, a user answered through the hub's public host
name, the probe, reload by the file watcher and by SIGHUP): tests/e2e/test_jupyterhub.py,
``test_kubernetes_pod_*``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from hardened_server.app import HardenedServerApp
from hardened_server.policy.health import HEALTH_PATH
from hardened_server.policy.loader import load_policy, shipped_profiles
from tests.support.kubernetes import container, flag_values, load_yaml, render_pod


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return load_yaml("values.yaml")


@pytest.fixture(scope="module")
def configmap() -> dict[str, Any]:
    return load_yaml("policy-configmap.yaml")


@pytest.fixture(scope="module")
def pod(values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    return render_pod(values, tmp_path_factory.mktemp("pod"))


# -- offline ------------------------------------------------------------------------------------


def test_user_servers_run_hardened_server_singleuser(pod: Any, values: dict[str, Any]) -> None:
    args = container(pod)["args"]
    assert PurePosixPath(args[0]).is_absolute()
    assert PurePosixPath(args[0]).name == "hardened-server"
    assert args[1] == "singleuser"
    assert values["hub"]["config"]["Spawner"]["disable_user_config"] is True


def test_the_command_points_at_the_mounted_configmap(pod: Any, configmap: dict[str, Any]) -> None:
    """The site policy is a ``--policy`` flag of the command (read by hardened-server itself,
    whatever Jupyter config paths the image has), naming a file of the ConfigMap through a
    read-only directory mount (no ``subPath``: a subPath mount never sees ConfigMap updates)."""
    notebook = container(pod)
    policies = flag_values(notebook["args"], "policy")
    assert policies, notebook["args"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    for path in map(PurePosixPath, policies):
        (mount,) = [
            m for m in notebook["volumeMounts"] if path.parent == PurePosixPath(m["mountPath"])
        ]
        assert mount["readOnly"] is True
        assert "subPath" not in mount
        assert volumes[mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
        assert path.name in configmap["data"]
    assert float(flag_values(notebook["args"], "policy-watch-interval")[0]) > 0
    # The flags are the app's own: parsed, they set its traits.
    app = HardenedServerApp()
    app.parse_command_line(notebook["args"][2:])
    assert app.policy_files == policies


def test_no_settings_where_jupyter_reads_only_extension_switches(values: dict[str, Any]) -> None:
    """``jupyter_server_config.d/*.json`` only enables extensions: settings put there (the
    earlier recipe) were never read, and every user request was refused (HS-HOST-002)."""
    for entry in values["singleuser"].get("extraFiles", {}).values():
        assert "_config.d/" not in entry["mountPath"], entry


def test_pod_security_context_keeps_fsgroup(pod: Any, values: dict[str, Any]) -> None:
    """KubeSpawner merges ``fs_gid`` (``singleuser.fsGid``) into ``pod_security_context``;
    ``extraPodConfig.securityContext`` would replace the merged context and drop it."""
    psc = pod["spec"]["securityContext"]
    assert psc["fsGroup"] == values["singleuser"]["fsGid"] == 100
    assert psc["runAsNonRoot"] is True
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "securityContext" not in values["singleuser"].get("extraPodConfig", {})
    csc = container(pod)["securityContext"]
    assert csc["runAsUser"] == 1000
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["runAsNonRoot"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}


def test_pod_security_context_without_the_fix_loses_fsgroup(
    values: dict[str, Any], tmp_path: Path
) -> None:
    """The finding itself, so that this test keeps meaning something: the old recipe's
    ``extraPodConfig.securityContext`` renders a pod without ``fsGroup``."""
    old = json.loads(json.dumps(values))
    old["singleuser"]["extraPodConfig"] = {
        "securityContext": old["hub"]["config"]["KubeSpawner"].pop("pod_security_context")
    }
    psc = render_pod(old, tmp_path)["spec"].get("securityContext")
    assert "fsGroup" not in (psc or {})


def test_liveness_probe_is_the_servers_health_route(pod: Any) -> None:
    notebook = container(pod)
    ports = {p["name"] for p in notebook["ports"]}
    for name in ("livenessProbe", "startupProbe"):
        probe = notebook.get(name)
        assert probe is not None, name
        assert probe["httpGet"]["path"] == HEALTH_PATH
        assert probe["httpGet"]["port"] in ports
        assert "host" not in probe["httpGet"], "the probe must use the pod's own address"
        assert "httpHeaders" not in probe["httpGet"]
    assert notebook["livenessProbe"]["periodSeconds"] >= 10


def test_policy_in_the_configmap_validates(configmap: dict[str, Any], tmp_path: Path) -> None:
    assert configmap["kind"] == "ConfigMap"
    files = []
    for name, text in configmap["data"].items():
        path = tmp_path / name
        path.write_text(text)
        files.append(path)
    result = subprocess.run(
        [sys.executable, "-m", "hardened_server", "policy", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # Over the profiles `hardened-server singleuser` puts under it, too.
    layers = [p for p in ("jupyterhub",) if p in shipped_profiles()]
    policy = load_policy([*layers, *files])
    assert policy.server.public_hostnames
    assert policy.server.trusted_proxies
    assert policy.server.client_header == "x-forwarded-for"


def test_network_policy_is_on(values: dict[str, Any]) -> None:
    netpol = values["singleuser"]["networkPolicy"]
    assert netpol["enabled"] is True
    assert netpol["egressAllowRules"]["cloudMetadataServer"] is False
    assert netpol["egressAllowRules"]["privateIPs"] is False
    assert values["singleuser"]["cloudMetadata"]["blockWithIptables"] is True
