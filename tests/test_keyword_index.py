"""The fast keyword index (Tantivy) of a SQLite home: it ranks as FTS5 ranks, follows every change
an index run makes, and whenever it is behind or damaged FTS5 answers instead, until the next run
or `check --repair` brings it back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete

from indexer.folders import index_folders
from searchapp.progress import CallbackProgress
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.keywords.sqlite import Fts5Keywords
from searchapp.store.keywords.tantivy_index import FOLDER, TantivyKeywords
from searchapp.store.schema import Document
from tests.crashing import assert_keyword_search_exact


def _fast_is_current(home: Settings) -> bool:
    with Database(home.database_url).read() as session:
        return TantivyKeywords(home.index_dir).matches(session)


def _top_titles(searcher: Searcher, query: str) -> list[str]:
    return [result.title for result in searcher.search(query, k=3, mode="keyword")]


def test_an_index_run_builds_it_and_it_ranks_as_fts5(docs_copy: Path, home: Settings) -> None:
    index_folders(home, [docs_copy])
    assert _fast_is_current(home)
    searcher = Searcher(home)
    assert_keyword_search_exact(searcher)
    assert "Varroa" in _top_titles(searcher, "varroa mite treatment")[0]
    # Words are searched as words, never as query syntax, by the fast index too.
    for hostile in ('"unbalanced', "bees AND OR NOT (", "*", "NEAR(a b)", "title:bees", "-", "é"):
        searcher.search(hostile, mode="keyword")


def test_edits_and_deletions_reach_it(docs_copy: Path, home: Settings) -> None:
    index_folders(home, [docs_copy])
    searcher = Searcher(home)
    assert _top_titles(searcher, "zanzibarite") == []
    note = next((docs_copy / "coffee").glob("*.md"))
    note.write_text(note.read_text() + "\n\nStored beside zanzibarite crystals.\n")
    shutil.rmtree(docs_copy / "bees")
    index_folders(home, [docs_copy])
    assert _fast_is_current(home)
    with searcher.db.read() as session:  # the fast index answers what follows
        assert searcher.keywords.fast.matches(session)  # type: ignore[attr-defined]
    (found,) = searcher.search("zanzibarite", k=3, mode="keyword")
    assert Path(found.path) == note
    assert not [r for r in searcher.search("varroa mites hive", mode="keyword") if "bees" in r.path]


def test_behind_or_damaged_fts5_answers_and_repair_rebuilds_it(  # type: ignore[no-untyped-def]
    cli, docs_copy: Path, home: Settings
) -> None:
    index_folders(home, [docs_copy])
    searcher = Searcher(home)
    varroa = _top_titles(searcher, "varroa mites")[0]
    db = Database(home.database_url)
    with db.write() as session:  # a writer that died after its SQL commit, before catching up
        session.execute(delete(Document).where(Document.title == varroa))
    assert not _fast_is_current(home)
    assert varroa not in _top_titles(searcher, "varroa mites")  # FTS5 answered, exactly
    assert_keyword_search_exact(searcher)
    report = json.loads(cli("--home", home.home, "check", "--json").out)
    (fast,) = [c for c in report["checks"] if c["check"] == "fast keyword index"]
    assert fast["ok"] and "behind" in fast["detail"]

    repaired = cli("--home", home.home, "check", "--repair")
    assert "fast keyword index caught up (" in repaired.out  # the changes applied, no rebuild
    assert _fast_is_current(home)

    meta = home.index_dir / FOLDER / "meta.json"
    meta.write_text("{ not json")  # a disk error, a half-copied backup
    fresh = Searcher(home)
    assert_keyword_search_exact(fresh)  # no error: FTS5 answers
    assert "Espresso" in " ".join(_top_titles(fresh, "espresso grind"))
    assert cli("--home", home.home, "check", "--repair").code == 0
    assert _fast_is_current(home)
    assert_keyword_search_exact(Searcher(home))


def test_the_fast_index_can_be_left_out(  # type: ignore[no-untyped-def]
    cli, docs_copy: Path, home: Settings, monkeypatch
) -> None:
    index_folders(home, [docs_copy])
    monkeypatch.setenv("SEARCHAPP_KEYWORD_ENGINE", "fts5")
    only_fts5 = Searcher(Settings.load(home.home))
    assert isinstance(only_fts5.keywords, Fts5Keywords)
    assert "Varroa" in _top_titles(only_fts5, "varroa mite treatment")[0]
    monkeypatch.setenv("SEARCHAPP_KEYWORD_ENGINE", "lucene")
    wrong = cli("--home", home.home, "search", "varroa")
    assert wrong.code != 0 and "Unknown keyword engine 'lucene'" in wrong.err


def _notes(folder: Path, count: int) -> list[Path]:
    """Notes that all say "zanzibarite"; the first one alone says "varnish"."""
    folder.mkdir(parents=True, exist_ok=True)
    notes = [folder / f"note-{n}.txt" for n in range(count)]
    for n, note in enumerate(notes):
        extra = " Keep them away from varnish." if n == 0 else ""
        note.write_text(f"Note {n} on zanzibarite crystals.{extra}")
    return notes


def test_a_word_counted_in_deleted_documents_too_does_not_break_it(
    tmp_path: Path, home: Settings
) -> None:
    # Tantivy counts a deleted document in a word's document frequency until its segment is
    # merged: after an edit, "zanzibarite" is in more documents than the index holds. (One edit
    # in 30 notes is too few deletions to build the index again.)
    notes = _notes(tmp_path / "notes", 30)
    index_folders(home, [tmp_path / "notes"])
    notes[5].write_text("Note 5, revised: zanzibarite crystals are brittle.")
    index_folders(home, [tmp_path / "notes"])
    assert _fast_is_current(home)  # the fast index answers what follows
    searcher = Searcher(home)
    for mode in ("keyword", "hybrid"):
        assert searcher.search("zanzibarite varnish", k=3, mode=mode)[0].path == str(notes[0])
    # "5" is in the note's deleted text and in its new one: counted once, as FTS5 counts it.
    assert_keyword_search_exact(searcher, ("zanzibarite varnish", "brittle zanzibarite note 5"))


def test_after_many_deletions_it_is_built_again_and_still_ranks_as_fts5(
    docs_copy: Path, home: Settings
) -> None:
    notes = _notes(docs_copy / "notes", 12)
    index_folders(home, [docs_copy])
    shutil.rmtree(docs_copy / "bees")
    for note in notes[3:]:
        note.unlink()
    index_folders(home, [docs_copy])
    assert _fast_is_current(home)
    searcher = Searcher(home)
    assert_keyword_search_exact(searcher, ("zanzibarite crystals", "espresso grind size"))


def test_a_reader_keeps_the_index_while_a_writer_builds_it_again(
    docs_copy: Path, home: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    index_folders(home, [docs_copy])
    db = Database(home.database_url)
    reader = TantivyKeywords(home.index_dir)
    chunks = reader.count()
    assert chunks
    # What a reader opening the index finds in the middle of the build (between its batches).
    during: list[int | None] = []
    TantivyKeywords(home.index_dir).rebuild(
        db, CallbackProgress(lambda update: during.append(reader.count()))
    )
    assert during and set(during) == {chunks}  # the whole old index, never a missing one
    assert "cannot be read" not in caplog.text
    with db.read() as session:
        assert reader.matches(session)  # and then the new one
