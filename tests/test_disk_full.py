"""A full disk mid-run: a clear error, the database intact, the last index served, no temporary
files, and the same command finishes the job once space is free. The home lives on a small tmpfs."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DATA

LOGS = 16
WORDS = ["honey", "bees", "hive", "queen", "drone", "nectar", "pollen", "comb", "wax", "swarm",
         "brood", "frame", "mite", "varroa", "colony", "forage", "flower", "spring"]  # fmt: skip


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.fail(
            "The disk-full test mounts a 24 MiB tmpfs and needs the permission to (root, as in "
            f"CI, or CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


def _searchapp(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home), *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _tops(home: Path, queries: list[str]) -> dict[str, list[tuple[str, float]]]:
    """Dense top 5 of each query, from one process."""
    run = subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home), "search", "-", "--mode",
         "dense", "--k", "5", "--json"],
        input="\n".join(queries), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    return {a["query"]: [(r["path"], round(r["score"], 5)) for r in a["results"]] for a in answers}


def _fill(disk: Path, leave_kib: int) -> Path:
    """A file taking all the free space but ``leave_kib``."""
    free = shutil.disk_usage(disk).free
    filler = disk / "filler"
    subprocess.run(["fallocate", "-l", str(free - leave_kib * 1024), str(filler)], check=True)
    return filler


def test_full_disk_fails_cleanly_and_the_rerun_finishes(small_disk: Path, tmp_path: Path) -> None:
    home = small_disk / "home"
    first = _searchapp(home, "index", str(DATA / "docs"), "--quiet")
    assert first.returncode == 0, first.stderr
    queries = ["how do I treat varroa mites", "espresso grind size"]
    before = _tops(home, queries)

    more = tmp_path / "more"
    more.mkdir()
    rng = random.Random(0)
    for i in range(LOGS):  # about 0.7 MB of text, and as much again of index: more than is left
        (more / f"hive-log-{i}.txt").write_text(" ".join(rng.choices(WORDS, k=4000)))
    filler = _fill(small_disk, leave_kib=256)

    full = _searchapp(home, "index", str(more), "--quiet")
    assert full.returncode == 3, full.stderr
    assert "No space left" in full.stderr and "run the same command again" in full.stderr
    assert "Traceback" not in full.stderr
    with sqlite3.connect(home / "searchapp.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _tops(home, queries) == before  # the last saved index serves
    assert not list((home / "index").glob(".*.tmp")), "a temporary index file was left behind"
    assert _searchapp(home, "check").returncode == 0

    filler.unlink()
    rerun = _searchapp(home, "index", str(more), "--json", "--quiet")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["added"] + json.loads(rerun.stdout)["unchanged"] == LOGS
    found = _searchapp(home, "search", "varroa brood", "--mode", "keyword", "--k", "100", "--json")
    paths = [r["path"] for r in json.loads(found.stdout)["results"]]
    assert sum("hive-log-" in path for path in paths) == LOGS
    after = _tops(home, queries)
    assert after["espresso grind size"] == before["espresso grind size"]
    check = _searchapp(home, "check")
    assert check.returncode == 0, check.stdout
    assert "leftover files: none" in check.stdout


def test_index_file_that_does_not_fit_leaves_the_old_file_and_no_temporary(
    small_disk: Path, tmp_path: Path
) -> None:
    import numpy as np

    from searchapp.errors import StorageFullError
    from searchapp.store.database import Database
    from searchapp.store.schema import IndexGeneration, ModelVersion
    from searchapp.store.vectors.faiss import FaissFiles, VectorIndex

    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")  # the database has room; the index not
    with db.write() as session:
        version = ModelVersion(name="m", pooling="mean", max_seq_length=256, dimension=384,
                               fingerprint="f")  # fmt: skip
        session.add(version)
        session.flush()
        generation = IndexGeneration(model_version_id=version.id, status="active",
                                     file_name="generation-1-old.faiss", checksum="c")  # fmt: skip
        session.add(generation)
    index_dir = small_disk / "index"
    index_dir.mkdir()
    old = index_dir / "generation-1-old.faiss"
    old.write_bytes(b"the file SQL names")
    index = VectorIndex(384)
    rng = np.random.default_rng(0)
    index.add(np.arange(1, 201), rng.standard_normal((200, 384)).astype(np.float32))
    _fill(small_disk, leave_kib=64)  # the index needs about 300 KiB

    with pytest.raises(StorageFullError, match="No space left for the vector index file"):
        FaissFiles(index_dir).commit(db, generation, index)
    assert sorted(p.name for p in index_dir.iterdir()) == ["generation-1-old.faiss"]
    assert old.read_bytes() == b"the file SQL names"
    with db.read() as session:
        assert session.get(IndexGeneration, generation.id).file_name == "generation-1-old.faiss"
