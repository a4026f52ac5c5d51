"""The Kubernetes recipe (deploy/kubernetes) as Zero to JupyterHub and KubeSpawner apply it,
without a cluster: the values turned into KubeSpawner configuration the way z2jh's
``jupyterhub/files/hub/jupyterhub_config.py`` does for the keys they use (:data:`Z2JH_TRAITS`;
an unmapped key is an error), the user's pod rendered by KubeSpawner itself
(``get_pod_manifest`` → ``make_pod``: a V1Pod, no API call), and the pod's command and files
laid out on this machine under a prefix (:func:`pod_command`, :class:`ConfigMapMount`).

Used by tests/test_deploy_kubernetes.py (the pod) and tests/e2e/test_jupyterhub.py (the pod's
command and files under a real hub).
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from traitlets.config import Config

from tests.conftest import REPO

K8S = REPO / "deploy" / "kubernetes"

#: ``singleuser.*`` keys of values.yaml -> the KubeSpawner trait z2jh's jupyterhub_config.py
#: sets from them (its camelCase table, and ``c.Spawner.cmd`` from ``singleuser.cmd``).
Z2JH_TRAITS: dict[str, str] = {
    "cmd": "cmd",
    "uid": "uid",
    "fsGid": "fs_gid",
    "allowPrivilegeEscalation": "allow_privilege_escalation",
    "extraEnv": "environment",
    "extraContainerConfig": "extra_container_config",
    "extraPodConfig": "extra_pod_config",
}
#: Keys the chart renders into other objects (its NetworkPolicy, an init container) or maps
#: in :func:`spawner_config` itself (``image``, ``storage``).
CHART_KEYS = frozenset({"image", "storage", "networkPolicy", "cloudMetadata"})

# A cluster nobody listens on: KubeSpawner's constructor loads a client configuration, and
# nothing here ever connects.
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: offline, user: {token: unused}}]
contexts: [{name: offline, context: {cluster: offline, user: offline, namespace: jhub}}]
current-context: offline
"""


def load_yaml(name: str) -> Any:
    return yaml.safe_load((K8S / name).read_text())


def spawner_config(values: dict[str, Any]) -> Config:
    """The KubeSpawner configuration the chart builds from ``values``."""
    c = Config()
    singleuser = values["singleuser"]
    unknown = set(singleuser) - set(Z2JH_TRAITS) - CHART_KEYS
    assert not unknown, f"map {sorted(unknown)} the way z2jh's jupyterhub_config.py does"
    for key, trait in Z2JH_TRAITS.items():
        if key in singleuser:
            c.KubeSpawner[trait] = singleuser[key]
    image = singleuser["image"]
    c.KubeSpawner.image = f"{image['name']}:{image['tag']}"
    storage = singleuser.get("storage", {})
    c.KubeSpawner.volumes = list(storage.get("extraVolumes", []))
    c.KubeSpawner.volume_mounts = list(storage.get("extraVolumeMounts", []))
    for section, traits in values.get("hub", {}).get("config", {}).items():
        for trait, value in traits.items():
            c[section][trait] = value
    return c


def render_pod(values: dict[str, Any], workdir: Path, user: str = "alice") -> dict[str, Any]:
    """KubeSpawner's pod for ``user``, serialised as it would be sent to the API server."""
    from kubernetes_asyncio.config import kube_config
    from kubespawner import KubeSpawner

    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    # Read at import from $KUBECONFIG: point the client library's default at the offline file.
    old = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)

    async def render() -> dict[str, Any]:
        spawner = KubeSpawner(config=spawner_config(values), _mock=True)
        spawner.user.name = user
        spawner.api_token = "0" * 32
        try:
            pod = await spawner.get_pod_manifest()
            manifest: dict[str, Any] = spawner.api.api_client.sanitize_for_serialization(pod)
            return manifest
        finally:
            await spawner.api.api_client.close()

    try:
        return asyncio.run(render())
    finally:
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = old


def container(pod: dict[str, Any]) -> dict[str, Any]:
    (notebook,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    return notebook


def flag_values(args: list[str], flag: str) -> list[str]:
    return [a.split("=", 1)[1] for a in args if a.startswith(f"--{flag}=")]


class ConfigMapMount:
    """A ConfigMap volume laid out as the kubelet does: ``..<stamp>/FILE``, a ``..data``
    symlink to it and ``FILE -> ..data/FILE``; an update is a new stamp directory and an atomic
    rename of a new ``..data`` link (what the policy file watcher has to see)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.generation = 0

    def write(self, data: dict[str, str]) -> None:
        self.generation += 1
        stamp = self.directory / f"..2026_01_01_00_00_{self.generation:02d}"
        stamp.mkdir(parents=True)
        for name, text in data.items():
            (stamp / name).write_text(text)
            link = self.directory / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        tmp = self.directory / "..data_tmp"
        tmp.symlink_to(stamp.name)
        os.replace(tmp, self.directory / "..data")


@dataclass
class PodCommand:
    """The pod's command as this machine runs it: ``argv`` (the image's executable is this
    interpreter running the package; every path inside a mount moved under ``prefix``), the
    environment the values add (``extraEnv``), and the emulated ConfigMap mount."""

    argv: list[str]
    env: dict[str, str]
    mount: ConfigMapMount
    data: dict[str, str]


def pod_command(pod: dict[str, Any], configmap: dict[str, Any], prefix: Path,
                values: dict[str, Any]) -> PodCommand:
    notebook = container(pod)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts: list[str] = []
    mount: ConfigMapMount | None = None
    for m in notebook["volumeMounts"]:
        source = volumes[m["name"]]
        assert "configMap" in source, f"no emulation for volume {source}"
        assert source["configMap"]["name"] == configmap["metadata"]["name"]
        mounts.append(m["mountPath"].rstrip("/"))
        mount = ConfigMapMount(Path(str(prefix) + m["mountPath"]))
        mount.write(configmap["data"])
    assert mount is not None, "the pod mounts no ConfigMap"

    def emulated(path: str) -> str:
        hit = any(path == m or path.startswith(m + "/") for m in mounts)
        return str(prefix) + path if hit else path

    args = []
    for arg in notebook["args"][1:]:
        flag, sep, value = arg.partition("=")
        args.append(flag + sep + emulated(value) if sep else arg)
    pod_env = {e["name"]: e.get("value") for e in notebook["env"]}
    extra = values["singleuser"].get("extraEnv", {})
    env = {}
    for name in extra:
        assert name in pod_env, f"{name} of extraEnv is not in the pod"
        env[name] = str(pod_env[name])
    return PodCommand([sys.executable, "-m", "hardened_server", *args], env, mount,
                      dict(configmap["data"]))
