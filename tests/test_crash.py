"""kill -9 in the middle of indexing: nothing lost, nothing mixed, and a rerun finishes the job."""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.schema import Chunk, Document
from searchapp.store.vector_index import live_chunk_ids
from searchapp.versions import active_generation
from tests.conftest import DATA

KILLS = 3


def _index_command(home: Path, folder: Path) -> list[str]:
    return [sys.executable, "-m", "searchapp.cli", "--home", str(home), "index", str(folder),
            "--quiet"]  # fmt: skip


def _assert_consistent(home: Settings) -> None:
    """What a restarted process sees: vectors == live chunks, SQLite intact, search works."""
    with sqlite3.connect(home.home / "searchapp.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    searcher = Searcher(home)
    try:
        searcher.search("bees", k=3)
    except RuntimeError:  # killed before anything was committed: nothing indexed yet
        return
    with searcher.db.read() as session:
        generation = active_generation(session)
        chunk_ids = sorted(row[0] for row in session.query(Chunk.id))
        assert sorted(live_chunk_ids(session, generation.id).tolist()) == chunk_ids
    assert sorted(searcher._index.ids().tolist()) == chunk_ids
    for result in searcher.search("varroa mites", k=5, mode="keyword"):
        assert result.chunk_text and result.path  # every hit points at a live chunk


@pytest.mark.parametrize("seed", [1])
def test_indexer_killed_at_random_moments_recovers(tmp_path: Path, seed: int) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(DATA / "docs", folder)
    home = Settings.load(tmp_path / "home")
    rng = random.Random(seed)
    first = subprocess.run(_index_command(home.home, tmp_path / "empty-probe"), check=False,
                           capture_output=True)  # fmt: skip
    assert first.returncode == 2  # a missing folder is refused before anything is written
    for kill in range(KILLS):
        process = subprocess.Popen(_index_command(home.home, folder), stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 12.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        _assert_consistent(home)
        # Edit the folder between runs, as a person would, so that reruns have work to do.
        (folder / "bees" / f"note-{kill}.txt").write_text(f"Note {kill}: bees dance to share news.")

    finished = subprocess.run(_index_command(home.home, folder), capture_output=True, text=True,
                              check=False)  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    _assert_consistent(home)
    assert not list(home.index_dir.glob("*.tmp")), "a temporary index file was left behind"
    with Searcher(home).db.read() as session:
        assert session.query(Document).count() == 30 + KILLS
    check = subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home.home), "check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout
