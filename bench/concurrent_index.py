"""Two indexers side by side into one PostgreSQL against one alone: chunks per second.

Writes two folders of SciFact documents (``--docs`` each, as text files), then, into a fresh
database each time: one ``searchapp index`` of the first folder alone; then both folders at once,
two processes started together. Every process is held to ``--threads`` threads (one core each,
so that the two have cores of their own on a machine with two). Prints one JSON object with the
chunks, the seconds and the chunks per second of each arm, and their ratio. The model is loaded
in each process (its few seconds count in both arms).

    python bench/concurrent_index.py \\
        --server-url 'postgresql+psycopg://postgres@/postgres?host=/tmp/pg' \\
        [--docs 400] [--threads 1] [--beir ../shared/datasets/scifact]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import text

from searchapp.beir import read_corpus
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


def index(folders: list[Path], url: str, home: Path, threads: int) -> tuple[float, int]:
    """Seconds for indexing ``folders`` side by side (one process each), and the chunks made."""
    env = dict(os.environ, SEARCHAPP_DATABASE_URL=url, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))  # fmt: skip
    started = time.perf_counter()
    command = [sys.executable, "-m", "searchapp.cli", "--home", str(home), "index"]
    processes = [subprocess.Popen([*command, str(f), "--quiet"], env=env) for f in folders]
    for process in processes:
        assert process.wait() == 0, "an index run failed"
    seconds = time.perf_counter() - started
    with Database(url).read() as session:
        chunks = session.execute(text("SELECT count(*) FROM chunks")).scalar() or 0
    return seconds, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", required=True, help="URL of the server's postgres db")
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--docs", type=int, default=400, help="documents per folder")
    parser.add_argument("--threads", type=int, default=1, help="threads per indexer")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="concurrent-index-"))
    documents = list(read_corpus(args.beir))[: 2 * args.docs]
    folders = [work / "one", work / "two"]
    for number, folder in enumerate(folders):
        folder.mkdir()
        for document in documents[number * args.docs : (number + 1) * args.docs]:
            (folder / f"{document.id}.txt").write_text(f"{document.title}\n\n{document.text}\n")

    one_seconds, one_chunks = index(folders[:1], fresh_database(args.server_url, "bench_one"),
                                    work / "home-one", args.threads)  # fmt: skip
    two_seconds, two_chunks = index(folders, fresh_database(args.server_url, "bench_two"),
                                    work / "home-two", args.threads)  # fmt: skip
    alone, together = one_chunks / one_seconds, two_chunks / two_seconds
    print(json.dumps({
        "docs_per_folder": args.docs, "threads_per_indexer": args.threads,
        "one": {"chunks": one_chunks, "seconds": round(one_seconds, 1),
                "chunks_per_second": round(alone, 1)},
        "two_side_by_side": {"chunks": two_chunks, "seconds": round(two_seconds, 1),
                             "chunks_per_second": round(together, 1)},
        "ratio": round(together / alone, 2),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
