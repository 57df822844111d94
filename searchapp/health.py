"""Health of a home's store: SQL integrity, the vector index against SQL, the keyword index.

``check_store`` only reads. A damaged or stale index file is rebuilt from SQL by the next open of
the index, without re-encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from searchapp.errors import CorruptIndexError, WriterBusyError
from searchapp.operations import CheckResult, RepairOptions
from searchapp.progress import Progress
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.keyword import keyword_index
from searchapp.store.schema import Chunk, IndexGeneration, ModelVersion
from searchapp.store.tantivy_keywords import TantivyKeywords, log_position
from searchapp.store.vector_index import (
    VectorIndex,
    commit_index,
    leftover_index_files,
    live_chunk_ids,
    open_index,
    recorded_index_file,
    remove_leftover_index_files,
)
from searchapp.versions import active_generation


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class HealthReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


def check_store(settings: Settings, db: Database) -> HealthReport:
    report = HealthReport()
    with db.read() as session:
        if db.is_sqlite:
            verdict = session.execute(text("PRAGMA integrity_check")).scalar()
            report.add("SQLite integrity", verdict == "ok", str(verdict))
        chunks = session.scalar(select(func.count(Chunk.id))) or 0
        words = keyword_index(db.engine.dialect.name).count(session)
        report.add("keyword index", words == chunks, f"{words} rows for {chunks} chunks")
        if db.is_sqlite:
            report.add(*_fast_keywords_check(settings, session, chunks))
        generation = active_generation(session)
        if generation is None:
            report.add("served generation", chunks == 0, "nothing indexed yet")
            return report
        live = live_chunk_ids(session, generation.id)
        report.add(
            "every chunk has a vector",
            len(live) == chunks,
            f"{len(live)} vectors in generation {generation.id} for {chunks} chunks",
        )
        version = session.get(ModelVersion, generation.model_version_id)
        assert version is not None
        if db.is_sqlite:
            report.add(*_file_check(settings, generation, version.dimension, live))
        else:  # the rows are the index: nothing beside them to verify
            report.add("vector index", True, f"{len(live)} vectors searched in PostgreSQL")
    report.add(*_leftovers_check(settings, db))
    return report


def _fast_keywords_check(
    settings: Settings, session: Session, chunks: int
) -> tuple[str, bool, str]:
    """The Tantivy index beside FTS5: derived, so behind or missing is not a fault (FTS5
    answers meanwhile, and the next index run catches up); a count that disagrees at the
    position it claims is."""
    keywords = TantivyKeywords(settings.index_dir)
    position, wanted = keywords.position(), log_position(session)
    name = "fast keyword index"
    if position is None:
        return name, True, "not built yet: the next index run (or --repair) builds it"
    if position != wanted:
        return name, True, (f"{wanted - position} chunk changes behind: FTS5 answers until the "
                            "next index run (or --repair) applies them")  # fmt: skip
    held = keywords.count()
    return name, held == chunks, f"{held} chunks of {chunks}, up to date"


def _leftovers_check(settings: Settings, db: Database) -> tuple[str, bool, str]:
    """Temporary or unnamed index files. A running writer has some for a moment, so: not judged
    while one runs, and only files seen both before and after reading SQL's names count."""
    try:
        with db.writer_lock():
            pass  # free now: no writer was running (the lock is not held while we look)
    except WriterBusyError:
        return "leftover files", True, "not judged: another process is writing"
    except OSError as error:  # a read-only home: the lock file cannot be made
        return "leftover files", True, f"not judged: {error}"
    before = _index_files(settings)
    with db.read() as session:
        leftovers = {p.name for p in leftover_index_files(session, settings.index_dir)}
    names = sorted(leftovers & before & _index_files(settings))
    return "leftover files", not names, ", ".join(names) or "none"


def _index_files(settings: Settings) -> set[str]:
    directory = settings.index_dir
    return {p.name for p in directory.iterdir()} if directory.is_dir() else set()


def _file_check(
    settings: Settings, generation: IndexGeneration, dimension: int, live: np.ndarray
) -> tuple[str, bool, str]:
    """Does the saved index file verify, and hold exactly the live chunk ids?"""
    path = recorded_index_file(settings.index_dir, generation)
    if path is None or generation.checksum is None:
        return "index file", False, "no index file saved yet"
    try:
        index = VectorIndex.load(
            path, checksum=generation.checksum, count=generation.vector_count, dimension=dimension
        )
    except CorruptIndexError as error:
        return "index file", False, str(error)
    ids = index.ids()
    missing = len(np.setdiff1d(live, ids))
    extra = len(np.setdiff1d(ids, live))
    if missing or extra:  # a run that stopped early: healed from SQL by the next open
        return (
            "index file",
            True,
            f"{path.name}: checksum ok; {missing} vectors to add and {extra} to drop from SQL "
            "when next opened (or by --repair)",
        )
    return "index file", True, f"{path.name}: checksum ok, {len(ids)} vectors = live chunks"


def repair_store(settings: Settings, db: Database) -> list[str]:
    """Rebuild what can be rebuilt from SQL: the served generation's index file and the keyword
    index; delete leftover index files. Returns what was done. SQLite corruption itself cannot be
    repaired here."""
    done = []
    with db.writer_lock(timeout=60):
        with db.write() as session:
            keywords = keyword_index(db.engine.dialect.name)
            chunks = session.scalar(select(func.count(Chunk.id))) or 0
            if keywords.count(session) != chunks:
                keywords.rebuild(session)
                done.append(f"keyword index rebuilt ({chunks} chunks)")
        if db.is_sqlite:  # behind: the changes applied; missing or unreadable: built again
            fast = TantivyKeywords(settings.index_dir)
            if changed := fast.catch_up(db):
                done.append(f"fast keyword index caught up ({changed} chunks written or deleted)")
            with db.read() as session:
                chunks = session.scalar(select(func.count(Chunk.id))) or 0
            if fast.count() != chunks:  # up to date by its position, yet not the same chunks
                done.append(f"fast keyword index rebuilt ({fast.rebuild(db)} chunks)")
        with db.read() as session:
            generation = active_generation(session)
            if generation is not None:
                version = session.get(ModelVersion, generation.model_version_id)
                assert version is not None
                index, sync = open_index(session, generation, settings.index_dir, version.dimension)
        if generation is None:
            leftovers = remove_leftover_index_files(db, settings.index_dir)
        else:
            leftovers = commit_index(db, generation, index, settings.index_dir)
            how = "rebuilt from the stored vectors" if sync.rebuilt else "brought up to date"
            done.append(f"index file of generation {generation.id} {how} ({len(index)} vectors)")
    if leftovers:
        done.append(f"removed {len(leftovers)} leftover index files")
    return done


def run_repair(settings: Settings, options: RepairOptions, progress: Progress) -> CheckResult:
    """The ``repair`` operation: repair, then check again."""
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    progress.report("repair", 0, 2, unit="step", detail="rebuilding from SQL")
    repaired = repair_store(settings, db)
    progress.report("repair", 1, 2, unit="step", detail="checking")
    report = check_store(settings, db)
    progress.report("repair", 2, 2, unit="step")
    return result_of(report, repaired)


def result_of(report: HealthReport, repaired: list[str] | None = None) -> CheckResult:
    checks = tuple((check.name, check.ok, check.detail) for check in report.checks)
    return CheckResult(ok=report.ok, checks=checks, repaired=tuple(repaired or ()))
