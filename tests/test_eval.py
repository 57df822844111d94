"""`searchapp index --beir` and `searchapp eval` on a slice of SciFact, through the command line."""

from __future__ import annotations

import json
from pathlib import Path

from searchapp.beir import read_qrels
from searchapp.settings import Settings
from tests.conftest import REPO

# 40 SciFact test queries, their judged abstracts and 300 others; see its README.md.
SCIFACT_SLICE = REPO / "tests" / "data" / "scifact-slice"


def test_index_beir_then_eval_reports_every_mode(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = ("--home", tmp_path / "home")
    run = cli(*home, "index", "--beir", SCIFACT_SLICE, "--json", "--quiet")
    assert run.code == 0, run.err
    summary = json.loads(run.out)
    assert summary["added"] == len((SCIFACT_SLICE / "corpus.jsonl").read_text().splitlines())

    run = cli(*home, "eval", SCIFACT_SLICE, "--split", "test", "--json", "--quiet")
    assert run.code == 0, run.err
    metrics = json.loads(run.out)
    assert set(metrics) == {"dense", "keyword", "hybrid"}
    for mode in metrics.values():
        assert set(mode) == {"ndcg@10", "recall@100", "mrr@10"}
    # On a small corpus these models find most judged abstracts; a broken path scores near 0.
    assert metrics["dense"]["ndcg@10"] > 0.6
    assert metrics["keyword"]["ndcg@10"] > 0.6
    assert metrics["hybrid"]["ndcg@10"] >= max(m["ndcg@10"] for m in metrics.values()) - 0.05
    assert metrics["hybrid"]["recall@100"] > 0.9

    # Search results name BEIR documents by their id.
    run = cli(*home, "search", "cancer", "--json", "--k", "3")
    assert run.code == 0, run.err
    assert all(r["path"].isdigit() for r in json.loads(run.out)["results"])

    # Importing the same corpus again encodes nothing.
    run = cli(*home, "index", "--beir", SCIFACT_SLICE, "--json", "--quiet")
    assert run.code == 0, run.err
    again = json.loads(run.out)
    assert (again["added"], again["unchanged"], again["chunks"]) == (0, summary["added"], 0)


def test_eval_of_a_missing_split_names_the_available_ones(cli, sample_home: Settings) -> None:  # type: ignore[no-untyped-def]
    run = cli("--home", sample_home.home, "eval", SCIFACT_SLICE, "--split", "dev")
    assert run.code == 2
    assert "No judgements for split 'dev'" in run.err and "available splits: test" in run.err


def test_a_corpus_slice_written_reads_back_the_same(tmp_path: Path) -> None:
    import itertools

    from searchapp.beir import read_corpus, write_corpus

    first = list(itertools.islice(read_corpus(SCIFACT_SLICE), 5))
    assert write_corpus(tmp_path / "slice", iter(first)) == first
    assert list(read_corpus(tmp_path / "slice")) == first


def test_training_gated_on_an_evaluation_set_names_it(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = ("--home", tmp_path / "home")
    assert cli(*home, "index", "--beir", SCIFACT_SLICE, "--quiet").code == 0
    # Trained on the slice's pairs, gated on its judged queries as an evaluation set of its own:
    # nothing is held out of the pairs, and the report and the versions list say what decided.
    run = cli(*home, "train", "--beir", SCIFACT_SLICE, "--split", "test", "--eval-beir",
              SCIFACT_SLICE, "--eval-split", "test", "--gate", "by-document", "--epochs", "1",
              "--batch-size", "8", "--json", "--quiet")  # fmt: skip
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["held_out"]["queries"] == 0
    assert report["gate"]["queries"] == len(read_qrels(SCIFACT_SLICE, "test")) > 10
    assert f"on {report['gate']['queries']} queries of the evaluation set" in report["reason"]
    listed = cli(*home, "models", "list", "--json")
    version = next(v for v in json.loads(listed.out) if v["id"] == report["version"])
    assert version["decided_on"].endswith(
        f"queries of the evaluation set {SCIFACT_SLICE} (test split)"
    )
