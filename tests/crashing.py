"""Kill searchapp at its worst moments and prove that a restart loses and mixes nothing.

Shared by the default test suite (a few kills) and ``bench/reliability.py`` (the stress run).
One round: edit the folder as a person would, start a real ``searchapp`` process (index, or promote
a model version), kill it with SIGKILL, either at a named crash point (``searchapp.faults``) or
after a random delay, and check what a reader sees; then run the same command again, to completion,
and check everything: SQLite integrity, the served generation's vectors are exactly the live chunks,
no temporary or orphaned index files, dense search equals a brute-force search over the stored
vectors, every generation's vectors are its own model's, and the job is done.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text

from indexer.generations import drop_generation
from searchapp.backends import REPEATABLE_WITHIN
from searchapp.encoder import EncoderSpec
from searchapp.faults import POINTS
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.keywords.sqlite import SqliteKeywords
from searchapp.store.keywords.tantivy_index import TantivyKeywords
from searchapp.store.schema import Chunk, Document, Embedding, IndexGeneration, ModelVersion
from searchapp.store.vectors.base import live_chunk_ids
from searchapp.store.vectors.faiss import FaissFiles
from searchapp.versions import active_generation, encoder_for, load_encoder, register_version

# Random-delay kills of indexing, every crash point but training's (tests/test_training.py kills
# a retraining), and random-delay kills of a promotion.
KINDS = ("random", *(point for point in POINTS if point != "train-step"), "random-promote")
QUERIES = ("how do I treat varroa mites", "espresso grind size", "someone is choking")
TOPICS = ("bees dance to share where flowers are", "cold brew needs a coarse grind",
          "burns should be cooled under running water", "queens lay eggs in spring")  # fmt: skip


@dataclass(frozen=True)
class Round:
    """What one kill-and-restart round did."""

    kind: str
    killed: bool  # False: the process finished before the kill came
    seconds: float


def searchapp(home: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "searchapp.cli", "--home", str(home.home), *args]


def index_command(home: Settings, folder: Path) -> list[str]:
    return searchapp(home, "index", str(folder), "--quiet")


def run_killed(
    command: list[str], *, crash_at: str | None = None, delay: float | None = None
) -> bool:
    """Run ``command`` until it dies at ``crash_at`` or is killed after ``delay`` seconds;
    returns whether it was killed (False: it finished first)."""
    env = dict(os.environ)
    if crash_at is not None:
        env["SEARCHAPP_CRASH_AT"] = crash_at
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        process.wait(timeout=delay if delay is not None else 600)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process.returncode == -signal.SIGKILL


def run_to_completion(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr[-3000:]}"


def edit_folder(folder: Path, rng: random.Random, round_number: int) -> None:
    """Add a note, and now and then rewrite or delete an earlier one, so each run has work."""
    notes = sorted(folder.glob("bees/note-*.txt"))
    if notes and rng.random() < 0.3:
        rng.choice(notes).unlink()
    elif notes and rng.random() < 0.5:
        rng.choice(notes).write_text(f"Revised in round {round_number}: {rng.choice(TOPICS)}.")
    (folder / "bees" / f"note-{round_number}.txt").write_text(
        f"Note {round_number}: {rng.choice(TOPICS)}. " * rng.randint(1, 40)
    )


def served(home: Settings) -> tuple[int, int] | None:
    """(generation id, model version id) being served; None before the first index run."""
    with Database(home.database_url).read() as session:
        generation = active_generation(session)
        return (generation.id, generation.model_version_id) if generation else None


def add_second_version(home: Settings) -> None:
    """A second model version (the same weights, [CLS] pooling) to promote back and forth."""
    db = Database(home.database_url)
    with db.write() as session:
        register_version(session, load_encoder(EncoderSpec(pooling="cls")), name="cls",
                         status="candidate")  # fmt: skip


def promote_command(home: Settings) -> list[str]:
    """Promote the version not served, after dropping its old generation so that it must be
    re-embedded from scratch."""
    db = Database(home.database_url)
    serving = served(home)
    assert serving is not None, "index something first"
    with db.read() as session:
        other = session.scalars(
            select(ModelVersion.id).where(ModelVersion.id != serving[1])
        ).first()
        stale = session.scalars(
            select(IndexGeneration.id).where(IndexGeneration.status != "active")
        ).all()
    assert other is not None, "add_second_version first"
    for generation_id in stale:
        drop_generation(db, home, generation_id)
    return searchapp(home, "models", "promote", str(other), "--quiet")


def crash_round(
    home: Settings,
    folder: Path,
    kind: str,
    rng: random.Random,
    round_number: int,
    durations: dict[str, float] | None = None,
) -> Round:
    """Edit, kill at ``kind``, check the reader's view, rerun to completion, check everything.

    Random kills land within the duration of the last complete run of the same command
    (``durations``, updated here; 10 s when unknown), so that most of them hit a running job.
    """
    durations = durations if durations is not None else {}
    started = time.perf_counter()
    edit_folder(folder, rng, round_number)
    before = served(home)
    promotion = kind in ("re-embed", "random-promote")
    command = promote_command(home) if promotion else index_command(home, folder)
    job = "promote" if promotion else "index"
    if kind in ("random", "random-promote"):
        killed = run_killed(command, delay=rng.uniform(0.1, 0.9) * durations.get(job, 10.0))
    else:
        killed = run_killed(command, crash_at=kind)
    assert_readers_consistent(home)
    if promotion and killed and served(home) != before:
        assert_complete(home)  # killed after the switch: the new generation must be whole
    rerun_started = time.perf_counter()
    run_to_completion(command)
    durations[job] = time.perf_counter() - rerun_started
    assert_recovered(home, None if promotion else folder)
    if promotion:
        now = served(home)
        assert before and now and now[1] != before[1], "the rerun promotion did not switch versions"
    return Round(kind, killed, time.perf_counter() - started)


def assert_readers_consistent(home: Settings) -> None:
    """What a process opening the home right after the kill sees."""
    with sqlite3.connect(home.home / "searchapp.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db = Database(home.database_url)
    with db.read() as session:
        if active_generation(session) is None:
            return  # killed before the first commit: nothing indexed yet
    with db.read() as session:  # the keyword index holds exactly the live chunks
        fts = set(session.scalars(text("SELECT rowid FROM chunks_fts")))
        assert fts == set(session.scalars(select(Chunk.id)))
    searcher = Searcher(home)
    assert_dense_search_exact(searcher)
    assert_keyword_search_exact(searcher)


def assert_complete(home: Settings) -> None:
    """The served generation has a vector for every live chunk."""
    with Database(home.database_url).read() as session:
        generation = active_generation(session)
        chunk_ids = sorted(session.scalars(select(Chunk.id)))
        assert sorted(live_chunk_ids(session, generation.id).tolist()) == chunk_ids


def assert_recovered(home: Settings, folder: Path | None) -> None:
    """After a completed rerun: consistent, tidy, correct, pure, and the folder fully indexed."""
    assert_readers_consistent(home)
    assert_complete(home)
    assert_fast_keywords_current(home)
    searcher = Searcher(home)
    searcher.search("bees", k=1, mode="dense")
    sync = searcher.last_sync  # the file SQL names is whole and current: nothing to repair
    assert sync is not None and not sync.rebuilt and sync.added == sync.removed == 0, sync
    db = Database(home.database_url)
    with db.read() as session:
        leftovers = FaissFiles(home.index_dir).leftovers(session)
        assert not leftovers, f"leftover index files: {leftovers}"
        stored_paths = set(session.scalars(select(Document.path)))
    if folder is not None:
        on_disk = {str(p) for p in folder.rglob("*") if p.is_file()}
        assert stored_paths == on_disk, "the rerun did not finish the job"
    assert_generations_pure(home)


def assert_keyword_search_exact(searcher: Searcher, queries: tuple[str, ...] = QUERIES) -> None:
    """Keyword search, whichever index answers it (the fast one when it is up to date), ranks the
    chunks FTS5 ranks from the same snapshot: at each rank a chunk FTS5 scores as its own chunk
    at that rank (Tantivy keeps lengths to about 3%, so near ties may swap)."""
    keywords = searcher.keywords
    assert isinstance(keywords, SqliteKeywords)
    with searcher.db.read() as session:
        for query in queries:
            got = keywords.search(session, query, 10)
            exact = keywords.exact.search(session, query, 50)
            fts5_score = dict(exact)
            assert len(got) == min(10, len(exact)), query
            for (chunk, score), (_, expected) in zip(got, exact, strict=False):
                assert fts5_score.get(chunk) == pytest.approx(expected, rel=0.03), query
                assert score == pytest.approx(expected, rel=0.05), query


def assert_fast_keywords_current(home: Settings) -> None:
    """The fast keyword index holds exactly the live chunks, at the log's position."""
    fast = TantivyKeywords(home.index_dir)
    with Database(home.database_url).read() as session:
        assert fast.matches(session), "the fast keyword index did not catch up"
        assert fast.count() == session.scalar(select(func.count(Chunk.id)))


def assert_dense_search_exact(searcher: Searcher, k: int = 5) -> None:
    """Dense search through the FAISS index ranks documents exactly as a brute-force search over
    the vectors stored in SQL for the served generation does."""
    with searcher.db.read() as session:
        generation = active_generation(session)
        rows = session.execute(
            select(Chunk.document_id, Embedding.vector)
            .join(Embedding, Embedding.chunk_id == Chunk.id)
            .where(Embedding.generation_id == generation.id)
        ).all()
    if not rows:
        return
    documents = np.array([document_id for document_id, _ in rows])
    matrix = np.stack([np.frombuffer(vector, dtype=np.float32) for _, vector in rows])
    for query in QUERIES:
        scores = matrix @ searcher.encoder.encode([query])[0]
        best: dict[int, float] = {}
        for document_id, score in zip(documents.tolist(), scores.tolist(), strict=True):
            best[document_id] = max(best.get(document_id, -1.0), score)
        expected = sorted(best.items(), key=lambda item: -item[1])[:k]
        got = [(r.doc_id, r.score) for r in searcher.search(query, k=k, mode="dense")]
        # The index reads a fixed depth of chunks, so a document with many may leave fewer than
        # k; what it does return must be the brute-force ranking's head (ties in either order).
        assert got, f"{query!r}: no results"
        for (doc, score), (want_doc, want_score) in zip(got, expected, strict=False):
            assert abs(score - want_score) < 1e-5, f"{query!r}: index {got}, stored {expected}"
            assert doc == want_doc or best[doc] == pytest.approx(best[want_doc], abs=1e-5)


def assert_generations_pure(home: Settings, sample: int | None = 24) -> None:
    """Each generation's vectors are what its own model makes of the chunk texts (the newest
    ``sample`` chunks; None: all of them)."""
    db = Database(home.database_url)
    with db.read() as session:
        for generation in session.scalars(select(IndexGeneration)):
            rows = session.execute(
                select(Chunk.text, Embedding.vector)
                .join(Embedding, Embedding.chunk_id == Chunk.id)
                .where(Embedding.generation_id == generation.id)
                .order_by(Chunk.id.desc())  # the newest chunks: those written around the kills
                .limit(sample)
            ).all()
            if not rows:
                continue
            version = session.get(ModelVersion, generation.model_version_id)
            encoder = encoder_for(version, generation.backend, home.backends_dir)
            stored = np.stack([np.frombuffer(v, dtype=np.float32) for _, v in rows])
            np.testing.assert_allclose(stored, encoder.encode([t for t, _ in rows]),
                                       atol=REPEATABLE_WITHIN[generation.backend])  # fmt: skip
