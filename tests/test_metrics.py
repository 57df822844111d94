"""The retrieval metrics agree with sentence-transformers' evaluator and with worked examples."""

from __future__ import annotations

import math
import random

import pytest
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from searchapp.evaluation import mrr_at_k, ndcg_at_k, recall_at_k, score_rankings


def test_graded_ndcg_matches_a_hand_worked_example() -> None:
    # Ranking d3 (grade 2), d9 (not judged), d1 (grade 1); ideal order is d3, d1, d2 (grade 1).
    relevance = {"d1": 1, "d2": 1, "d3": 2}
    dcg = 2 / math.log2(2) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(["d3", "d9", "d1"], relevance) == pytest.approx(dcg / idcg, abs=1e-12)
    assert mrr_at_k(["d9", "d3"], relevance) == 0.5
    assert recall_at_k(["d3", "d9", "d1"], relevance) == pytest.approx(2 / 3)


def test_relevant_document_past_the_cut_scores_nothing() -> None:
    ranked = [f"x{i}" for i in range(10)] + ["hit"]
    assert ndcg_at_k(ranked, {"hit": 1}) == 0.0
    assert mrr_at_k(ranked, {"hit": 1}) == 0.0
    assert recall_at_k(ranked, {"hit": 1}, k=100) == 1.0


def test_metrics_agree_with_sentence_transformers_evaluator() -> None:
    rng = random.Random(7)
    corpus = {f"d{i}": f"document {i}" for i in range(300)}
    queries = {f"q{i}": f"query {i}" for i in range(40)}
    qrels = {q: {d: 1 for d in rng.sample(sorted(corpus), rng.randint(1, 5))} for q in queries}
    rankings = {q: rng.sample(sorted(corpus), 150) for q in queries}
    for q in list(queries)[:10]:  # make some queries easy so the metrics are not all near zero
        rankings[q] = sorted(qrels[q]) + [d for d in rankings[q] if d not in qrels[q]]

    evaluator = InformationRetrievalEvaluator(
        queries, corpus, {q: set(docs) for q, docs in qrels.items()},
        mrr_at_k=[10], ndcg_at_k=[10], precision_recall_at_k=[100], accuracy_at_k=[10],
        map_at_k=[10], show_progress_bar=False,
    )  # fmt: skip
    results = [
        [{"corpus_id": d, "score": 1.0 - rank / 1000} for rank, d in enumerate(rankings[q])]
        for q in evaluator.queries_ids
    ]
    reference = evaluator.compute_metrics(results)
    ours = score_rankings(rankings, qrels)
    assert ours.queries == 40
    assert ours.ndcg_at_10 == pytest.approx(reference["ndcg@k"][10], abs=1e-6)
    assert ours.mrr_at_10 == pytest.approx(reference["mrr@k"][10], abs=1e-6)
    assert ours.recall_at_100 == pytest.approx(reference["recall@k"][100], abs=1e-6)
    assert 0.1 < ours.ndcg_at_10 < 0.9


def test_evaluation_without_any_relevant_document_is_refused() -> None:
    with pytest.raises(ValueError, match="No query has a relevant document"):
        score_rankings({"q": ["d"]}, {"q": {"d": 0}})
