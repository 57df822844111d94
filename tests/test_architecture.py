"""The layers of docs/ARCHITECTURE.md hold: what each part may import, checked on the source."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA, REPO

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


# Where the kind of database may be asked: the engine itself, the column type that maps vectors
# to each, the migrations, and the two store factories.
KNOWS_THE_DATABASE = {
    REPO / "searchapp" / "store" / "database.py",
    REPO / "searchapp" / "store" / "schema.py",
    REPO / "searchapp" / "store" / "vectors" / "factory.py",
    REPO / "searchapp" / "store" / "keywords" / "factory.py",
}
ASKS_THE_DATABASE = re.compile(r"\bis_sqlite\b|dialect\.name|\bPgVectors\b|\bFaissFiles\b|"
                               r"\bPostgresKeywords\b|\bSqliteKeywords\b")  # fmt: skip


def test_only_the_factories_branch_on_the_kind_of_database() -> None:
    """The rest of the code uses the stores' interfaces (``VectorStore``, ``KeywordStore``)."""
    migrations = REPO / "searchapp" / "store" / "migrations"
    backends = {
        REPO / "searchapp" / "store" / "vectors" / "pgvector.py",
        REPO / "searchapp" / "store" / "vectors" / "faiss.py",
        REPO / "searchapp" / "store" / "keywords" / "postgres.py",
        REPO / "searchapp" / "store" / "keywords" / "sqlite.py",
    }  # each names itself
    wrong = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for part in ("searchapp", "indexer", "ui")
        for path in sorted((REPO / part).rglob("*.py"))
        if path not in KNOWS_THE_DATABASE | backends and migrations not in path.parents
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ASKS_THE_DATABASE.search(line)
    ]
    assert wrong == []


IMPORTED_AT_RUN_TIME = """
import json, sys
from pathlib import Path
from searchapp import operations
from searchapp.operations import IndexOptions, RepairOptions, RemoveOptions
from searchapp.progress import NO_PROGRESS
from searchapp.search import Searcher
from searchapp.settings import Settings

settings = Settings.load(Path(sys.argv[1]))
operations.execute("index", settings, IndexOptions(paths=(sys.argv[2],)), NO_PROGRESS)
Searcher(settings).search("honey bees", mode="hybrid")
operations.execute("repair", settings, RepairOptions(), NO_PROGRESS)
operations.execute("remove", settings, RemoveOptions(folder=sys.argv[2]), NO_PROGRESS)
print(json.dumps(sorted(sys.modules)))
"""


def test_the_core_never_reaches_the_command_line_or_the_ui_at_run_time(tmp_path: Path) -> None:
    """Not only the imports at the top of a file: what running the operations loads."""
    folder = tmp_path / "docs"
    shutil.copytree(DATA / "docs" / "bees", folder)
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_AT_RUN_TIME, str(tmp_path / "home"), str(folder)],
        capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "indexer.pipeline" in loaded and "searchapp.store.vectors.faiss" in loaded
    faces = [m for m in loaded if m == "searchapp.cli" or m == "ui" or m.startswith("ui.")]
    assert faces == []


def test_the_options_table_in_the_docs_is_what_the_code_states() -> None:
    from searchapp.options_table import markdown

    written = (REPO / "docs" / "OPTIONS.md").read_text(encoding="utf-8")
    assert written == markdown(), "regenerate: python -m searchapp.options_table > docs/OPTIONS.md"
    assert "`SEARCHAPP_KEYWORD_ENGINE` | auto, fts5 |" in written
    assert (
        "### `searchapp models promote`" in written and "`--gate {by-document,two-part}`" in written
    )
