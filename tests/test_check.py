"""`searchapp check` names what is wrong; `--repair` rebuilds it from SQL without re-encoding."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from indexer.folders import index_folders
from searchapp.settings import Settings


def _check(home: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home.home), "check", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_check_finds_damage_and_repair_fixes_it(docs_copy: Path, home: Settings) -> None:
    index_folders(home, [docs_copy], show_progress=False)
    healthy = _check(home, "--json")
    assert healthy.returncode == 0 and json.loads(healthy.stdout)["ok"] is True

    (index_file,) = home.index_dir.glob("generation-1-*.faiss")
    index_file.write_bytes(b"not a faiss index")
    (home.index_dir / "generation-1-dead.faiss").write_bytes(b"left by a writer that died")
    with sqlite3.connect(home.home / "searchapp.db") as connection:
        connection.execute(
            "DELETE FROM chunks_fts WHERE rowid = (SELECT min(rowid) FROM chunks_fts)"
        )
    broken = _check(home, "--json")
    assert broken.returncode == 1
    failed = {c["check"]: c["detail"] for c in json.loads(broken.stdout)["checks"] if not c["ok"]}
    assert set(failed) == {"keyword index", "index file", "leftover files"}
    assert "checksum" in failed["index file"]
    assert failed["leftover files"] == "generation-1-dead.faiss"

    repaired = _check(home, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "keyword index rebuilt" in repaired.stdout
    assert "rebuilt from the stored vectors" in repaired.stdout
    assert "removed 2 leftover index files" in repaired.stdout  # the dead one, the damaged one
    assert _check(home).returncode == 0
