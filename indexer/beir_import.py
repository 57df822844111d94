"""Importing a BEIR corpus (``corpus.jsonl``: one document per record, title + text).

Incremental like folder indexing: records whose title and text are unchanged are skipped, changed
ones replaced, and records gone from the file removed.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from tqdm import tqdm

from indexer.pipeline import (
    IndexSummary,
    IndexWriter,
    SourceDocument,
    get_or_create_source,
    known_documents,
    mark_indexed,
)
from searchapp.beir import count_corpus, read_corpus
from searchapp.encoder import EncoderSpec
from searchapp.settings import Settings
from searchapp.store.database import Database


def import_beir(
    settings: Settings,
    folder: str | os.PathLike[str],
    *,
    spec: EncoderSpec | None = None,
    show_progress: bool = True,
    db: Database | None = None,
) -> IndexSummary:
    """Index every record of ``folder/corpus.jsonl``; a result's path is the record's ``_id``."""
    root = Path(os.path.abspath(Path(folder).expanduser()))
    total = count_corpus(root)  # also checks the file exists before anything is written
    db = db or Database(settings.database_url, lock_path=settings.write_lock_path)
    started = time.perf_counter()
    summary = IndexSummary()
    with db.writer_lock(), IndexWriter(settings, db, spec=spec) as writer:
        source_id = get_or_create_source(db, "beir", str(root))
        known = known_documents(db, source_id, key="external_id")
        seen: set[str] = set()
        records = read_corpus(root)
        for record in tqdm(records, total=total, desc=f"import {root.name}", unit="doc",
                           disable=not show_progress):  # fmt: skip
            if record.id in seen:
                summary.failed.append((record.id, "duplicate _id in corpus.jsonl (kept the first)"))
                continue
            seen.add(record.id)
            # Title and text joined as one paragraph, as BEIR baselines embed them, so that
            # the title shares the first chunk instead of becoming a chunk of its own.
            text = f"{record.title} {record.text}" if record.title else record.text
            if not text.strip():
                summary.skipped.append((record.id, "no text"))
                seen.discard(record.id)
                continue
            digest = hashlib.sha256(f"{record.title}\0{record.text}".encode()).hexdigest()
            previous = known.get(record.id)
            if previous and previous.content_hash == digest:
                summary.unchanged += 1
                continue
            document = SourceDocument(
                uri=f"beir:{root}#{record.id}",
                path=None,
                external_id=record.id,
                title=record.title or record.id,
                text=text,
                file_type="beir",
                content_hash=digest,
                size=len(text),
            )
            writer.add(document, source_id, replaces=previous.id if previous else None)
            if previous:
                summary.updated += 1
            else:
                summary.added += 1
        gone = [doc.id for external_id, doc in known.items() if external_id not in seen]
        writer.remove(gone)
        summary.removed = len(gone)
        writer.flush()
        mark_indexed(db, source_id)
    summary.chunks = writer.chunks_written
    summary.seconds = time.perf_counter() - started
    return summary
