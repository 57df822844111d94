"""Health of a home's store: SQL integrity, the vector index against SQL, the keyword index.

``check_store`` only reads. A damaged or stale index file is rebuilt from SQL by the next open of
the index, without re-encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from searchapp.errors import WriterBusyError
from searchapp.operations import CheckResult, RepairOptions
from searchapp.progress import Progress
from searchapp.settings import Settings
from searchapp.store.checks import Check
from searchapp.store.database import Database
from searchapp.store.keywords.factory import keyword_store
from searchapp.store.schema import Chunk
from searchapp.store.vectors.base import live_chunk_ids
from searchapp.store.vectors.factory import vector_store
from searchapp.versions import active_generation, require_version


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
        report.checks += db.check(session)
        chunks = session.scalar(select(func.count(Chunk.id))) or 0
        report.checks += keyword_store(db, settings.index_dir).check(session, chunks)
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
        version = require_version(session, generation.model_version_id)
        vectors = vector_store(db, settings.index_dir)
        report.checks.append(vectors.check(generation, version.dimension, live))
    report.checks.append(_leftovers_check(settings, db))
    return report


def _leftovers_check(settings: Settings, db: Database) -> Check:
    """Temporary or unnamed index files. A running writer has some for a moment, so: not judged
    while one runs, and only files seen both before and after reading SQL's names count."""
    try:
        with db.writer_lock():
            pass  # free now: no writer was running (the lock is not held while we look)
    except WriterBusyError:
        return Check("leftover files", True, "not judged: another process is writing")
    except OSError as error:  # a read-only home: the lock file cannot be made
        return Check("leftover files", True, f"not judged: {error}")
    before = _index_files(settings)
    with db.read() as session:
        leftovers = {p.name for p in vector_store(db, settings.index_dir).leftovers(session)}
    names = sorted(leftovers & before & _index_files(settings))
    return Check("leftover files", not names, ", ".join(names) or "none")


def _index_files(settings: Settings) -> set[str]:
    directory = settings.index_dir
    return {p.name for p in directory.iterdir()} if directory.is_dir() else set()


def repair_store(settings: Settings, db: Database) -> list[str]:
    """Rebuild what can be rebuilt from SQL: the keyword indexes and the served generation's
    vectors; delete leftover files. Returns what was done. Damage to SQL itself cannot be
    repaired here."""
    keywords = keyword_store(db, settings.index_dir)
    vectors = vector_store(db, settings.index_dir)
    with db.writer_lock(timeout=60):
        done = keywords.repair(db)
        with db.read() as session:
            generation = active_generation(session)
            if generation is not None:
                version = require_version(session, generation.model_version_id)
                index, sync = vectors.open(session, generation, version.dimension)
        if generation is None:
            leftovers = vectors.remove_leftovers(db)
        else:
            leftovers = vectors.commit(db, generation, index)
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
