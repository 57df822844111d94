"""Searching the sample corpus: dense, keyword and hybrid, from Python and from the command line."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from searchapp.search import Searcher, reciprocal_rank_fusion, score_blend
from searchapp.settings import Settings

HOSTILE_QUERIES = [
    '"unbalanced quote',
    "bees AND honey",
    "NEAR(bees honey)",
    "hive*",
    "(((",
    "col:umn",
    "-bees +honey ^ ~",
    "🐝 honey 🍯",
    "' OR 1=1 --",
    "x" * 5000,
    "   ",
    "",
]


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_each_sample_query_finds_its_document_in_the_top_three(
    sample_searcher: Searcher, sample_queries: list[dict[str, str]], mode: str
) -> None:
    hits = 0
    for case in sample_queries:
        top = [Path(r.path).name for r in sample_searcher.search(case["query"], k=3, mode=mode)]
        hits += Path(case["expected"]).name in top
    # Keyword search is allowed one miss on these paraphrased questions; the others none.
    assert hits >= len(sample_queries) - (1 if mode == "keyword" else 0)


def test_results_are_documents_with_highlighted_snippets(sample_searcher: Searcher) -> None:
    results = sample_searcher.search("varroa mites", k=10, mode="hybrid")
    assert [r.rank for r in results] == list(range(1, len(results) + 1))
    assert len({r.doc_id for r in results}) == len(results)  # one entry per document
    assert all(a.score >= b.score for a, b in itertools.pairwise(results))
    top = results[0]
    assert Path(top.path).name == "varroa-mites.md"
    assert "**" in top.snippet and "varroa" in top.snippet.lower()
    assert top.title


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_odd_queries_never_raise(sample_searcher: Searcher, query: str, mode: str) -> None:
    results = sample_searcher.search(query, k=5, mode=mode)
    if not query.strip():
        assert results == []


def test_bad_mode_and_k_are_refused(sample_searcher: Searcher) -> None:
    with pytest.raises(ValueError, match="Unknown search mode 'fuzzy'"):
        sample_searcher.search("bees", mode="fuzzy")
    with pytest.raises(ValueError, match="k must be at least 1"):
        sample_searcher.search("bees", k=0)


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    dense = [(1, 11, 0.9), (2, 21, 0.8), (3, 31, 0.7)]
    keyword = [(2, 22, 9.0), (4, 41, 8.0)]
    fused = reciprocal_rank_fusion([dense, keyword], k=5)
    assert [doc for doc, _, _ in fused] == [2, 1, 4, 3]
    assert fused[0][2] == pytest.approx(1 / 7 + 1 / 6)
    assert fused[0][1] == 22  # the chunk from the ranking where the document ranked best


def _cli(home: Settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home.home), *args],
        input=stdin, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_cli_json_output_for_scripts(sample_home: Settings) -> None:
    run = _cli(sample_home, "search", "how to store coffee beans", "--k", "4", "--json")
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    assert payload["query"] == "how to store coffee beans" and payload["mode"] == "hybrid"
    assert len(payload["results"]) == 4
    first = payload["results"][0]
    assert set(first) == {"rank", "score", "doc_id", "path", "title", "snippet"}
    assert first["path"].endswith("storing-beans.txt") and Path(first["path"]).is_absolute()


def test_cli_reads_queries_from_stdin(sample_home: Settings) -> None:
    queries = "first aid for a burn\n\nhow to see Saturn's rings\n"
    run = _cli(sample_home, "search", "-", "--json", "--k", "2", "--mode", "dense", stdin=queries)
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [a["query"] for a in answers] == ["first aid for a burn", "how to see Saturn's rings"]
    assert answers[0]["results"][0]["path"].endswith("treating-burns.md")
    assert answers[1]["results"][0]["path"].endswith("observing-planets.md")


def test_cli_on_an_empty_home_says_what_to_do(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(tmp_path), "search", "bees"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "Nothing is indexed in this home yet" in run.stderr
    assert "Traceback" not in run.stderr


def test_help_is_instant_because_torch_is_not_imported() -> None:
    code = (
        "import sys, contextlib, io\n"
        "import searchapp.cli as cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'])\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'faiss') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_score_blend_normalises_each_ranking_before_mixing() -> None:
    dense = [(1, 11, 0.80), (2, 21, 0.60), (3, 31, 0.40)]  # cosine similarities
    keyword = [(3, 32, 12.0), (4, 41, 2.0)]  # BM25 on another scale
    fused = score_blend(dense, keyword, dense_weight=0.5)
    scores = {doc: score for doc, _, score in fused}
    assert scores == pytest.approx({1: 0.5, 2: 0.25, 3: 0.5, 4: 0.0})
    assert dict((doc, chunk) for doc, chunk, _ in fused)[3] == 32  # the keyword chunk ranked it top


@pytest.mark.parametrize("fusion", ["blend", "rrf"])
def test_hybrid_fusions_both_find_the_expected_documents(
    sample_searcher: Searcher, sample_queries: list[dict[str, str]], fusion: str
) -> None:
    for case in sample_queries:
        top = [Path(r.path).name for r in sample_searcher.search(case["query"], k=3, fusion=fusion)]
        assert Path(case["expected"]).name in top
