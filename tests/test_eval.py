"""`searchapp index --beir` and `searchapp eval` on a slice of SciFact, through the command line."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SCIFACT

SLICE_QUERIES = 40
SLICE_DISTRACTORS = 300


@pytest.fixture(scope="module")
def scifact_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR folder: 40 test queries, their judged documents, and 300 other documents."""
    if not SCIFACT.is_dir():
        pytest.fail(f"SciFact is expected at {SCIFACT} (the shared datasets folder)")
    folder = tmp_path_factory.mktemp("scifact-slice")
    lines = (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]
    qrels: dict[str, list[str]] = {}
    for line in lines:
        query_id, doc_id, _ = line.split("\t")
        qrels.setdefault(query_id, []).append(doc_id)
    chosen = sorted(qrels)[:SLICE_QUERIES]
    judged = {doc for q in chosen for doc in qrels[q]}
    corpus = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").open()]
    others = [r for r in corpus if r["_id"] not in judged]
    keep = [r for r in corpus if r["_id"] in judged]
    keep += random.Random(0).sample(others, SLICE_DISTRACTORS)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep))
    queries = [json.loads(line) for line in (SCIFACT / "queries.jsonl").open()]
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in queries if q["_id"] in chosen)
    )
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q in chosen for d in qrels[q])
    )
    return folder


def _searchapp(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home), *args],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def test_index_beir_then_eval_reports_every_mode(scifact_slice: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run = _searchapp(home, "index", "--beir", str(scifact_slice), "--json", "--quiet")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["added"] == len((scifact_slice / "corpus.jsonl").read_text().splitlines())

    run = _searchapp(home, "eval", str(scifact_slice), "--split", "test", "--json", "--quiet")
    assert run.returncode == 0, run.stderr
    metrics = json.loads(run.stdout)
    assert set(metrics) == {"dense", "keyword", "hybrid"}
    for mode in metrics.values():
        assert set(mode) == {"ndcg@10", "recall@100", "mrr@10"}
    # On a small corpus these models find most judged abstracts; a broken path scores near 0.
    assert metrics["dense"]["ndcg@10"] > 0.6
    assert metrics["keyword"]["ndcg@10"] > 0.6
    assert metrics["hybrid"]["ndcg@10"] >= max(m["ndcg@10"] for m in metrics.values()) - 0.05
    assert metrics["hybrid"]["recall@100"] > 0.9

    # Search results name BEIR documents by their id.
    run = _searchapp(home, "search", "cancer", "--json", "--k", "3")
    assert all(r["path"].isdigit() for r in json.loads(run.stdout)["results"])

    # Importing the same corpus again encodes nothing.
    run = _searchapp(home, "index", "--beir", str(scifact_slice), "--json", "--quiet")
    again = json.loads(run.stdout)
    assert (again["added"], again["unchanged"], again["chunks"]) == (0, summary["added"], 0)


def test_eval_of_a_missing_split_names_the_available_ones(
    scifact_slice: Path, tmp_path: Path
) -> None:
    run = _searchapp(tmp_path, "eval", str(scifact_slice), "--split", "dev")
    assert run.returncode == 2
    assert "No judgements for split 'dev'" in run.stderr and "available splits: test" in run.stderr
