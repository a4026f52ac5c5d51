"""Issue #16 item 2: jupytext replaces the contents manager after start-up. Its class is built
on hardened-server's (``build_async_jupytext_contents_manager_class(HardenedContentsManager)``),
so the paths policy still decides every file it touches, paired files included."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

from tests.support.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def notebook(formats: str, source: str = "print('hello')") -> dict[str, Any]:
    return {
        "type": "notebook",
        "content": {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {"jupytext": {"formats": formats},
                         "kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}},
            "cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None,
                       "outputs": [], "source": source}],
        },
    }


def api(server: ServerProcess, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{server.url}/api/contents/{path}",
                            headers=server.auth(), timeout=30, **kwargs)


def audit_text(server: ServerProcess) -> str:
    runtime = server.workdir / "jupyter" / "runtime"
    return "".join(p.read_text() for p in runtime.glob("hardened-server-audit-*.jsonl*"))


def test_script_opens_as_a_notebook(eco_server: ServerProcess) -> None:
    """jupytext's feature still works: a percent-format script reads as a notebook."""
    name = f"script-{uuid.uuid4().hex[:8]}.py"
    (eco_server.root / name).write_text("# %%\nx = 1\n\n# %% [markdown]\n# Title\n")
    response = api(eco_server, "GET", name, params={"type": "notebook"})
    assert response.status_code == 200, response.text
    model = response.json()
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert [c["cell_type"] for c in cells] == ["code", "markdown"], cells


@pytest.mark.parametrize(
    ("formats", "target"),
    [
        ("ipynb,.ssh//py:percent", ".ssh/{stem}.py"),  # hidden directory
        # not hidden, but under the paths.deny glob "**/id_rsa*"
        ("ipynb,keys/id_rsa_/py:percent", "keys/id_rsa_{stem}.py"),
    ],
)
def test_paired_file_is_not_written_into_a_refused_path(
    eco_server: ServerProcess, formats: str, target: str
) -> None:
    """Pairing ``nb.ipynb`` with a file in a hidden or denied directory: the notebook itself
    (an allowed path) is saved, the paired write is refused by the path policy (jupytext then
    answers its own 500 "Unexpected error while saving file"), nothing lands in the refused
    place, and the refusal is in the audit trail: a denial naming the refused file, or the
    refused folder it would go into (a request records its first denial; jupytext's probe of
    the folder, which exists, comes before the write, and a probe of a name that is not on disk
    is no attempt on anything and leaves no record)."""
    stem = f"nb-{uuid.uuid4().hex[:8]}"
    destination = eco_server.root / target.format(stem=stem)
    destination.parent.mkdir(exist_ok=True)
    response = api(eco_server, "PUT", f"{stem}.ipynb", data=json.dumps(notebook(formats)))
    assert response.status_code in (404, 500), response.text
    assert not destination.exists(), f"{destination} was written"
    refused = target.format(stem=stem)
    events = (json.loads(line).get("event") or {} for line in audit_text(eco_server).splitlines())
    denials = [
        event["subject"]
        for event in events
        if event.get("decision") == "deny" and event.get("path") == f"/api/contents/{stem}.ipynb"
    ]
    assert denials, "no denial recorded for the paired write"
    assert any(
        subject.split(" ", 1)[1] in (refused, refused.rpartition("/")[0]) for subject in denials
    ), denials


def test_paired_file_in_a_refused_path_is_not_read_into_the_notebook(
    eco_server: ServerProcess,
) -> None:
    """The other direction: a notebook paired with a file the policy hides must not bring that
    file's text into the notebook jupytext returns (it reads pairs to merge their inputs)."""
    stem = f"leak-{uuid.uuid4().hex[:8]}"
    secret = f"SECRET-{uuid.uuid4().hex}"
    (eco_server.root / ".ssh").mkdir(exist_ok=True)
    (eco_server.root / ".ssh" / f"{stem}.py").write_text(f"# %%\nkey = '{secret}'\n")
    (eco_server.root / f"{stem}.ipynb").write_text(
        json.dumps(notebook("ipynb,.ssh//py:percent")["content"])
    )
    response = api(eco_server, "GET", f"{stem}.ipynb")
    assert response.status_code in (200, 404, 500), response.text
    assert secret not in response.text
