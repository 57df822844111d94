"""Retrieval metrics (nDCG@10, Recall@100, MRR@10) and evaluation of a home on a BEIR split.

The metrics follow trec_eval as BEIR uses it: nDCG with linear gains (the graded relevance itself)
and log2 discounts; queries without any relevant document are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from searchapp.beir import read_qrels, read_queries
from searchapp.choices import FUSION, SEARCH_MODE
from searchapp.errors import BeirFormatError, InvalidOptionError
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.search import Searcher

QUERY_BATCH = 64


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    gains = [relevance.get(doc, 0) for doc in ranked[:k]]
    dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains) if gain > 0)
    ideal = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 100) -> float:
    relevant = {doc for doc, r in relevance.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if relevance.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


@dataclass(frozen=True)
class Metrics:
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int
    # nDCG@10 of each judged query: what a paired comparison of two models needs.
    per_query: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, float]:
        return {
            "ndcg@10": round(self.ndcg_at_10, 6),
            "recall@100": round(self.recall_at_100, 6),
            "mrr@10": round(self.mrr_at_10, 6),
        }


def score_rankings(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> Metrics:
    """Mean metrics over the judged queries that have at least one relevant document."""
    judged = [q for q, rel in qrels.items() if any(r > 0 for r in rel.values())]
    if not judged:
        raise InvalidOptionError("No query has a relevant document: nothing to evaluate.")
    n = len(judged)
    ndcg = {q: ndcg_at_k(rankings.get(q, []), qrels[q]) for q in judged}
    return Metrics(
        ndcg_at_10=sum(ndcg.values()) / n,
        recall_at_100=sum(recall_at_k(rankings.get(q, []), qrels[q]) for q in judged) / n,
        mrr_at_10=sum(mrr_at_k(rankings.get(q, []), qrels[q]) for q in judged) / n,
        queries=n,
        per_query=ndcg,
    )


def evaluate_beir(
    searcher: Searcher,
    folder: Path,
    split: str = "test",
    modes: Sequence[str] = SEARCH_MODE.values,
    *,
    fusion: str = FUSION.default,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Metrics]:
    """Run the split's queries through ``searcher`` (the code a user's query takes) and score them.

    Documents are matched to the judgements by their BEIR id (the ``path`` of an imported record).
    """
    qrels = read_qrels(folder, split)
    queries = read_queries(folder)
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise BeirFormatError(
            f"{len(missing)} judged queries of split {split!r} are not in queries.jsonl "
            f"(first: {missing[0]})."
        )
    ids = sorted(qrels)
    results: dict[str, Metrics] = {}
    for mode in modes:
        rankings: dict[str, list[str]] = {}
        batches = range(0, len(ids), QUERY_BATCH)
        for start in progress.track(batches, f"eval {mode}", total=len(batches), unit="batch"):
            batch = ids[start : start + QUERY_BATCH]
            answers = searcher.search_many(
                [queries[q] for q in batch], k=100, mode=mode, fusion=fusion
            )
            for query_id, answer in zip(batch, answers, strict=True):
                rankings[query_id] = [result.path for result in answer]
        results[mode] = score_rankings(rankings, qrels)
    return results
