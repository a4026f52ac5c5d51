"""The trusted templates of the running application, and the hashes of their inline scripts.

Read once, after the extensions have loaded (their template directories are known by then):
every ``*.html`` file under the search paths of the application's Jinja environments
(``jinja2_env`` and each extension's ``<name>_jinja2_env``). Only files the server itself
renders are read, so an inline script a user manages to inject never has an allowed hash.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, PrefixLoader

from hardened_server.policy.csp import inline_script_hashes


def _search_paths(loader: BaseLoader | None) -> Iterable[str]:
    if isinstance(loader, FileSystemLoader):
        yield from (os.fspath(p) for p in loader.searchpath)
    elif isinstance(loader, ChoiceLoader):
        for sub in loader.loaders:
            yield from _search_paths(sub)
    elif isinstance(loader, PrefixLoader):
        for sub in loader.mapping.values():
            yield from _search_paths(sub)


def template_dirs(settings: Mapping[str, Any]) -> list[str]:
    dirs: list[str] = []
    for key, value in settings.items():
        if key == "jinja2_env" or key.endswith("_jinja2_env"):
            for path in _search_paths(getattr(value, "loader", None)):
                if path not in dirs and os.path.isdir(path):
                    dirs.append(path)
    return dirs


def trusted_script_hashes(settings: Mapping[str, Any]) -> tuple[str, ...]:
    hashes: list[str] = []
    for directory in template_dirs(settings):
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".html"):
                continue
            try:
                with open(os.path.join(directory, name), encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError):
                continue
            for source in inline_script_hashes(text):
                if source not in hashes:
                    hashes.append(source)
    return tuple(hashes)
