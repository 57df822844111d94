"""Any producer of documents is a source: the pipeline keeps the books for it, as for a folder."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from indexer.pipeline import Candidate, DocumentSource, Rejected, SourceDocument, index_sources
from searchapp.errors import NotADocument, UnreadableFileError
from searchapp.search import Searcher
from searchapp.settings import Settings


class Note(Candidate):
    def __init__(self, key: str, text: str) -> None:
        self.key = key
        self.text = text

    def content_hash(self) -> str:
        if self.text == "<locked>":
            raise UnreadableFileError("locked by another program")
        return hashlib.sha256(self.text.encode()).hexdigest()

    def document(self, content_hash: str) -> SourceDocument:
        if not self.text.strip():
            raise NotADocument("no text")
        return SourceDocument(uri=f"note:{self.key}", path=None, external_id=self.key,
                              title=self.key, text=self.text, file_type="note",
                              content_hash=content_hash)  # fmt: skip


class Notes(DocumentSource):
    """Notes kept in memory, as a database table or a web service would hand them over."""

    kind = "notes"
    location = "memory:notes"
    key_column = "external_id"
    label = "index notes"
    unit = "note"

    def __init__(self, notes: dict[str, str], refused: tuple[str, ...] = ()) -> None:
        self.notes = notes
        self.refused = refused

    def candidates(self) -> Iterator[Candidate | Rejected]:
        yield from (Rejected(key, "not a note") for key in self.refused)
        yield from (Note(key, text) for key, text in self.notes.items())


def test_a_new_source_is_only_a_producer(home: Settings) -> None:
    notes = {
        "hives": "Bees keep their hive warm in winter by clustering.",
        "grinder": "A burr grinder gives an even espresso grind.",
        "saturn": "Saturn's rings are best seen at opposition.",
    }
    first = index_sources(home, [Notes(notes)])
    assert (first.added, first.updated, first.removed, first.unchanged) == (3, 0, 0, 0)

    notes["grinder"] = "Cold brew steeps coarse coffee grounds for a whole day."
    notes["saturn"] = "<locked>"  # cannot be read this time: what was stored is kept
    notes["empty"] = "   "  # not a document: skipped
    del notes["hives"]
    second = index_sources(home, [Notes(notes, refused=("draft",))])
    assert (second.added, second.updated, second.removed, second.unchanged) == (0, 1, 1, 0)
    assert second.failed == [("saturn", "locked by another program")]
    assert sorted(second.skipped) == [("draft", "not a note"), ("empty", "no text")]

    searcher = Searcher(home)
    titles = [r.title for r in searcher.search("steeping coffee for a day", k=3, mode="dense")]
    assert titles[0] == "grinder"  # searched by its new text
    assert sorted(titles) == ["grinder", "saturn"]  # hives removed, saturn kept

    third = index_sources(home, [Notes(notes)])
    assert (third.added, third.updated, third.removed, third.unchanged, third.chunks) == (
        0, 0, 0, 1, 0,
    )  # fmt: skip
