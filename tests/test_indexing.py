"""Folder indexing: every format read, incremental re-indexing, edits and deletions followed."""

from __future__ import annotations

import itertools
from pathlib import Path

from indexer.folders import index_folders
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Chunk, Document, Embedding
from searchapp.store.vectors.base import live_chunk_ids
from searchapp.versions import active_generation


def _paths(searcher: Searcher, query: str, mode: str = "hybrid", k: int = 3) -> list[str]:
    return [Path(r.path).name for r in searcher.search(query, k=k, mode=mode)]


def test_sample_corpus_is_indexed_in_every_format(sample_home: Settings) -> None:
    db = Database(sample_home.database_url)
    with db.read() as session:
        types = {row[0] for row in session.query(Document.file_type).distinct()}
        documents = session.query(Document).count()
        chunks = session.query(Chunk).count()
        long_doc = (
            session.query(Document).filter(Document.path.like("%espresso-dialing-in.md")).one()
        )
        long_chunks = session.query(Chunk).filter(Chunk.document_id == long_doc.id).all()
    assert types == {"text", "markdown", "html", "pdf", "docx"}
    assert documents == 30
    assert chunks > documents  # long documents are split
    assert len(long_chunks) > 1
    # Chunk offsets point back into the document, in reading order.
    for before, after in itertools.pairwise(long_chunks):
        assert before.start < after.start <= before.end + 2
        assert before.end - before.start == len(before.text)


def test_html_script_and_style_are_not_content(sample_searcher: Searcher) -> None:
    db = sample_searcher.db
    with db.read() as session:
        html_chunks = (
            session.query(Chunk.text).join(Document).filter(Document.file_type == "html").all()
        )
    text = " ".join(row[0] for row in html_chunks)
    assert "function" not in text and "{" not in text


def test_reindexing_an_unchanged_folder_encodes_nothing(docs_copy: Path, home: Settings) -> None:
    first = index_folders(home, [docs_copy])
    assert first.added == 12 and first.chunks > 12
    second = index_folders(home, [docs_copy])
    assert (second.added, second.updated, second.removed, second.chunks) == (0, 0, 0, 0)
    assert second.unchanged == 12


def test_touched_but_identical_file_is_not_re_encoded(docs_copy: Path, home: Settings) -> None:
    index_folders(home, [docs_copy])
    path = docs_copy / "bees" / "hive-types.txt"
    path.write_bytes(path.read_bytes())  # new mtime, same bytes
    again = index_folders(home, [docs_copy])
    assert again.chunks == 0 and again.unchanged == 12


def test_edited_file_is_found_by_its_new_text_only(docs_copy: Path, home: Settings) -> None:
    index_folders(home, [docs_copy])
    searcher = Searcher(home)
    note = docs_copy / "bees" / "hive-types.txt"
    assert "hive-types.txt" in _paths(searcher, "Langstroth", "keyword")

    note.write_text("Zebra finches sing complex songs learned from their fathers.\n")
    summary = index_folders(home, [docs_copy])
    assert (summary.updated, summary.added, summary.removed) == (1, 0, 0)

    assert "hive-types.txt" not in _paths(searcher, "Langstroth", "keyword", k=12)
    assert _paths(searcher, "zebra finch songs", "keyword", k=1) == ["hive-types.txt"]
    assert _paths(searcher, "which birds learn songs from their father", "dense", k=1) == [
        "hive-types.txt"
    ]


def test_deleted_file_is_no_longer_found(docs_copy: Path, home: Settings) -> None:
    index_folders(home, [docs_copy])
    searcher = Searcher(home)
    assert _paths(searcher, "varroa mites treatment", k=1) == ["varroa-mites.md"]
    (docs_copy / "bees" / "varroa-mites.md").unlink()
    summary = index_folders(home, [docs_copy])
    assert summary.removed == 1
    for mode in ("dense", "keyword", "hybrid"):
        assert "varroa-mites.md" not in _paths(searcher, "varroa mites treatment", mode, k=12)


def test_vector_ids_equal_live_chunk_ids_after_edits(docs_copy: Path, home: Settings) -> None:
    index_folders(home, [docs_copy])
    (docs_copy / "coffee" / "storing-beans.txt").write_text("Short new text about beans.")
    (docs_copy / "bees" / "hive-types.txt").unlink()
    index_folders(home, [docs_copy])
    searcher = Searcher(home)
    searcher.search("beans")
    db = searcher.db
    with db.read() as session:
        generation = active_generation(session)
        chunk_ids = sorted(row[0] for row in session.query(Chunk.id))
        embedded = sorted(live_chunk_ids(session, generation.id).tolist())
        assert session.query(Embedding).count() == len(chunk_ids)
    assert embedded == chunk_ids
    assert sorted(searcher.vector_index.ids().tolist()) == chunk_ids


def test_chunk_ids_are_never_reused(docs_copy: Path, home: Settings) -> None:
    index_folders(home, [docs_copy])
    db = Database(home.database_url)
    with db.read() as session:
        highest = max(row[0] for row in session.query(Chunk.id))
    (docs_copy / "coffee" / "storing-beans.txt").write_text("Replacement text.")
    index_folders(home, [docs_copy])
    with db.read() as session:
        newest = max(row[0] for row in session.query(Chunk.id))
    assert newest > highest


def _chunk_counts(home: Settings) -> dict[str, int]:
    with Database(home.database_url).read() as session:
        rows = session.query(Document.path, Chunk.id).join(Chunk, Chunk.document_id == Document.id)
        counts: dict[str, int] = {}
        for path, _ in rows:
            counts[Path(path).name] = counts.get(Path(path).name, 0) + 1
    return counts


def test_a_passage_already_embedded_is_not_embedded_again(docs_copy: Path, home: Settings) -> None:
    """A copied file costs no encoding, and an edit re-embeds only the passages it changed;
    the reused vectors rank exactly as freshly embedded ones."""
    original = docs_copy / "coffee" / "espresso-dialing-in.md"
    (docs_copy / "copies").mkdir()
    copy = docs_copy / "copies" / "espresso-notes.md"
    copy.write_bytes(original.read_bytes())

    first = index_folders(home, [docs_copy])
    counts = _chunk_counts(home)
    assert counts["espresso-notes.md"] == counts["espresso-dialing-in.md"] > 2
    assert first.chunks == sum(counts.values())
    assert first.embedded == first.chunks - counts["espresso-notes.md"]

    searcher = Searcher(home)
    hits = searcher.search("an espresso recipe: grams in and grams out", k=2, mode="dense")
    assert {Path(hit.path).name for hit in hits} == {"espresso-notes.md", "espresso-dialing-in.md"}
    assert abs(hits[0].score - hits[1].score) < 1e-5

    added = "\n\nA descaled boiler and a clean group head keep every shot tasting sweet.\n"
    original.write_text(original.read_text() + added)
    edited = index_folders(home, [docs_copy])
    assert (edited.updated, edited.added, edited.unchanged) == (1, 0, 12)
    assert edited.chunks == _chunk_counts(home)["espresso-dialing-in.md"]
    assert 1 <= edited.embedded <= 2  # the passage holding the new sentence, not the others
    hits = searcher.search("keep the boiler descaled and the group head clean", k=1, mode="dense")
    assert Path(hits[0].path).name == "espresso-dialing-in.md"
