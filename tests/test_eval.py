"""`searchapp index --beir` and `searchapp eval` on a slice of SciFact, through the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from searchapp.beir import read_qrels
from searchapp.settings import Settings
from tests.conftest import REPO

# 40 SciFact test queries, their judged abstracts and 300 others, and the 87 train queries whose
# abstracts are among them; see its README.md.
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


def test_the_gate_serves_a_training_that_helps_and_refuses_one_that_does_not(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    """Decided on merit, never forced: trained on the slice's 87 train queries and gated on its
    40 test queries (an evaluation set no training query is in), the candidate is served; trained
    on the same queries each paired with another query's abstract, it is not. The report and the
    versions list name the evaluation set that decided."""
    untrained = tmp_path / "untrained"
    assert cli("--home", untrained, "index", "--beir", SCIFACT_SLICE, "--quiet").code == 0
    gate = ("--gate", "by-document", "--eval-beir", SCIFACT_SLICE, "--eval-split", "test",
            "--epochs", "2", "--json", "--quiet")  # fmt: skip
    corpus = {json.loads(line)["_id"]: json.loads(line) for line in
              (SCIFACT_SLICE / "corpus.jsonl").read_text().splitlines()}  # fmt: skip
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in
               (SCIFACT_SLICE / "queries.jsonl").read_text().splitlines()}  # fmt: skip
    judged = [(queries[q], corpus[doc]) for q, docs in read_qrels(SCIFACT_SLICE, "train").items()
              for doc in docs]  # fmt: skip
    assert len({query for query, _ in judged}) == 87

    for outcome in ("served", "refused"):
        home = tmp_path / outcome
        shutil.copytree(untrained, home)
        before = json.loads(cli("--home", home, "models", "list", "--json").out)
        if outcome == "served":
            run = cli("--home", home, "train", "--beir", SCIFACT_SLICE, "--split", "train", *gate)
        else:  # every positive is another query's abstract
            shuffled = tmp_path / "shuffled.jsonl"
            shuffled.write_text("".join(
                json.dumps({"query": query, "positive": judged[(i + 7) % len(judged)][1]["text"]})
                + "\n" for i, (query, _) in enumerate(judged)
            ))  # fmt: skip
            run = cli("--home", home, "train", shuffled, *gate)
        assert run.code == 0, run.err
        report = json.loads(run.out)
        low = report["gate"]["interval"][0]  # of the gain
        served = [v["id"] for v in json.loads(cli("--home", home, "models", "list", "--json").out)
                  if v["status"] == "active"]  # fmt: skip
        if outcome == "served":
            assert report["promoted"] and low > 0, report["reason"]
            assert report["after"]["ndcg@10"] > report["before"]["ndcg@10"]
            assert served == [report["version"]]
            # Nothing was held out of the pairs: the evaluation set decided, and is named.
            assert report["held_out"]["queries"] == 0
            assert report["gate"]["queries"] == len(read_qrels(SCIFACT_SLICE, "test")) > 10
            assert (
                f"on {report['gate']['queries']} queries of the evaluation set"
                in (report["reason"])
            )
            listed = json.loads(cli("--home", home, "models", "list", "--json").out)
            version = next(v for v in listed if v["id"] == report["version"])
            assert version["decided_on"].endswith(
                f"queries of the evaluation set {SCIFACT_SLICE} (test split)"
            )
        else:
            assert not report["promoted"] and low <= 0, report["reason"]
            assert "not better with 95% confidence" in report["reason"]
            assert served == [v["id"] for v in before if v["status"] == "active"]
