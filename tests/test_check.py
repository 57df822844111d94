"""`searchapp check` names what is wrong; `--repair` rebuilds it from SQL without re-encoding."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from indexer.folders import index_folders
from searchapp.settings import Settings


def test_check_finds_damage_and_repair_fixes_it(cli, docs_copy: Path, home: Settings) -> None:  # type: ignore[no-untyped-def]
    def _check(*args: str):  # type: ignore[no-untyped-def]
        return cli("--home", home.home, "check", *args)

    index_folders(home, [docs_copy])
    healthy = _check("--json")
    assert healthy.code == 0 and json.loads(healthy.out)["ok"] is True

    (index_file,) = home.index_dir.glob("generation-1-*.faiss")
    index_file.write_bytes(b"not a faiss index")
    (home.index_dir / "generation-1-dead.faiss").write_bytes(b"left by a writer that died")
    with sqlite3.connect(home.home / "searchapp.db") as connection:
        connection.execute(
            "DELETE FROM chunks_fts WHERE rowid = (SELECT min(rowid) FROM chunks_fts)"
        )
    broken = _check("--json")
    assert broken.code == 1
    failed = {c["check"]: c["detail"] for c in json.loads(broken.out)["checks"] if not c["ok"]}
    assert set(failed) == {"keyword index", "index file", "leftover files"}
    assert "checksum" in failed["index file"]
    assert failed["leftover files"] == "generation-1-dead.faiss"

    repaired = _check("--repair")
    assert repaired.code == 0, repaired.out + repaired.err
    assert "keyword index rebuilt" in repaired.out
    assert "rebuilt from the stored vectors" in repaired.out
    assert "removed 2 leftover index files" in repaired.out  # the dead one, the damaged one
    assert _check().code == 0
