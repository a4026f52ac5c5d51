"""The wheel ships the policy profiles, and an installed (non-editable) package finds them.

The profiles live at the top of the repository (``policies/``) and hatch's ``force-include``
copies them into ``hardened_server/_profiles`` in the wheel. An editable install never exercises
that path, so a broken ``force-include`` would pass every other test and then fail on the first
real install with "file not found" for the default profile: the server would not start at all.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import json, hardened_server
from hardened_server.policy import loader
policy = loader.load_policy()
print(json.dumps({
    "package": hardened_server.__file__,
    "profiles_dir": str(loader.profiles_dir()),
    "profiles": {name: str(path) for name, path in loader.shipped_profiles().items()},
    "default": str(loader.shipped_profiles()["default"]),
    "sources": list(policy.sources),
    "fingerprint": policy.fingerprint,
    "by_name": str(loader.resolve_policy_path("default")),
    "by_name_fingerprint": loader.load_policy(["default"]).fingerprint,
    "extension_profiles": {n: str(p) for n, p in loader.extension_profiles().items()},
}))
"""


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=150, check=False
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.timeout(180)
def test_wheel_ships_the_profiles_and_the_installed_package_finds_them(tmp_path: Path) -> None:
    """Build the wheel, install it into a private directory, import it from there (not from the
    checkout) and load the default policy."""
    assert importlib.util.find_spec("hatchling") is not None, (
        "hatchling is not installed: it must be in the test extras of pyproject.toml "
        "(the wheel is built with --no-build-isolation)"
    )
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(REPO)],
        cwd=tmp_path,
        env=pip_env,
    )  # fmt: skip
    wheels = sorted(dist.glob("hardened_server-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    wheel = wheels[0]

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    shipped = sorted(p.name for p in (REPO / "policies").glob("*.toml"))
    assert "default.toml" in shipped
    for name in shipped:
        assert f"hardened_server/_profiles/{name}" in names, sorted(names)
    extension_profiles = sorted(p.name for p in (REPO / "policies" / "extensions").glob("*.toml"))
    assert extension_profiles
    for name in extension_profiles:
        assert f"hardened_server/_profiles/extensions/{name}" in names, sorted(names)
    assert "hardened_server/policy/loader.py" in names
    # the prebuilt JupyterLab extension (issue #21), inside the package: app.LABEXTENSIONS
    built = REPO / "hardened_server" / "labextensions"
    for path in sorted(p for p in built.rglob("*") if p.is_file()):
        assert path.relative_to(REPO).as_posix() in names, sorted(names)
    assert not any(n.startswith("policies/") for n in names), "profiles belong in the package"
    # Voila's template, where Voila looks: <prefix>/share/jupyter/voila/templates/hardened
    data = [n for n in names if n.endswith("/share/jupyter/voila/templates/hardened/index.html.j2")]
    assert data, sorted(names)
    assert data[0].startswith("hardened_server-")
    assert ".data/data/" in data[0]

    site = tmp_path / "site"
    run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
         "--target", str(site), str(wheel)],
        cwd=tmp_path,
        env=pip_env,
    )  # fmt: skip

    # cwd is tmp_path and PYTHONPATH puts the private site first, so the checkout (reachable in
    # this venv only through the editable install's .pth, appended after site-packages) loses.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JUPYTER"))}
    env["PYTHONPATH"] = str(site)
    probe = json.loads(run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env))

    installed = site.resolve()
    assert Path(probe["package"]).resolve().is_relative_to(installed), probe["package"]
    assert Path(probe["profiles_dir"]).resolve() == installed / "hardened_server" / "_profiles"
    assert sorted(Path(p).name for p in probe["profiles"].values()) == shipped
    assert Path(probe["default"]).resolve().is_relative_to(installed), probe["default"]
    assert probe["sources"] == [probe["default"]]
    assert probe["by_name"] == probe["default"]  # --policy default: the installed profile
    assert probe["by_name_fingerprint"] == probe["fingerprint"]
    found = {Path(p).name: Path(p).resolve() for p in probe["extension_profiles"].values()}
    assert sorted(found) == extension_profiles
    assert all(p.is_relative_to(installed) for p in found.values())

    # The installed profile is the reviewed file, byte for byte: same effective policy.
    from hardened_server.policy.loader import load_policy

    assert probe["fingerprint"] == load_policy().fingerprint
    assert (installed / "hardened_server" / "_profiles" / "default.toml").read_bytes() == (
        REPO / "policies" / "default.toml"
    ).read_bytes()
