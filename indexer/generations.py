"""Index generations: re-embedding the stored chunk texts with a model version, and switching.

A generation is built in the background ("building") while searches go on against the active one;
switching is one SQL transaction, so a reader sees either the old generation or the new one. Every
vector of a generation is made by its own model version: a generation never mixes two models.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update

from searchapp.backends import prepare_queries, resolve
from searchapp.encoder import Encoder
from searchapp.errors import InvalidOptionError, UnknownVersionError
from searchapp.faults import crash_point
from searchapp.operations import PromoteOptions, RollbackOptions, ServedResult
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Chunk, Embedding, IndexGeneration, ModelVersion
from searchapp.store.vectors.factory import vector_store
from searchapp.versions import active_generation, encoder_for, require_version

EMBED_BATCH = 1024


def missing_chunk_count(db: Database, generation_id: int) -> int:
    """Live chunks that have no vector in this generation yet."""
    embedded = select(Embedding.chunk_id).where(Embedding.generation_id == generation_id)
    with db.read() as session:
        return session.scalar(select(func.count(Chunk.id)).where(Chunk.id.not_in(embedded))) or 0


def embed_missing(
    db: Database,
    settings: Settings,
    generation: IndexGeneration,
    encoder: Encoder,
    *,
    progress: Progress = NO_PROGRESS,
) -> int:
    """Embed every live chunk that has no vector in ``generation``, in committed batches.

    Resumable: a run that is killed keeps the batches it committed, and the next run embeds only
    what is still missing. Returns the number of chunks embedded; saves the index file and makes
    the generation's query encoder ready.
    """
    total = missing_chunk_count(db, generation.id)
    stage = f"embed chunks (generation {generation.id})"
    done = 0
    last_id = 0
    while True:
        progress.report(stage, done, total, unit="chunk")
        with db.read() as session:
            embedded = select(Embedding.chunk_id).where(Embedding.generation_id == generation.id)
            rows = session.execute(
                select(Chunk.id, Chunk.text)
                .where(Chunk.id > last_id, Chunk.id.not_in(embedded))
                .order_by(Chunk.id)
                .limit(EMBED_BATCH)
            ).all()
        if not rows:
            break
        vectors = encoder.encode([text for _, text in rows])
        with db.write() as session:
            # A chunk deleted meanwhile by an indexer must not get a vector back.
            live = set(session.scalars(select(Chunk.id).where(Chunk.id.in_([i for i, _ in rows]))))
            values = [
                {"generation_id": generation.id, "chunk_id": i, "vector": v.tobytes()}
                for (i, _), v in zip(rows, vectors, strict=True)
                if i in live
            ]
            if values:
                session.execute(insert(Embedding), values)
            db.bump_revision(session)
        last_id = rows[-1][0]
        done += len(rows)
        crash_point("re-embed")
    vectors = vector_store(db, settings.index_dir)
    with db.read() as session:
        index, _ = vectors.open(session, generation, encoder.dimension)
    vectors.commit(db, generation, index)
    prepare_queries(encoder.spec, generation.backend, encoder.fingerprint, settings.backends_dir,
                    settings.query_backend, progress)  # fmt: skip
    return done


def start_generation(db: Database, version: ModelVersion, backend: str) -> IndexGeneration:
    """A new, empty generation in state "building" for ``version``, embedded by ``backend``
    (``auto`` resolved here, once)."""
    with db.write() as session:
        generation = IndexGeneration(
            model_version_id=version.id, status="building", backend=resolve(backend)
        )
        session.add(generation)
        session.flush()
        return generation


def activate(db: Database, generation_id: int) -> None:
    """Serve ``generation_id`` from now on: one transaction retires the old one."""
    with db.write() as session:
        generation = session.get(IndexGeneration, generation_id)
        if generation is None:
            raise UnknownVersionError(f"No index generation {generation_id}.")
        current = active_generation(session)
        if current is not None and current.id != generation_id:
            current.status = "retired"
            session.execute(
                update(ModelVersion)
                .where(ModelVersion.id == current.model_version_id)
                .values(status="retired")
            )
        generation.status = "active"
        generation.activated_at = datetime.now(UTC)
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.id == generation.model_version_id)
            .values(status="active")
        )
        db.bump_revision(session)


def drop_generation(db: Database, settings: Settings, generation_id: int) -> None:
    """Delete a generation that is not served, with its vectors and its index file."""
    with db.write() as session:
        generation = session.get(IndexGeneration, generation_id)
        if generation is None:
            return
        if generation.status == "active":
            raise InvalidOptionError(
                f"Generation {generation_id} is being served; it cannot be dropped."
            )
        vectors = vector_store(db, settings.index_dir)
        vectors.drop(session, generation_id)
        session.delete(generation)
    vectors.remove_leftovers(db)  # its file, no longer named


def drop_unfinished(db: Database, settings: Settings) -> list[int]:
    """Drop generations left "building" by a run that died, and temporary index files; returns
    the ids of the generations dropped."""
    vector_store(db, settings.index_dir).remove_leftovers(db)
    with db.read() as session:
        ids = list(
            session.scalars(select(IndexGeneration.id).where(IndexGeneration.status == "building"))
        )
    for generation_id in ids:
        drop_generation(db, settings, generation_id)
    return ids


def promote_version(
    db: Database,
    settings: Settings,
    version_id: int,
    *,
    backend: str | None = None,
    progress: Progress = NO_PROGRESS,
) -> IndexGeneration:
    """Serve ``version_id``: reuse its newest generation (of ``backend``, when one is named),
    embedding the chunks added since, or build one (with ``backend``, else the settings')."""
    with db.writer_lock():
        drop_unfinished(db, settings)
        with db.read() as session:
            version = session.get(ModelVersion, version_id)
            if version is None:
                raise UnknownVersionError(
                    f"No model version {version_id}: see `searchapp models list`."
                )
            query = select(IndexGeneration).where(IndexGeneration.model_version_id == version_id)
            if backend is not None:
                query = query.where(IndexGeneration.backend == resolve(backend))
            generation = session.execute(query.order_by(IndexGeneration.id.desc())).scalar()
        if generation is None:
            generation = start_generation(db, version, backend or settings.backend)
        return _serve(db, settings, version, generation, progress)


def rollback(
    db: Database, settings: Settings, *, progress: Progress = NO_PROGRESS
) -> IndexGeneration:
    """Serve again the generation that was served before the current one."""
    with db.writer_lock():  # chosen and switched under one lock: no promotion slips in between
        drop_unfinished(db, settings)
        with db.read() as session:
            previous = session.execute(
                select(IndexGeneration)
                .where(
                    IndexGeneration.status == "retired", IndexGeneration.activated_at.is_not(None)
                )
                .order_by(IndexGeneration.activated_at.desc())
            ).scalar()
            if previous is None:
                raise UnknownVersionError("There is no earlier model version to roll back to.")
            version = require_version(session, previous.model_version_id)
        return _serve(db, settings, version, previous, progress)


def run_promote(settings: Settings, options: PromoteOptions, progress: Progress) -> ServedResult:
    """The ``promote`` operation."""
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    generation = promote_version(db, settings, options.version, backend=options.backend,
                                 progress=progress)  # fmt: skip
    return _served(generation)


def run_rollback(settings: Settings, options: RollbackOptions, progress: Progress) -> ServedResult:
    """The ``rollback`` operation."""
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    return _served(rollback(db, settings, progress=progress))


def _served(generation: IndexGeneration) -> ServedResult:
    return ServedResult(version=generation.model_version_id, generation=generation.id,
                        backend=generation.backend)  # fmt: skip


def _serve(
    db: Database,
    settings: Settings,
    version: ModelVersion,
    generation: IndexGeneration,
    progress: Progress,
) -> IndexGeneration:
    """Embed what ``generation`` lacks with its own backend, then switch to it."""
    encoder = encoder_for(version, generation.backend, settings.backends_dir)
    embed_missing(db, settings, generation, encoder, progress=progress)
    activate(db, generation.id)
    return generation
