"""Importing a BEIR corpus (``corpus.jsonl``: one document per record, title + text).

Incremental like folder indexing: records whose title and text are unchanged are skipped, changed
ones replaced, and records gone from the file removed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from indexer.pipeline import (
    Candidate,
    DocumentSource,
    IndexSummary,
    Rejected,
    SourceDocument,
    index_sources,
)
from searchapp.base_models import requested_model
from searchapp.beir import BeirDocument, count_corpus, read_corpus
from searchapp.encoder import EncoderSpec
from searchapp.errors import NotADocument
from searchapp.operations import ImportOptions
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.settings import Settings
from searchapp.store.database import Database


class RecordCandidate(Candidate):
    """A corpus record; its hash covers its title and text."""

    def __init__(self, record: BeirDocument, root: Path) -> None:
        self.key = record.id
        self._record = record
        self._root = root

    def content_hash(self) -> str:
        return hashlib.sha256(f"{self._record.title}\0{self._record.text}".encode()).hexdigest()

    def document(self, content_hash: str) -> SourceDocument:
        record = self._record
        # Title and text joined as one paragraph, as BEIR baselines embed them, so that the title
        # shares the first chunk instead of becoming a chunk of its own.
        text = f"{record.title} {record.text}" if record.title else record.text
        if not text.strip():
            raise NotADocument("no text")
        return SourceDocument(
            uri=f"beir:{self._root}#{record.id}",
            path=None,
            external_id=record.id,
            title=record.title or record.id,
            text=text,
            file_type="beir",
            content_hash=content_hash,
            size=len(text),
        )


class BeirCorpusSource(DocumentSource):
    """The records of a BEIR folder's ``corpus.jsonl``, matched by their ``_id``."""

    kind = "beir"
    key_column = "external_id"
    unit = "doc"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self.label = f"import {root.name}"
        self._total = count_corpus(root)  # also checks the file exists before anything is written

    def count(self) -> int:
        return self._total

    def candidates(self) -> Iterator[Candidate | Rejected]:
        seen: set[str] = set()
        for record in read_corpus(self.root):
            if record.id in seen:
                yield Rejected(record.id, "duplicate _id in corpus.jsonl (kept the first)", True)
                continue
            seen.add(record.id)
            yield RecordCandidate(record, self.root)


def import_beir(
    settings: Settings,
    folder: str | os.PathLike[str],
    *,
    spec: EncoderSpec | None = None,
    progress: Progress = NO_PROGRESS,
    db: Database | None = None,
) -> IndexSummary:
    """Index every record of ``folder/corpus.jsonl``; a result's path is the record's ``_id``."""
    source = BeirCorpusSource(Path(os.path.abspath(Path(folder).expanduser())))
    return index_sources(settings, [source], spec=spec, db=db, progress=progress)


def run_import(settings: Settings, options: ImportOptions, progress: Progress) -> IndexSummary:
    """The ``import`` operation."""
    spec = requested_model(settings, options)
    return import_beir(settings, options.beir, spec=spec, progress=progress)
