"""``searchapp migrate --to URL``: copy a home's store into another database, vectors included.

Every table is copied row for row with its ids (so chunk ids, the vectors' keys, stay the same),
in an order that satisfies the foreign keys, in batches with progress; nothing is re-encoded.
The target is made by the same migrations as any store and must be empty, and the copy is one
transaction there: a copy that fails leaves it empty again. The source is only read. The target's
own structures are then made by its stores (``adopt``): on PostgreSQL the words of every chunk
and each generation's HNSW index; and its id sequences are moved past the copied ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Table, func, insert, select

from searchapp.errors import InvalidOptionError
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.store.database import Database
from searchapp.store.keywords.factory import keyword_store
from searchapp.store.schema import (
    Base,
    Chunk,
    Document,
    Embedding,
    Feedback,
    IndexGeneration,
    Job,
    ModelVersion,
    Source,
    StoreState,
    TrainingPair,
)
from searchapp.store.vectors.factory import vector_store

BATCH = 1000
# Parents before children; model versions refer to their parents, so by id.
TABLES: tuple[type[Base], ...] = (
    Source, ModelVersion, Document, Chunk, IndexGeneration, Embedding, Feedback, TrainingPair,
    Job, StoreState,
)  # fmt: skip


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]  # table -> rows copied
    target: str


def copy_store(
    source: Database, target: Database, index_dir: Path, progress: Progress = NO_PROGRESS
) -> CopyReport:
    """Copy every row of ``source`` into the empty ``target`` of the home whose index folder is
    ``index_dir``; see the module's docstring."""
    where = target.engine.url.render_as_string(hide_password=True)
    with target.read() as session:
        if session.scalar(select(func.count()).select_from(Document)):
            raise InvalidOptionError(
                f"The database {where} already holds documents: migrate copies into an empty "
                "database only. Create a new one (or empty it) and run the command again."
            )
    counts: dict[str, int] = {}
    with target.writer_lock(), source.read() as reading, target.write() as writing:
        writing.execute(StoreState.__table__.delete())  # the target's own empty state row
        for model in TABLES:
            table: Table = model.__table__  # type: ignore[assignment]
            total = reading.scalar(select(func.count()).select_from(table)) or 0
            key = table.primary_key.columns.values()
            rows = reading.execute(select(table).order_by(*key)).mappings()
            done = 0
            while batch := rows.fetchmany(BATCH):
                writing.execute(insert(table), [dict(row) for row in batch])
                done += len(batch)
                progress.report(f"copy {table.name}", done, total, unit="row")
            counts[table.name] = done
        target.move_sequences_past_ids(writing, [model.__table__ for model in TABLES])
        vector_store(target, index_dir).adopt(writing)
        keyword_store(target).adopt(writing)
    return CopyReport(rows=counts, target=where)
