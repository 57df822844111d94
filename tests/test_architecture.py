"""The layers of docs/ARCHITECTURE.md hold: what each part may import, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# part -> the top-level packages of ours it must never import
FORBIDDEN = {
    "searchapp": {"indexer", "ui"},  # the read side and the core library
    "indexer": {"ui"},  # the write side builds on searchapp only
}
FACES = {REPO / "searchapp" / "cli.py"}  # a face, like the UI: dispatches to indexer, lazily


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, node.lineno))
    return found


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_part_never_imports_the_parts_above_it(part: str) -> None:
    files = sorted((REPO / part).rglob("*.py"))
    assert files
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in files
        if path not in FACES
        for module, line in _imports(path)
        if module.split(".")[0] in FORBIDDEN[part]
    ]
    assert wrong == []


def test_the_command_line_imports_the_write_side_only_inside_commands() -> None:
    tree = ast.parse((REPO / "searchapp" / "cli.py").read_text(encoding="utf-8"))
    top_level = [
        node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module
    ]
    assert not [m for m in top_level if m.split(".")[0] in {"indexer", "ui"}]
