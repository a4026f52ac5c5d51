"""The root directory every server serves: identical contents, generated deterministically."""

from __future__ import annotations

import json
from pathlib import Path

DIR_ENTRIES = 200
LISTING_DIR = "dir200"
# The folder of the listing row (#22: "a folder of 1,000 files").
BIG_DIR_ENTRIES = 1000
BIG_LISTING_DIR = "dir1000"
FILE_NAME = "payload-64k.txt"
FILE_SIZE = 64 * 1024
NOTEBOOK = "save-1mib.ipynb"
NOTEBOOK_TARGET_BYTES = 1024 * 1024


def _text_block(n: int, seed: int) -> str:
    line = f"{seed:08d} the quick brown fox jumps over the lazy dog 0123456789abcdef\n"
    return (line * (n // len(line) + 1))[:n]


def notebook_document(target: int = NOTEBOOK_TARGET_BYTES) -> dict:
    """An nbformat 4.5 notebook of about ``target`` bytes: code cells with source and a stream
    output each, the shape of a real working notebook (not one giant string)."""
    cells = []
    i = 0
    size = 0
    while size < target:
        source = f"# cell {i}\n" + "x = [n * n for n in range(100)]\nprint(sum(x))\n" * 10
        cells.append(
            {
                "cell_type": "code",
                "execution_count": i + 1,
                "id": f"cell-{i:05d}",
                "metadata": {},
                "source": source,
                "outputs": [
                    {"name": "stdout", "output_type": "stream", "text": _text_block(3500, i)}
                ],
            }
        )
        size += len(source) + 3500 + 200
        i += 1
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def save_body() -> bytes:
    """The body of ``PUT /api/contents/<nb>``, what JupyterLab sends on save."""
    return json.dumps(
        {"type": "notebook", "format": "json", "content": notebook_document()}
    ).encode()


def populate(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    listing = root / LISTING_DIR
    listing.mkdir(exist_ok=True)
    for i in range(DIR_ENTRIES):
        kind = i % 4
        if kind == 0:
            (listing / f"notes-{i:03d}.md").write_text(f"# note {i}\n")
        elif kind == 1:
            (listing / f"data-{i:03d}.csv").write_text("a,b\n1,2\n")
        elif kind == 2:
            (listing / f"script-{i:03d}.py").write_text(f"print({i})\n")
        else:
            (listing / f"sub-{i:03d}").mkdir(exist_ok=True)
    big = root / BIG_LISTING_DIR
    big.mkdir(exist_ok=True)
    suffixes = (".md", ".csv", ".py", ".txt")
    for i in range(BIG_DIR_ENTRIES):
        (big / f"file-{i:04d}{suffixes[i % 4]}").write_text(f"{i}\n")
    (root / FILE_NAME).write_text(_text_block(FILE_SIZE, 7))
    (root / NOTEBOOK).write_text(json.dumps(notebook_document(), indent=1))
