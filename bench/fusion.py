"""Choosing how hybrid search fuses dense and keyword rankings, on a BEIR split.

Ranks each query once per mode (100 documents deep), then scores reciprocal rank fusion for several
constants k, and a convex blend of min-max normalised scores, on the train and test splits.

    python bench/fusion.py --home HOME_WITH_SCIFACT [--beir ../shared/datasets/scifact]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from searchapp.beir import read_qrels, read_queries
from searchapp.evaluation import score_rankings
from searchapp.search import Searcher, SearchResult, reciprocal_rank_fusion
from searchapp.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def _normalised(results: list[SearchResult]) -> dict[str, float]:
    if not results:
        return {}
    scores = [r.score for r in results]
    low, high = min(scores), max(scores)
    return {r.path: (r.score - low) / (high - low) if high > low else 1.0 for r in results}


def _blend(dense: list[SearchResult], keyword: list[SearchResult], weight: float) -> list[str]:
    """Documents by weight x normalised dense score + (1 - weight) x normalised BM25 score."""
    nd, nw = _normalised(dense), _normalised(keyword)
    combined = {p: weight * nd.get(p, 0.0) + (1 - weight) * nw.get(p, 0.0) for p in {*nd, *nw}}
    return sorted(combined, key=combined.__getitem__, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--splits", nargs="+", default=["train", "test"])
    args = parser.parse_args()

    queries = read_queries(args.beir)
    searcher = Searcher(Settings.load(args.home))
    for split in args.splits:
        qrels = read_qrels(args.beir, split)
        ids = sorted(qrels)
        texts = [queries[q] for q in ids]
        dense = searcher.search_many(texts, k=100, mode="dense")
        keyword = searcher.search_many(texts, k=100, mode="keyword")

        def ndcg(rankings: list[list[str]], qrels: dict = qrels, ids: list = ids) -> float:
            return score_rankings(dict(zip(ids, rankings, strict=True)), qrels).ndcg_at_10

        print(f"{split}: dense {ndcg([[r.path for r in a] for a in dense]):.4f}, "
              f"keyword {ndcg([[r.path for r in a] for a in keyword]):.4f}")  # fmt: skip
        for k in (1, 3, 5, 10, 20, 60):
            fused = [
                reciprocal_rank_fusion(
                    [[(r.path, 0, r.score) for r in d], [(r.path, 0, r.score) for r in w]], k=k
                )
                for d, w in zip(dense, keyword, strict=True)
            ]
            print(f"{split}: RRF k={k:<3} {ndcg([[p for p, _, _ in f] for f in fused]):.4f}")
        for weight in (0.3, 0.4, 0.5, 0.6, 0.7):
            blended = [_blend(d, w, weight) for d, w in zip(dense, keyword, strict=True)]
            print(f"{split}: blend dense weight {weight} {ndcg(blended):.4f}")


if __name__ == "__main__":
    main()
