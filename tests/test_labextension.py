"""The prebuilt JupyterLab extension shipped in hardened_server/labextensions (issue #21) is the
one labextension/ builds: its recorded digests (labextension/built.json, written by
labextension/build.sh) match the source and the committed build. A source change without a
rebuild, or a hand-edited bundle, fails here. The browser proves it works
(tests/e2e/test_noeval_browser.py)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

from hardened_server.app import LABEXTENSIONS

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "labextension"
BUILT = LABEXTENSIONS / "hardened-server-settings"


def digest_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("labextension_digest", SOURCE / "digest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_build_matches_the_source_it_records() -> None:
    recorded = json.loads((SOURCE / "built.json").read_text())
    actual = digest_module().digests()
    assert actual["source"] == recorded["source"], (
        "labextension/ changed since the last build: run `make labextension` and commit "
        "hardened_server/labextensions and labextension/built.json"
    )
    assert actual["built"] == recorded["built"], (
        "hardened_server/labextensions differs from what labextension/build.sh produced"
    )


def test_built_extension_replaces_the_core_settings_plugin() -> None:
    """jupyterlab_server reads ``jupyterlab.disabledExtensions`` of every extension on the
    labextensions path into the page config: the core plugin that compiles schemas with
    ``new Function`` is disabled wherever ours is loaded, and only there."""
    meta = json.loads((BUILT / "package.json").read_text())
    assert meta["name"] == BUILT.name
    assert meta["jupyterlab"]["disabledExtensions"] == ["@jupyterlab/apputils-extension:settings"]
    assert (BUILT / meta["jupyterlab"]["_build"]["load"]).is_file()
    # the form views' validator: offered in the share scope above every real 5.x, so that
    # JupyterLab's consumers (requiredVersion ^5.13.4, highest version wins) take ours
    offered = meta["jupyterlab"]["sharedPackages"]["@rjsf/validator-ajv8"]
    assert offered["import"] == "./lib/rjsfvalidator.js"
    assert offered["version"] == "5.999.0"
    assert offered["singleton"] is False
    # everything else we use is JupyterLab's own (consumed) or private to our bundle
    assert meta["jupyterlab"]["sharedPackages"]["@rjsf/utils"]["bundled"] is False
    source = (SOURCE / "src" / "index.ts").read_text()
    assert "provides: ISettingRegistry" in source
    assert "validator: new InterpretingSchemaValidator()" in source


def test_the_bundle_turns_no_string_into_code() -> None:
    """No ``eval(`` and no ``new Function(`` in what we ship (the bundled libraries'
    ``Function("return this")()`` global-object fallbacks run only where ``globalThis``/``window``
    is missing, never in a browser page)."""
    for path in sorted((BUILT / "static").glob("*.js")):
        text = path.read_text()
        assert not re.search(r"\beval\(|new Function\(", text), path.name


def test_no_node_modules_or_build_machine_paths_are_shipped() -> None:
    assert not list(LABEXTENSIONS.rglob("node_modules"))
    for path in sorted(p for p in LABEXTENSIONS.rglob("*") if p.is_file()):
        assert str(SOURCE) not in path.read_text(errors="replace"), path
