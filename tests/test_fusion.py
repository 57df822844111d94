"""Hybrid search's two fusions of the dense and keyword rankings, on rankings made by hand."""

from __future__ import annotations

import pytest

from searchapp.search import reciprocal_rank_fusion, score_blend

# (document id, chunk id, score), best first
DENSE = [(1, 11, 0.80), (2, 21, 0.60), (3, 31, 0.40)]  # cosine similarities
KEYWORD = [(3, 32, 12.0), (4, 41, 2.0)]  # BM25 on another scale


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    dense = [(1, 11, 0.9), (2, 21, 0.8), (3, 31, 0.7)]
    keyword = [(2, 22, 9.0), (4, 41, 8.0)]
    fused = reciprocal_rank_fusion([dense, keyword], k=5)
    assert [doc for doc, _, _ in fused] == [2, 1, 4, 3]
    assert fused[0][2] == pytest.approx(1 / 7 + 1 / 6)
    assert fused[0][1] == 22  # the chunk from the ranking where the document ranked best


def test_score_blend_normalises_each_ranking_before_mixing() -> None:
    fused = score_blend(DENSE, KEYWORD, dense_weight=0.5)
    scores = {doc: score for doc, _, score in fused}
    assert scores == pytest.approx({1: 0.5, 2: 0.25, 3: 0.5, 4: 0.0})
    assert dict((doc, chunk) for doc, chunk, _ in fused)[3] == 32  # the keyword chunk ranked it top


def test_score_blend_weight_moves_the_ranking_towards_one_side() -> None:
    dense_heavy = [doc for doc, _, _ in score_blend(DENSE, KEYWORD, dense_weight=0.9)]
    keyword_heavy = [doc for doc, _, _ in score_blend(DENSE, KEYWORD, dense_weight=0.1)]
    assert dense_heavy[0] == 1 and keyword_heavy[0] == 3


def test_fusing_with_an_empty_ranking_keeps_the_other_ranking_order() -> None:
    for fused in (score_blend(DENSE, []), reciprocal_rank_fusion([DENSE, []])):
        assert [doc for doc, _, _ in fused] == [1, 2, 3]
    assert score_blend([], []) == [] and reciprocal_rank_fusion([[], []]) == []
    # A ranking whose scores are all equal does not divide by zero.
    assert [s for _, _, s in score_blend([(5, 51, 0.3), (6, 61, 0.3)], [])] == [0.5, 0.5]
