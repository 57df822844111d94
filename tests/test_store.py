"""The vector index file is a cache of SQL: damaged, missing or stale, it is repaired from SQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from indexer.folders import index_folders
from indexer.loaders import load_file
from indexer.pipeline import IndexWriter, SourceDocument, get_or_create_source
from searchapp.errors import WriterBusyError
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.keywords.tantivy_index import FOLDER
from searchapp.store.schema import Chunk
from searchapp.store.vectors.base import live_chunk_ids
from searchapp.store.vectors.faiss import FaissFiles
from searchapp.versions import active_generation

QUERIES = ["varroa mite treatment", "grind size for espresso", "storing coffee beans"]


def _top(searcher: Searcher) -> list[list[tuple[str, float]]]:
    return [
        [(r.path, round(r.score, 5)) for r in searcher.search(q, k=5, mode="dense")]
        for q in QUERIES
    ]


@pytest.fixture
def indexed(docs_copy: Path, home: Settings) -> tuple[Settings, Path, list]:
    index_folders(home, [docs_copy])
    db = Database(home.database_url)
    with db.read() as session:
        generation = active_generation(session)
    path = FaissFiles(home.index_dir).recorded_file(generation)
    assert path is not None and path.is_file()
    return home, path, _top(Searcher(home))


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "bad header", "delete"])
def test_damaged_index_file_is_rebuilt_from_sql_with_the_same_results(
    indexed: tuple[Settings, Path, list], damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    home, path, expected = indexed
    data = bytearray(path.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "bad header":
        path.write_bytes(b"XXXX" + bytes(data[4:]))
    else:
        path.unlink()
    searcher = Searcher(home)
    assert _top(searcher) == expected
    assert searcher.last_sync is not None and searcher.last_sync.rebuilt
    assert "Rebuilt the vector index" in caplog.text


def test_each_save_writes_a_new_file_and_removes_the_one_it_replaces(
    indexed: tuple[Settings, Path, list], docs_copy: Path
) -> None:
    home, first, _ = indexed
    (docs_copy / "bees" / "mead.txt").write_text("Mead is wine made by fermenting honey.")
    index_folders(home, [docs_copy])
    with Database(home.database_url).read() as session:
        second = FaissFiles(home.index_dir).recorded_file(active_generation(session))
    assert second is not None and second != first
    files = sorted(p for p in home.index_dir.iterdir() if p.name != FOLDER)  # not the keywords'
    assert files == [second]  # the replaced file is gone, nothing else
    assert Searcher(home).search("honey wine", k=1)[0].path.endswith("mead.txt")


def test_a_reader_whose_file_was_replaced_meanwhile_loads_its_successor(
    indexed: tuple[Settings, Path, list], docs_copy: Path
) -> None:
    home, first, _ = indexed
    db = Database(home.database_url)
    with db.read() as session:
        generation = active_generation(session)  # this snapshot names the first file
        (docs_copy / "bees" / "mead.txt").write_text("Mead is wine made by fermenting honey.")
        (docs_copy / "coffee" / "storing-beans.txt").unlink()
        index_folders(home, [docs_copy])  # saves anew, deletes the first
        assert not first.exists()
        index, sync = FaissFiles(home.index_dir).open(session, generation, 384)
        assert not sync.rebuilt and sync.removed >= 1 and sync.added >= 1
        assert sorted(index.ids().tolist()) == sorted(live_chunk_ids(session, generation.id))


def test_vectors_committed_but_never_saved_are_replayed(indexed: tuple, tmp_path: Path) -> None:
    home, _, _ = indexed
    db = Database(home.database_url)
    note = tmp_path / "note.md"
    note.write_text("# Kombucha\n\nA SCOBY ferments sweet tea into kombucha in about ten days.")
    (loaded,) = load_file(note, note.read_bytes())
    writer = IndexWriter(home, db)
    source_id = get_or_create_source(db, "folder", str(tmp_path))
    writer.add(
        SourceDocument(str(note), str(note), None, loaded.title, loaded.text, "markdown", "h1"),
        source_id,
    )
    writer.flush()  # committed to SQL, then the process "dies" before saving the index file

    searcher = Searcher(home)
    assert searcher.search("fermented tea drink", k=1, mode="dense")[0].path == str(note)
    assert searcher.last_sync is not None and searcher.last_sync.added >= 1
    assert not searcher.last_sync.rebuilt


def test_a_running_searcher_sees_changes_made_by_another_writer(
    docs_copy: Path, home: Settings
) -> None:
    index_folders(home, [docs_copy])
    searcher = Searcher(home)
    assert searcher.search("Langstroth", k=1, mode="keyword")[0].path.endswith("hive-types.txt")
    (docs_copy / "bees" / "hive-types.txt").unlink()
    (docs_copy / "bees" / "mead.txt").write_text(
        "Mead is wine made by fermenting honey with water."
    )
    index_folders(home, [docs_copy])
    assert searcher.search("Langstroth", k=5, mode="keyword") == []
    assert searcher.search("honey wine", k=1, mode="dense")[0].path.endswith("mead.txt")


def test_second_writer_is_refused_with_a_clear_message(docs_copy: Path, home: Settings) -> None:
    db = Database(home.database_url, lock_path=home.write_lock_path)
    with db.writer_lock(), pytest.raises(WriterBusyError, match="Another searchapp process"):
        index_folders(home, [docs_copy])
    with db.read() as session:
        assert session.query(Chunk).count() == 0  # the refused run wrote nothing


def test_a_reader_cannot_write_and_the_writer_can_after_it(home: Settings) -> None:
    db = Database(home.database_url)
    with pytest.raises(DBAPIError, match="readonly database"), db.read() as session:
        session.execute(text("UPDATE store_state SET revision = revision + 1"))
    with db.write() as session:  # the same pooled connection, writing again
        db.bump_revision(session)
    with db.read() as session:
        assert db.revision(session) == 1
