"""Search filters pick documents by folder, file type and modification date (real SQLite, no
model)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from searchapp.search import SearchFilters
from searchapp.store.database import Database
from searchapp.store.schema import Document, Source


def _ns(day: int) -> int:
    return int(datetime(2026, 3, day, tzinfo=UTC).timestamp() * 1_000_000_000)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'filters.db'}")
    with db.write() as session:
        notes = Source(kind="folder", location="/home/me/notes")
        papers = Source(kind="folder", location="/home/me/papers")
        session.add_all([notes, papers])
        session.flush()
        for doc_id, source, file_type, day in [
            (1, notes, "markdown", 1),
            (2, notes, "pdf", 10),
            (3, papers, "pdf", 20),
            (4, papers, "docx", 25),
        ]:
            session.add(
                Document(id=doc_id, source_id=source.id, uri=f"doc{doc_id}",
                         file_type=file_type, content_hash="h", mtime_ns=_ns(day))
            )  # fmt: skip
    return db


def _allowed(db: Database, filters: SearchFilters) -> set[int]:
    with db.read() as session:
        return filters.allowed_documents(session)


def test_no_filter_is_inactive() -> None:
    assert not SearchFilters().active
    assert SearchFilters(file_types=("pdf",)).active


def test_each_filter_alone(db: Database) -> None:
    assert _allowed(db, SearchFilters(folders=("/home/me/notes",))) == {1, 2}
    assert _allowed(db, SearchFilters(file_types=("pdf",))) == {2, 3}
    after = datetime(2026, 3, 10, tzinfo=UTC)
    assert _allowed(db, SearchFilters(modified_after=after)) == {2, 3, 4}  # the 10th included
    assert _allowed(db, SearchFilters(modified_before=after)) == {1}  # the 10th excluded


def test_filters_combine_with_and(db: Database) -> None:
    filters = SearchFilters(
        folders=("/home/me/papers",),
        file_types=("pdf", "docx"),
        modified_before=datetime(2026, 3, 22, tzinfo=UTC),
    )
    assert _allowed(db, filters) == {3}
    assert _allowed(db, SearchFilters(folders=("/nowhere",), file_types=("pdf",))) == set()
