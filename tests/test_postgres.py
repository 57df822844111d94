"""The store on PostgreSQL: a real server the suite starts itself (``postgres_server``).

Everything lives in PostgreSQL: metadata, the vectors (searched by pgvector's HNSW) and the chunks'
words (searched by its full-text search); the home holds no index file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from indexer.folders import index_folders
from searchapp.errors import WriterBusyError
from searchapp.feedback import feedback_for, record_feedback
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.migrations import HEAD, current
from searchapp.store.schema import Chunk, Document
from tests.conftest import DATA


def _home(tmp_path: Path, url: str) -> Settings:
    return dataclasses.replace(Settings.load(tmp_path / "home"), database_url=url)


def test_index_and_search_every_mode_on_postgres(
    tmp_path: Path, postgres_url: str, sample_queries: list[dict[str, str]]
) -> None:
    settings = _home(tmp_path, postgres_url)
    summary = index_folders(settings, [DATA])
    assert not summary.failed and summary.added == 30
    db = Database(settings.database_url)
    assert db.engine.dialect.name == "postgresql"
    with db.engine.connect() as conn:
        assert current(conn) == HEAD

    searcher = Searcher(settings, db)
    for mode in ("dense", "keyword", "hybrid"):
        found = 0
        for item in sample_queries:
            results = searcher.search(item["query"], k=5, mode=mode)
            found += any(r.path.endswith(item["expected"]) for r in results)
        assert found >= 0.8 * len(sample_queries), (mode, found)

    assert not list(settings.index_dir.glob("*.faiss"))  # the vectors are in PostgreSQL
    with db.engine.connect() as conn:
        # At 101 rows scanning and sorting is cheaper, and PostgreSQL takes it once autovacuum
        # has analysed the table; what is checked is that the query matches the generation's
        # index, which gives the order without a sort (the planner's choice by cost at a real
        # size).
        conn.execute(text("ANALYZE embeddings"))  # as autovacuum may have, or not: always
        conn.execute(text("SET enable_seqscan = off"))
        conn.execute(text("SET enable_sort = off"))
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN SELECT chunk_id FROM embeddings WHERE generation_id = 1 "
                    "ORDER BY vector::vector(384) <=> CAST(:q AS vector) LIMIT 5"
                ),
                {"q": "[" + ",".join(["0.05"] * 384) + "]"},
            ).scalars()
        )
    assert "ix_embeddings_hnsw_1" in plan  # searched by the generation's HNSW index

    # User text is never query syntax, in PostgreSQL's full-text search either.
    for hostile in ("it's (bees) & !mites", "'\\\\ :* <->", "what is it", "¿qué?"):
        searcher.search(hostile, mode="keyword")


def test_the_chunks_words_follow_the_chunks(tmp_path: Path, postgres_url: str) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(DATA / "docs" / "bees", folder / "bees")
    settings = _home(tmp_path, postgres_url)
    index_folders(settings, [folder])
    searcher = Searcher(settings)
    assert "Varroa" in searcher.search("varroa", k=1, mode="keyword")[0].title

    (folder / "bees" / "varroa-mites.md").unlink()
    index_folders(settings, [folder])
    assert all("Varroa" not in r.title for r in searcher.search("varroa", mode="keyword"))
    db = Database(settings.database_url)
    with db.read() as session:
        chunks = session.scalar(select(func.count()).select_from(Chunk))
        words = session.scalar(text("SELECT count(*) FROM chunk_terms"))
    assert chunks == words > 0


def test_a_reader_cannot_write_on_postgres(postgres_url: str) -> None:
    from sqlalchemy.exc import DBAPIError

    db = Database(postgres_url)
    with pytest.raises(DBAPIError, match="read-only transaction"), db.read() as session:
        session.execute(text("UPDATE store_state SET revision = revision + 1"))
    with db.write() as session:
        db.bump_revision(session)
    with db.read() as session:
        assert db.revision(session) == 1


def test_an_unreachable_database_is_a_clear_refusal(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    unreachable = "postgresql+psycopg://someone:secret@127.0.0.1:1/searchapp"
    run = cli("--home", tmp_path, "--database-url", unreachable, "search", "bees")
    assert run.code == 2
    assert "Cannot open the database postgresql+psycopg://someone:***@127.0.0.1:1" in run.err
    assert "secret" not in run.err and "Traceback" not in run.err


def test_check_and_repair_on_postgres(cli, tmp_path: Path, postgres_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEARCHAPP_DATABASE_URL", postgres_url)
    folder = tmp_path / "docs"
    shutil.copytree(DATA / "docs" / "coffee", folder / "coffee")
    assert cli("--home", tmp_path / "home", "index", folder, "--quiet").code == 0
    run = cli("--home", tmp_path / "home", "check")
    assert run.code == 0, run.out
    assert "vectors searched in PostgreSQL" in run.out
    db = Database(postgres_url)
    with db.write() as session:  # the keyword index loses rows
        session.execute(text("DELETE FROM chunk_terms WHERE chunk_id IN (1, 2)"))
    assert cli("--home", tmp_path / "home", "check").code == 1
    repaired = cli("--home", tmp_path / "home", "check", "--repair")
    assert repaired.code == 0 and "keyword index rebuilt" in repaired.out
    assert cli("--home", tmp_path / "home", "check").code == 0


HOLD_THE_LOCK = """
import sys, time
from searchapp.store.database import Database
with Database(sys.argv[1]).writer_lock():
    print("locked", flush=True)
    time.sleep(120)
"""


def test_writers_on_any_machine_take_turns_and_a_killed_one_lets_go(postgres_url: str) -> None:
    one, two = Database(postgres_url), Database(postgres_url)  # two connections: two machines
    with one.writer_lock():
        with one.writer_lock():  # re-entrant within one process
            pass
        with (
            pytest.raises(WriterBusyError, match="writing to this database"),
            two.writer_lock(timeout=0.5),
        ):
            pass
    with two.writer_lock():
        pass

    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, postgres_url],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(WriterBusyError), one.writer_lock():
            pass
        holder.send_signal(signal.SIGKILL)  # a writer killed mid-run
        holder.wait(timeout=30)
        started = time.monotonic()
        with one.writer_lock(timeout=30):  # the server let its lock go with its connection
            assert time.monotonic() - started < 30
    finally:
        holder.kill()


def test_train_and_promote_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    from indexer.training.options import PairSources, TrainingOptions
    from indexer.training.retrain import retrain

    settings = _home(tmp_path, postgres_url)
    index_folders(settings, [DATA])
    searcher = Searcher(settings)  # a reader that stays up through the promotion
    query = "keeping bees through winter"
    before = [(r.doc_id, round(r.score, 4)) for r in searcher.search(query, mode="dense")]
    options = TrainingOptions(epochs=1, batch_size=8, held_out=0.25, force=True)
    report = retrain(settings, PairSources(files=(DATA / "pairs.jsonl",)), options)
    assert report.promoted
    db = Database(settings.database_url)
    with db.read() as session:
        served = session.execute(
            text("SELECT id FROM index_generations WHERE status = 'active'")
        ).scalar()
        indexes = set(session.execute(text("SELECT indexname FROM pg_indexes")).scalars())
    assert served != 1 and f"ix_embeddings_hnsw_{served}" in indexes
    after = [(r.doc_id, round(r.score, 4)) for r in searcher.search(query, mode="dense")]
    assert searcher.generation_id == served  # the running reader follows the promotion
    assert after and after != before  # now answered by the new model's vectors


def test_migrate_copies_a_sqlite_home_into_postgres_without_re_encoding(
    cli,
    sample_home: Settings,
    tmp_path: Path,
    postgres_url: str,  # type: ignore[no-untyped-def]
) -> None:
    home = tmp_path / "home"
    shutil.copytree(sample_home.home, home)
    sqlite = Settings.load(home)
    searcher = Searcher(sqlite)
    doc_id = searcher.search("varroa", k=1)[0].doc_id
    record_feedback(searcher.db, "varroa", doc_id, True)
    queries = ["how to get rid of varroa mites", "espresso tastes sour", "sprained ankle"]
    dense = [[(r.doc_id, round(r.score, 4)) for r in searcher.search(q, mode="dense")]
             for q in queries]  # fmt: skip

    run = cli("--home", home, "migrate", "--to", postgres_url, "--json", "--quiet")
    assert run.code == 0, run.err
    rows = json.loads(run.out)["rows"]
    assert rows["documents"] == 30 and rows["embeddings"] == rows["chunks"] > 30
    assert rows["feedback"] == 1

    moved = dataclasses.replace(sqlite, database_url=postgres_url)
    on_postgres = Searcher(moved)
    assert [[(r.doc_id, round(r.score, 4)) for r in on_postgres.search(q, mode="dense")]
            for q in queries] == dense  # the same vectors, not encoded again  # fmt: skip
    for mode in ("keyword", "hybrid"):
        assert "Varroa" in on_postgres.search(queries[0], k=1, mode=mode)[0].title
    # Both stores make the chunks' words alike: PostgreSQL ranks as FTS5 ranks, score for score.
    words = [*queries, "what is it", "Ménière's disease", "mites mite MITES", "it's (bees) & !x"]
    with searcher.db.read() as sqlite_session, on_postgres.db.read() as pg_session:
        for query in words:
            fts5 = _ranked(searcher.keywords.exact.search(sqlite_session, query, 20))
            postgres = _ranked(on_postgres.keywords.search(pg_session, query, 20))
            assert postgres == fts5, query
            assert fts5 or query == "Ménière's disease"
    assert feedback_for(on_postgres.db, "varroa") == {doc_id: True}
    assert cli("--home", home, "--database-url", postgres_url, "check").code == 0
    # A new document gets an id after the copied ones; a second copy is refused.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "note.md").write_text("# Wax moths\\nWax moths eat comb in weak hives.\\n")
    assert index_folders(moved, [extra]).added == 1
    assert "Wax" in on_postgres.search("wax moths comb", k=1, mode="keyword")[0].title
    again = cli("--home", home, "migrate", "--to", postgres_url)
    assert again.code == 2 and "already holds documents" in again.err


def _ranked(found: list[tuple[int, float]]) -> list[tuple[float, int]]:
    """(score, chunk) best first, scores to 6 places, so that ties order alike."""
    return sorted(((round(score, 6), chunk) for chunk, score in found), key=lambda r: (-r[0], r[1]))


def test_a_postgres_store_of_the_last_release_gets_the_words_fts5_makes(postgres_url: str) -> None:
    """Revision 0008 replaces the postings ``to_tsvector('english')`` made by trigger."""
    from alembic import command
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from searchapp.store.keywords.analyzer import chunk_words
    from searchapp.store.migrations import _config
    from searchapp.store.schema import Source

    text_ = "What is it that the mites were doing?"

    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0007")
        with Session(bind=conn) as session:  # the last release's writer: the trigger adds words
            session.add(Source(id=1, kind="folder", location="/notes"))
            session.flush()
            session.add(Document(id=1, source_id=1, uri="file:///notes/a.md", title="Bees",
                                 content_hash="x"))  # fmt: skip
            session.flush()
            session.add(Chunk(id=1, document_id=1, ordinal=0, start=0, end=37, text=text_))
            session.flush()
        before = conn.execute(text("SELECT count(*) FROM chunk_postings")).scalar()
    engine.dispose()
    assert before == 2  # "bee", "mite": Snowball's stems, all else English stopwords
    db = Database(postgres_url)  # opening migrates
    with db.read() as session:
        postings = dict(
            session.execute(text("SELECT lexeme, tf FROM chunk_postings WHERE chunk_id = 1")).all()
        )
        tokens = session.scalar(text("SELECT tokens FROM chunk_terms WHERE chunk_id = 1"))
    expected = chunk_words("Bees", text_)
    assert postings == {word: expected.count(word) for word in expected}
    assert tokens == len(expected) == 9  # stopwords too, as FTS5 counts a length


def test_two_indexers_side_by_side_and_one_killed(tmp_path: Path, postgres_url: str) -> None:
    folders = {name: tmp_path / name for name in ("one", "two")}
    for topic in ("bees", "coffee", "astronomy"):
        shutil.copytree(DATA / "docs" / topic, folders["one"] / topic)
    for topic in ("sourdough", "firstaid"):
        shutil.copytree(DATA / "docs" / topic, folders["two"] / topic)
    env = dict(os.environ, SEARCHAPP_DATABASE_URL=postgres_url)

    def index(name: str, crash_at: str | None = None) -> subprocess.Popen:
        command = [sys.executable, "-m", "searchapp.cli", "--home", str(tmp_path / "home"),
                   "index", str(folders[name]), "--quiet"]  # fmt: skip
        extra = {"SEARCHAPP_CRASH_AT": crash_at} if crash_at else {}
        return subprocess.Popen(command, env=env | extra, stderr=subprocess.PIPE, text=True)

    # Side by side: one is killed (SIGKILL) with its chunks inserted but not committed.
    killed, other = index("one", crash_at="chunk-insert"), index("two")
    assert killed.wait(timeout=600) == -signal.SIGKILL, killed.stderr.read()  # type: ignore[union-attr]
    assert other.wait(timeout=600) == 0, other.stderr.read()  # type: ignore[union-attr]
    # Both again, side by side: the killed one's run is done over, the other has nothing to do.
    again = [index("one"), index("two")]
    for process in again:
        assert process.wait(timeout=600) == 0, process.stderr.read()  # type: ignore[union-attr]

    expected = sum(1 for folder in folders.values() for f in folder.rglob("*") if f.is_file())
    settings = _home(tmp_path, postgres_url)
    db = Database(postgres_url)
    with db.read() as session:
        documents = session.scalar(select(func.count()).select_from(Document))
        chunks = session.scalar(select(func.count()).select_from(Chunk))
        vectors = session.scalar(text("SELECT count(*) FROM embeddings"))
        versions = session.scalar(text("SELECT count(*) FROM model_versions"))
    assert documents == expected and vectors == chunks and versions == 1
    searcher = Searcher(settings, db)
    for query, title in (("varroa mites", "Varroa"), ("sourdough starter", "Sourdough")):
        assert title in searcher.search(query, k=1)[0].title
    check = subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(tmp_path / "home"), "check"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout


def test_jobs_and_the_api_on_postgres(cli, tmp_path: Path, postgres_url: str) -> None:  # type: ignore[no-untyped-def]
    from searchapp.jobs import get_job
    from tests.test_api import Server

    home = tmp_path / "home"
    started = cli("--home", home, "--database-url", postgres_url, "index", DATA, "--background")
    assert started.code == 0, started.err
    job_id = int(started.out.split()[1])
    db = Database(postgres_url)
    deadline = time.monotonic() + 600
    while (job := get_job(db, job_id)).active:
        assert time.monotonic() < deadline, "the index job did not end"
        time.sleep(0.5)
    assert job.state == "succeeded", job.error

    server = Server(home, database_url=postgres_url)
    try:
        status, answer = server.request("/search?q=how+to+get+rid+of+varroa+mites&k=3")
        assert status == 200 and "Varroa" in answer["results"][0]["title"]  # type: ignore[index]
        run = cli("--home", home, "--database-url", postgres_url, "search",
                  "how to get rid of varroa mites", "--k", "3", "--json")  # fmt: skip
        assert answer == json.loads(run.out)
        status, jobs = server.request("/jobs")
        assert status == 200 and jobs[0]["id"] == job_id  # type: ignore[index]
        status, health = server.request("/health")
        assert health["documents"] == 30  # type: ignore[index]
    finally:
        server.stop()
