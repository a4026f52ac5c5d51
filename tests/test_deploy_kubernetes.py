"""deploy/kubernetes: the Zero to JupyterHub values and the policy ConfigMap, checked offline.

No cluster and no Helm here, and the chart's values schema is published only inside the Helm
chart (neither PyPI nor npm carries it), so this checks what can be checked without them: both
files parse; the values run `hardened-server singleuser`, point the server at the file the
ConfigMap provides, through traits hardened-server really has; the policy embedded in the
ConfigMap passes `hardened-server policy validate` and loads over the profiles the singleuser
command layers under it; the NetworkPolicy that justifies trusting the proxy is on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from hardened_server.app import HardenedServerApp
from hardened_server.policy.loader import load_policy, shipped_profiles
from tests.conftest import REPO

K8S = REPO / "deploy" / "kubernetes"


def load_yaml(name: str) -> Any:
    return yaml.safe_load((K8S / name).read_text())


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return load_yaml("values.yaml")


@pytest.fixture(scope="module")
def configmap() -> dict[str, Any]:
    return load_yaml("policy-configmap.yaml")


def server_config(values: dict[str, Any]) -> dict[str, Any]:
    files = values["singleuser"]["extraFiles"]
    (entry,) = [f for f in files.values() if f["mountPath"].endswith(".json")]
    assert entry["mountPath"].startswith("/etc/jupyter/jupyter_server_config.d/")
    return entry["data"]


def test_user_servers_run_hardened_server_singleuser(values: dict[str, Any]) -> None:
    cmd = values["singleuser"]["cmd"]
    assert PurePosixPath(cmd[0]).is_absolute()
    assert PurePosixPath(cmd[0]).name == "hardened-server"
    assert cmd[1:] == ["singleuser"]
    assert values["hub"]["config"]["Spawner"]["disable_user_config"] is True
    assert values["singleuser"]["allowPrivilegeEscalation"] is False


def test_server_config_uses_real_traits_and_the_configmap_mount(
    values: dict[str, Any], configmap: dict[str, Any]
) -> None:
    config = server_config(values)
    traits = HardenedServerApp.class_traits(config=True)
    for key in config["HardenedServerApp"]:
        assert key in traits, f"HardenedServerApp has no configurable trait {key!r}"
    # The same JSON the chart renders must be loadable by traitlets (plain JSON types).
    json.loads(json.dumps(config))
    (mount,) = values["singleuser"]["storage"]["extraVolumeMounts"]
    (volume,) = values["singleuser"]["storage"]["extraVolumes"]
    assert mount["name"] == volume["name"]
    assert mount["readOnly"] is True
    assert "subPath" not in mount, "a subPath mount never sees ConfigMap updates"
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    for path in config["HardenedServerApp"]["policy_files"]:
        path = PurePosixPath(path)
        assert path.parent == PurePosixPath(mount["mountPath"])
        assert path.name in configmap["data"]
    assert config["HardenedServerApp"]["policy_watch_interval"] > 0


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
