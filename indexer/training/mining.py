"""Hard-negative mining from the current index, and the passage of each positive worth training on.

For each query the served generation ranks the documents (``mode``: dense, or hybrid, the
ranking users see), and documents at ranks ``first``..``last`` that are not
judged relevant become negatives, up to ``per_query`` of them. Likely unjudged positives are left
out: near-duplicates of a positive, and, when ``false_negative`` is set, any passage the model
already finds almost as close to the query as the best positive (that share of its similarity,
NV-Retriever's "TopK-PercPos"). The top ranks are skipped too. Dense mining without that filter
is the default: mining from the hybrid ranking with the filter (0.95) gained nothing on SciFact's
held-out queries and cost 0.013 test nDCG@10 (docs/benchmarks.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexer.training.pairs import Judgement
from searchapp.encoder import Encoder
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.search import Searcher

QUERY_BATCH = 64


@dataclass(frozen=True)
class MinedQuery:
    """A query's positive passages and its negatives, each with its relevance score."""

    query: str
    positives: list[tuple[str, float]]
    negatives: list[tuple[str, float]]


def mine(
    searcher: Searcher,
    judgements: Sequence[Judgement],
    *,
    per_query: int = 1,
    mode: str = "dense",
    first: int = 4,
    last: int = 30,
    near_duplicate: float = 0.95,
    false_negative: float = 0.0,
    progress: Progress = NO_PROGRESS,
) -> list[MinedQuery]:
    """Positives (their best-matching chunk) and negatives (given, then mined) per query."""
    positives: dict[str, list[Judgement]] = defaultdict(list)
    given_negatives: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for j in judgements:
        if j.relevant:
            positives[j.query].append(j)
        else:
            given_negatives[j.query].append((j.text, j.score))
    queries = sorted(positives)
    encoder = searcher.encoder
    mined: list[MinedQuery] = []
    batches = range(0, len(queries), QUERY_BATCH)
    for start in progress.track(batches, "mine negatives", total=len(batches), unit="batch"):
        batch = queries[start : start + QUERY_BATCH]
        vectors = encoder.encode(batch, role="query")  # as the search's query vectors
        rankings = searcher.search_many(batch, k=last, mode=mode)
        for query, vector, ranking in zip(batch, vectors, rankings, strict=True):
            relevant = {j.doc_id for j in positives[query] if j.doc_id is not None}
            passages = [_best_passage(searcher, encoder, vector, j) for j in positives[query]]
            positive_texts = [text for text, _ in passages]
            positive_vectors = np.stack([v for _, v in passages])
            ceiling = (
                false_negative * float(np.max(positive_vectors @ vector))
                if false_negative
                else np.inf
            )
            negatives = list(given_negatives[query])
            candidates = searcher.chunk_vectors([r.chunk_id for r in ranking[first - 1 :]])
            for result in ranking[first - 1 :]:
                if len(negatives) >= per_query + len(given_negatives[query]):
                    break
                if result.doc_id in relevant:
                    continue
                candidate = candidates.get(result.chunk_id)
                if candidate is not None and (
                    np.max(positive_vectors @ candidate) >= near_duplicate
                    or float(candidate @ vector) >= ceiling
                ):
                    continue
                negatives.append((result.chunk_text, 0.0))
            scores = [j.score for j in positives[query]]
            scored = list(zip(positive_texts, scores, strict=True))
            mined.append(MinedQuery(query, scored, negatives))
    return mined


def _best_passage(
    searcher: Searcher, encoder: Encoder, query_vector: np.ndarray, judgement: Judgement
) -> tuple[str, np.ndarray]:
    """The chunk of an indexed positive closest to the query (text, stored vector); a
    plain-text positive as given."""
    if judgement.doc_id is not None:
        best = searcher.best_chunk(judgement.doc_id, query_vector)
        if best is not None:
            return best
    return judgement.text, encoder.encode([judgement.text])[0]
