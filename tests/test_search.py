"""Searching the sample corpus: dense, keyword and hybrid, from Python and from the command line."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from searchapp.errors import InvalidOptionError
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database

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
@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_odd_queries_get_a_well_formed_answer(
    sample_searcher: Searcher, query: str, mode: str
) -> None:
    results = sample_searcher.search(query, k=5, mode=mode)
    if not query.strip():
        assert results == []
    assert len(results) <= 5
    assert [r.rank for r in results] == list(range(1, len(results) + 1))
    assert len({r.doc_id for r in results}) == len(results)
    assert all(a.score >= b.score for a, b in itertools.pairwise(results))
    assert all(Path(r.path).is_file() and r.title and r.chunk_text for r in results)
    if mode != "keyword" and query.strip():
        assert len(results) == 5  # meaning always finds the nearest documents
    if "honey" in query and mode == "keyword":
        assert results and all("hone" in r.chunk_text.lower() for r in results)


def test_bad_mode_and_k_are_refused(sample_searcher: Searcher) -> None:
    with pytest.raises(InvalidOptionError, match="Unknown search mode 'fuzzy'"):
        sample_searcher.search("bees", mode="fuzzy")
    with pytest.raises(InvalidOptionError, match="Unknown fusion 'max'"):
        sample_searcher.search("bees", fusion="max")
    for k in (0, 1001):  # the cap the API, the UI and the command line share (MAX_RESULTS)
        with pytest.raises(InvalidOptionError, match=f"k must be between 1 and 1000, got {k}"):
            sample_searcher.search("bees", k=k)
    assert len(sample_searcher.search("bees", k=1000, mode="keyword")) >= 1


def test_cli_json_output_for_scripts(cli, sample_home: Settings) -> None:  # type: ignore[no-untyped-def]
    run = cli("--home", sample_home.home, "search", "how to store coffee beans", "--k", "4",
              "--json")  # fmt: skip
    assert run.code == 0, run.err
    payload = json.loads(run.out)
    assert payload["query"] == "how to store coffee beans" and payload["mode"] == "hybrid"
    assert len(payload["results"]) == 4
    first = payload["results"][0]
    assert set(first) == {"rank", "score", "doc_id", "path", "title", "snippet", "location",
                          "file_type", "author", "date", "metadata"}  # fmt: skip
    assert first["location"] == "" and first["file_type"] == "text"  # a text file has no pages
    assert first["path"].endswith("storing-beans.txt") and Path(first["path"]).is_absolute()


def test_cli_reads_queries_from_stdin(cli, sample_home: Settings) -> None:  # type: ignore[no-untyped-def]
    queries = "first aid for a burn\n\nhow to see Saturn's rings\n"
    run = cli("--home", sample_home.home, "search", "-", "--json", "--k", "2", "--mode", "dense",
              stdin=queries)  # fmt: skip
    assert run.code == 0, run.err
    answers = [json.loads(line) for line in run.out.splitlines()]
    assert [a["query"] for a in answers] == ["first aid for a burn", "how to see Saturn's rings"]
    assert answers[0]["results"][0]["path"].endswith("treating-burns.md")
    assert answers[1]["results"][0]["path"].endswith("observing-planets.md")


def test_cli_on_an_empty_home_says_what_to_do(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    Database(Settings.load(tmp_path).database_url)  # a home whose database holds nothing yet
    run = cli("--home", tmp_path, "search", "bees")
    assert run.code == 2
    assert "Nothing is indexed in this home yet" in run.err and "searchapp index" in run.err
    assert "Traceback" not in run.err


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


@pytest.mark.parametrize("fusion", ["blend", "rrf"])
def test_hybrid_fusions_both_find_the_expected_documents(
    sample_searcher: Searcher, sample_queries: list[dict[str, str]], fusion: str
) -> None:
    for case in sample_queries:
        top = [Path(r.path).name for r in sample_searcher.search(case["query"], k=3, fusion=fusion)]
        assert Path(case["expected"]).name in top
