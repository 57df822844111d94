"""What a home holds: the served model and generation, the sources, document and chunk counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from searchapp.encoder import BUNDLED_MODEL_NAME
from searchapp.store.database import Database
from searchapp.store.schema import Chunk, Document, ModelVersion, Source
from searchapp.versions import active_generation


@dataclass(frozen=True)
class SourceInfo:
    id: int
    kind: str
    location: str
    documents: int
    indexed_at: datetime | None


@dataclass(frozen=True)
class StoreStatus:
    version_id: int | None
    version_name: str
    fingerprint: str
    pooling: str
    layer: int | None
    base_model: str  # the model the served version started from (a name or a folder)
    dimension: int | None
    generation_id: int | None
    backend: str
    documents: int
    chunks: int
    last_indexed: datetime | None
    sources: list[SourceInfo]


def by_reason(entries: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(reason, paths) for each reason among (path, reason) pairs, the most common first: what
    an index run's summary shows as "12 files: needs OCR, and OCR is off"."""
    groups: dict[str, list[str]] = {}
    for path, reason in entries:
        groups.setdefault(reason, []).append(path)
    return sorted(groups.items(), key=lambda group: (-len(group[1]), group[0]))


def list_sources(db: Database) -> list[SourceInfo]:
    with db.read() as session:
        counts = dict(
            session.execute(
                select(Document.source_id, func.count(Document.id)).group_by(Document.source_id)
            ).all()
        )
        return [
            SourceInfo(s.id, s.kind, s.location, counts.get(s.id, 0), s.indexed_at)
            for s in session.scalars(select(Source).order_by(Source.location))
        ]


def indexed_file_types(db: Database) -> list[str]:
    """The file types present in the index (loader plugins' types included), for filters."""
    with db.read() as session:
        return list(
            session.scalars(select(Document.file_type).distinct().order_by(Document.file_type))
        )


def store_status(db: Database) -> StoreStatus:
    sources = list_sources(db)
    with db.read() as session:
        documents = session.scalar(select(func.count(Document.id))) or 0
        chunks = session.scalar(select(func.count(Chunk.id))) or 0
        generation = active_generation(session)
        version = session.get(ModelVersion, generation.model_version_id) if generation else None
    indexed = [s.indexed_at for s in sources if s.indexed_at is not None]
    return StoreStatus(
        version_id=version.id if version else None,
        version_name=version.name if version else "(none: nothing indexed yet)",
        fingerprint=version.fingerprint if version else "",
        pooling=version.pooling if version else "",
        layer=version.layer if version else None,
        base_model=(version.base_model or BUNDLED_MODEL_NAME) if version else "",
        dimension=version.dimension if version else None,
        generation_id=generation.id if generation else None,
        backend=generation.backend if generation else "",
        documents=documents,
        chunks=chunks,
        last_indexed=max(indexed) if indexed else None,
        sources=sources,
    )
