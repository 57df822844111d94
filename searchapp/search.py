"""Search: dense (FAISS), keyword (FTS5 BM25) and hybrid (reciprocal rank fusion of the two).

Results are documents, each represented by its best-matching chunk. A ``Searcher`` keeps the model
and the vector index in memory and notices, on every search, when another process has changed the
store or switched the served generation.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from searchapp.encoder import Encoder
from searchapp.settings import Settings
from searchapp.snippets import make_snippet
from searchapp.store.database import Database
from searchapp.store.keyword import keyword_search
from searchapp.store.schema import Chunk, Document
from searchapp.store.vector_index import SyncReport, VectorIndex, open_index, reconcile
from searchapp.versions import load_encoder, require_active_generation, spec_of

SearchMode = Literal["dense", "keyword", "hybrid"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)
# Reciprocal rank fusion constant, chosen on SciFact's train split (docs/benchmarks.md): with two
# rankings, a small k lets the top of each ranking count; the classic 60 flattens them.
RRF_K = 5
# Documents have several chunks; fetch enough chunks to fill ``k`` distinct documents.
_CHUNKS_PER_DOCUMENT = 3
# Each ranking that hybrid search fuses is at least this deep.
_FUSION_DEPTH = 100


@dataclass(frozen=True)
class SearchResult:
    """One ranked document, shown through its best chunk."""

    rank: int
    score: float
    doc_id: int
    path: str
    title: str
    snippet: str
    chunk_id: int
    chunk_text: str

    def to_json(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "doc_id": self.doc_id,
            "path": self.path,
            "title": self.title,
            "snippet": self.snippet,
        }


def _check_mode(mode: str) -> None:
    if mode not in SEARCH_MODES:
        raise ValueError(f"Unknown search mode {mode!r}: choose one of {', '.join(SEARCH_MODES)}.")


def best_chunk_per_document(
    session: Session, ranked_chunks: Sequence[tuple[int, float]]
) -> list[tuple[int, int, float]]:
    """Collapse (chunk id, score) pairs, best first, into (document id, chunk id, score)."""
    if not ranked_chunks:
        return []
    ids = [chunk_id for chunk_id, _ in ranked_chunks]
    owner = dict(
        session.execute(select(Chunk.id, Chunk.document_id).where(Chunk.id.in_(ids))).all()
    )
    seen: set[int] = set()
    documents = []
    for chunk_id, score in ranked_chunks:
        document_id = owner.get(chunk_id)
        if document_id is None or document_id in seen:
            continue  # a chunk deleted since the vector index was refreshed, or a weaker chunk
        seen.add(document_id)
        documents.append((document_id, chunk_id, score))
    return documents


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[int, int, float]]], k: int = RRF_K
) -> list[tuple[int, int, float]]:
    """Fuse document rankings: score = sum of 1 / (k + rank); the chunk from the best ranking."""
    scores: dict[int, float] = {}
    chunk_of: dict[int, tuple[int, int]] = {}  # document -> (best rank seen, chunk id)
    for ranking in rankings:
        for rank, (document_id, chunk_id, _) in enumerate(ranking, start=1):
            scores[document_id] = scores.get(document_id, 0.0) + 1.0 / (k + rank)
            if document_id not in chunk_of or rank < chunk_of[document_id][0]:
                chunk_of[document_id] = (rank, chunk_id)
    fused = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    return [(document_id, chunk_of[document_id][1], score) for document_id, score in fused]


class Searcher:
    """Answers queries against a home's served generation; load once, search many times.

    Example::

        searcher = Searcher(Settings.load("~/my-search-home"))
        for result in searcher.search("how do I get rid of varroa mites", k=5):
            print(result.rank, result.title, result.snippet)
    """

    def __init__(
        self, settings: Settings, db: Database | None = None, *, generation_id: int | None = None
    ) -> None:
        """Search the served generation, or always ``generation_id`` when given (evaluation)."""
        self.settings = settings
        self.pinned_generation = generation_id
        self.db = db or Database(settings.database_url, lock_path=settings.write_lock_path)
        self._lock = threading.Lock()
        self._generation_id: int | None = None
        self._revision = -1
        self._encoder: Encoder | None = None
        self._index: VectorIndex | None = None
        self.last_sync: SyncReport | None = None

    @property
    def encoder(self) -> Encoder:
        with self.db.read() as session:
            self._refresh(session)
        assert self._encoder is not None
        return self._encoder

    def _refresh(self, session: Session) -> None:
        """Follow the served generation and any chunk changes made by other processes."""
        generation, version = require_active_generation(session, self.pinned_generation)
        revision = self.db.revision(session)
        if generation.id != self._generation_id or self._index is None:
            self._encoder = load_encoder(spec_of(version))
            self._index, self.last_sync = open_index(
                session, generation, self.settings.index_dir, version.dimension
            )
            self._generation_id = generation.id
        elif revision != self._revision:
            reconcile(session, self._index, generation.id)
        self._revision = revision

    def chunk_vector(self, chunk_id: int) -> np.ndarray | None:
        """A chunk's vector in the generation being searched."""
        with self._lock:
            return self._index.vector(chunk_id) if self._index is not None else None

    def best_chunk(self, document_id: int, query_vector: np.ndarray) -> str | None:
        """The text of the document's chunk closest to ``query_vector``."""
        with self.db.read() as session:
            chunks = session.execute(
                select(Chunk.id, Chunk.text).where(Chunk.document_id == document_id)
            ).all()
        scored = [
            (float(vector @ query_vector), text)
            for chunk_id, text in chunks
            if (vector := self.chunk_vector(chunk_id)) is not None
        ]
        return max(scored)[1] if scored else None

    def search(self, query: str, k: int = 10, mode: str = "hybrid") -> list[SearchResult]:
        """The ``k`` best documents for ``query``."""
        return self.search_many([query], k=k, mode=mode)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, mode: str = "hybrid", rrf_k: int = RRF_K
    ) -> list[list[SearchResult]]:
        """Answer several queries with one model call; every query sees the same snapshot."""
        _check_mode(mode)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        with self._lock, self.db.read() as session:
            self._refresh(session)
            depth = max(k, _FUSION_DEPTH) if mode == "hybrid" else k
            dense: list[list[tuple[int, int, float]]] = [[] for _ in queries]
            keyword: list[list[tuple[int, int, float]]] = [[] for _ in queries]
            if mode in ("dense", "hybrid"):
                dense = self._dense(session, queries, depth)
            if mode in ("keyword", "hybrid"):
                keyword = [
                    best_chunk_per_document(
                        session, keyword_search(session, query, depth * _CHUNKS_PER_DOCUMENT)
                    )
                    for query in queries
                ]
            answers = []
            for query, dense_docs, keyword_docs in zip(queries, dense, keyword, strict=True):
                if mode == "dense":
                    ranked = dense_docs
                elif mode == "keyword":
                    ranked = keyword_docs
                else:
                    ranked = reciprocal_rank_fusion([dense_docs, keyword_docs], k=rrf_k)
                answers.append(self._results(session, query, ranked[:k]))
            return answers

    def _dense(
        self, session: Session, queries: Sequence[str], depth: int
    ) -> list[list[tuple[int, int, float]]]:
        assert self._encoder is not None and self._index is not None
        texts = [query.strip() for query in queries]
        answers: list[list[tuple[int, int, float]]] = [[] for _ in queries]
        todo = [i for i, text in enumerate(texts) if text]
        if not todo or not len(self._index):
            return answers
        vectors = self._encoder.encode([texts[i] for i in todo])
        scores, ids = self._index.search(vectors, depth * _CHUNKS_PER_DOCUMENT)
        for row, i in enumerate(todo):
            ranked = [
                (int(c), float(s)) for c, s in zip(ids[row], scores[row], strict=True) if c >= 0
            ]
            answers[i] = best_chunk_per_document(session, ranked)
        return answers

    def _results(
        self, session: Session, query: str, ranked: Sequence[tuple[int, int, float]]
    ) -> list[SearchResult]:
        if not ranked:
            return []
        chunk_ids = [chunk_id for _, chunk_id, _ in ranked]
        rows = session.execute(
            select(
                Chunk.id,
                Chunk.text,
                Document.id,
                Document.path,
                Document.external_id,
                Document.title,
            )
            .join(Document, Chunk.document_id == Document.id)
            .where(Chunk.id.in_(chunk_ids))
        ).all()
        by_chunk = {row[0]: row for row in rows}
        results = []
        for document_id, chunk_id, score in ranked:
            row = by_chunk.get(chunk_id)
            if row is None:
                continue
            _, chunk_text, _, path, external_id, title = row
            results.append(
                SearchResult(
                    rank=len(results) + 1,
                    score=score,
                    doc_id=document_id,
                    path=path if path is not None else (external_id or ""),
                    title=title,
                    snippet=make_snippet(chunk_text, query),
                    chunk_id=chunk_id,
                    chunk_text=chunk_text,
                )
            )
        return results
