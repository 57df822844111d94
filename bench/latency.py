"""Query latency with the model loaded: p50/p95/p99 per mode over a BEIR split's queries.

Each query goes through ``Searcher.search`` on its own, as a user's query does, after a warm-up.
The breakdown times each part of the query path per mode (median ms per query): the query encode,
the vector search, the keyword index (Tantivy, or FTS5), the SQL that reads the candidate chunks
(their documents, and their text when one ranking is shown), and the results and their snippets.

    python bench/latency.py --home HOME_WITH_SCIFACT [--beir ../shared/datasets/scifact]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import searchapp.search as search_module
from searchapp.beir import read_qrels, read_queries
from searchapp.choices import SEARCH_MODE
from searchapp.search import Searcher
from searchapp.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    queries = read_queries(args.beir)
    texts = [queries[q] for q in sorted(read_qrels(args.beir, args.split))]
    searcher = Searcher(Settings.load(args.home))
    for text in texts[:20]:
        searcher.search(text, k=args.k, mode="hybrid")  # warm-up: model, index, SQLite pages
    report = {}
    for mode in SEARCH_MODE.values:
        times = []
        for text in texts:
            started = time.perf_counter()
            searcher.search(text, k=args.k, mode=mode)
            times.append((time.perf_counter() - started) * 1000)
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        report[mode] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "p99_ms": round(p99, 1)}
    breakdown = {mode: profile(searcher, texts, mode, args.k) for mode in SEARCH_MODE.values}
    print(json.dumps({"queries": len(texts), "k": args.k, **report, "breakdown_p50_ms": breakdown},
                     indent=2))  # fmt: skip


class _Timed:
    """Wraps a callable and adds its time to ``spent[part]``."""

    def __init__(self, spent: dict[str, float], part: str, inner) -> None:  # type: ignore[no-untyped-def]
        self.spent, self.part, self.inner = spent, part, inner

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.spent[self.part] += (time.perf_counter() - started) * 1000


def profile(searcher: Searcher, texts: list[str], mode: str, k: int) -> dict[str, float]:
    """Median milliseconds per query spent in each part of the query path."""
    encoder, index = searcher.encoder, searcher.vector_index
    assert index is not None
    parts = ("encode", "vector search", "keywords", "chunk rows", "results and snippets")
    per_query: dict[str, list[float]] = {part: [] for part in (*parts, "other", "total")}
    spent: dict[str, float] = dict.fromkeys(parts, 0.0)
    patches = [
        (encoder, "encode", "encode"),
        (index, "search", "vector search"),
        (searcher.keywords, "search", "keywords"),
        (search_module, "chunk_rows", "chunk rows"),
        (searcher, "_results", "results and snippets"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, part in patches:
        setattr(owner, name, _Timed(spent, part, getattr(owner, name)))
    try:
        for text in texts:
            spent.update(dict.fromkeys(parts, 0.0))
            started = time.perf_counter()
            searcher.search(text, k=k, mode=mode)
            total = (time.perf_counter() - started) * 1000
            for part in parts:
                per_query[part].append(spent[part])
            per_query["total"].append(total)
            per_query["other"].append(total - sum(spent[part] for part in parts))
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
        del searcher._results  # the class's method again
    return {part: round(float(np.median(values)), 2) for part, values in per_query.items()}


if __name__ == "__main__":
    main()
