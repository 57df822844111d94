"""Query latency with the model loaded: p50/p95/p99 per mode over a BEIR split's queries.

Each query goes through ``Searcher.search`` on its own, as a user's query does, after a warm-up.

    python bench/latency.py --home HOME_WITH_SCIFACT [--beir ../shared/datasets/scifact]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

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
    print(json.dumps({"queries": len(texts), "k": args.k, **report}, indent=2))


if __name__ == "__main__":
    main()
