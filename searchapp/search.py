"""Search: dense (the home's vector store: FAISS, or pgvector on PostgreSQL), keyword (its keyword
store: BM25 by Tantivy or FTS5, or over PostgreSQL's postings) and hybrid (the two rankings fused).

Hybrid fuses by a blend of the two rankings' min-max normalised scores (the default), or by
reciprocal rank fusion (``fusion="rrf"``); see ``searchapp.choices.FUSION``.

Results are documents, each represented by its best-matching chunk. A ``Searcher`` keeps the model
and the vector index in memory and notices, on every search, when another process has changed the
store or switched the served generation.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from searchapp.choices import DEFAULT_RESULTS, FUSION, MAX_RESULTS, SEARCH_MODE
from searchapp.encoder import Encoder
from searchapp.errors import InvalidOptionError
from searchapp.onnx_encoder import OnnxEncoder
from searchapp.settings import Settings
from searchapp.snippets import make_snippet
from searchapp.store.database import Database
from searchapp.store.keywords.base import KeywordStore
from searchapp.store.keywords.factory import keyword_store
from searchapp.store.schema import Chunk, Document, ModelVersion, Source
from searchapp.store.vectors.base import SyncReport, Vectors, VectorStore
from searchapp.store.vectors.factory import vector_store
from searchapp.versions import query_encoder_for, require_active_generation

# The blend's weight of the dense ranking, chosen on SciFact's train split (docs/benchmarks.md).
# With two rankings, a small RRF constant lets the top of each count (k = 5 was best on the train
# split; the classic 60 is not).
DENSE_WEIGHT = 0.5
RRF_K = 5
# Documents have several chunks; fetch enough chunks to fill ``k`` distinct documents.
_CHUNKS_PER_DOCUMENT = 3
# Each ranking that hybrid search fuses is at least this deep.
_FUSION_DEPTH = 100


# Below this cosine similarity between the query and the best chunk, a match is not confident.
CONFIDENT_SIMILARITY = 0.3


@dataclass(frozen=True)
class SearchFilters:
    """Restrict results to documents under ``folders``, of ``file_types``, modified in a range,
    by an ``author`` (an e-mail's sender; any part of the name or address, any case)."""

    folders: tuple[str, ...] = ()
    file_types: tuple[str, ...] = ()
    modified_after: datetime | None = None
    modified_before: datetime | None = None
    author: str = ""

    @property
    def active(self) -> bool:
        return bool(self.folders or self.file_types or self.modified_after or self.modified_before
                    or self.author)  # fmt: skip

    def allowed_documents(self, session: Session) -> set[int]:
        statement = select(Document.id)
        if self.folders:
            statement = statement.join(Source, Source.id == Document.source_id).where(
                Source.location.in_(self.folders)
            )
        if self.file_types:
            statement = statement.where(Document.file_type.in_(self.file_types))
        if self.modified_after:
            statement = statement.where(Document.mtime_ns >= _ns(self.modified_after))
        if self.modified_before:
            statement = statement.where(Document.mtime_ns < _ns(self.modified_before))
        if self.author:
            statement = statement.where(Document.author.icontains(self.author, autoescape=True))
        return set(session.scalars(statement))


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


@dataclass(frozen=True)
class SearchResult:
    """One ranked document, shown through its best chunk.

    ``similarity`` is the cosine similarity of the query and that chunk under the served model
    (None in keyword mode).
    """

    rank: int
    score: float
    doc_id: int
    path: str
    title: str
    snippet: str
    chunk_id: int
    chunk_text: str
    similarity: float | None = None
    # Where in the document the passage is: "page 3", "slide 2", "message 4 · page 1"; "" for
    # a document with no pages.
    location: str = ""
    author: str = ""
    date: str = ""
    file_type: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)  # an e-mail's from, to, cc

    @property
    def confident(self) -> bool:
        return self.similarity is None or self.similarity >= CONFIDENT_SIMILARITY

    def to_json(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "doc_id": self.doc_id,
            "path": self.path,
            "title": self.title,
            "snippet": self.snippet,
            "location": self.location,
            "file_type": self.file_type,
            "author": self.author,
            "date": self.date,
            "metadata": dict(self.metadata),
        }


def location(part: str | None, sections: str | None, start: int) -> str:
    """Where a passage starting at ``start`` lies: the document's part of its file (a mailbox's
    message) and the section (page, slide, sheet, chapter) the passage starts in."""
    label = ""
    if sections:
        starts = json.loads(sections)
        index = bisect.bisect_right([begin for begin, _ in starts], start) - 1
        label = starts[index][1] if index >= 0 else ""  # before the first heading: none
    return " · ".join(piece for piece in (part, label) if piece)


def answer_json(query: str, mode: str, results: Sequence[SearchResult]) -> dict[str, object]:
    """One answer as ``searchapp search --json`` prints it and ``GET /search`` returns it."""
    return {"query": query, "mode": mode, "results": [r.to_json() for r in results]}


# What a result shows of its chunk and document, by chunk id; and which document owns a chunk.
_ROWS_SQL = (
    "SELECT chunks.id, chunks.document_id, chunks.text, documents.path, documents.external_id, "
    "documents.title, chunks.start, documents.part, documents.sections, documents.author, "
    "documents.doc_date, documents.meta, documents.file_type "
    "FROM chunks JOIN documents ON documents.id = chunks.document_id WHERE chunks.id IN ({})"
)
_OWNERS_SQL = "SELECT id, document_id FROM chunks WHERE id IN ({})"


def chunk_rows(
    session: Session, chunk_ids: Sequence[int], *, text: bool = True
) -> dict[int, Sequence]:
    """By chunk id, the chunks that still exist: (id, document id, text, path, external id,
    title, start, part, sections, author, date, metadata, file type), or only (id, document id)
    without ``text``.

    One statement, handed to the driver as written: on a search's path SQLAlchemy's compiling
    of an ``IN`` list and its result layer cost three times the query itself (SQLite's ``?``
    markers, psycopg's ``%s``)."""
    ids = tuple(dict.fromkeys(chunk_ids))
    if not ids:
        return {}
    connection = session.connection()
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = (_ROWS_SQL if text else _OWNERS_SQL).format(", ".join([marker] * len(ids)))
    return {row[0]: row for row in connection.exec_driver_sql(sql, ids)}


def best_chunk_per_document(
    session: Session,
    ranked_chunks: Sequence[tuple[int, float]],
    rows: dict[int, Sequence] | None = None,
) -> list[tuple[int, int, float]]:
    """Collapse (chunk id, score) pairs, best first, into (document id, chunk id, score).

    ``rows`` (from ``chunk_rows``) say which document owns each chunk; read when not given."""
    if not ranked_chunks:
        return []
    if rows is None:
        rows = chunk_rows(session, [chunk_id for chunk_id, _ in ranked_chunks], text=False)
    seen: set[int] = set()
    documents = []
    for chunk_id, score in ranked_chunks:
        row = rows.get(chunk_id)
        if row is None or row[1] in seen:
            continue  # a chunk deleted since the vector index was refreshed, or a weaker chunk
        seen.add(row[1])
        documents.append((row[1], chunk_id, score))
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


def score_blend(
    dense: Sequence[tuple[int, int, float]],
    keyword: Sequence[tuple[int, int, float]],
    dense_weight: float = DENSE_WEIGHT,
) -> list[tuple[int, int, float]]:
    """Fuse by ``w * dense + (1 - w) * keyword``, each score min-max normalised over its ranking.

    A document missing from one ranking scores 0 there; its chunk comes from the ranking where it
    scored higher.
    """
    fused: dict[int, float] = {}
    best: dict[int, tuple[float, int]] = {}  # document -> (normalised score, chunk id)
    for ranking, weight in ((dense, dense_weight), (keyword, 1.0 - dense_weight)):
        if not ranking:
            continue
        scores = [score for _, _, score in ranking]
        low, high = min(scores), max(scores)
        for document_id, chunk_id, score in ranking:
            normalised = (score - low) / (high - low) if high > low else 1.0
            fused[document_id] = fused.get(document_id, 0.0) + weight * normalised
            if document_id not in best or normalised > best[document_id][0]:
                best[document_id] = (normalised, chunk_id)
    ordered = sorted(fused.items(), key=lambda item: item[1], reverse=True)
    return [(document_id, best[document_id][1], score) for document_id, score in ordered]


@dataclass
class _Served:
    """The generation being searched: its model version, backend, vectors and query encoder."""

    generation_id: int
    version: ModelVersion
    backend: str
    index: Vectors
    encoder: Encoder | OnnxEncoder | None = None  # loaded on first use


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
        self._lock = threading.RLock()
        self._revision = -1
        self._served: _Served | None = None
        self.last_sync: SyncReport | None = None

    @property
    def encoder(self) -> Encoder | OnnxEncoder:
        """The model of the generation being searched, loaded on first use (keyword search
        needs none, so a one-shot keyword query never imports torch)."""
        with self._lock, self.db.read() as session:
            return self._query_encoder(self._refresh(session))

    @property
    def vector_index(self) -> Vectors | None:
        """The vector index of the generation searched last (None before the first search)."""
        return self._served.index if self._served is not None else None

    @property
    def generation_id(self) -> int | None:
        """The generation searched last."""
        return self._served.generation_id if self._served is not None else None

    @cached_property
    def _encoding_thread(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="query-encode")

    @cached_property
    def keywords(self) -> KeywordStore:
        """The keyword store of this home's database."""
        fast = self.settings.keyword_engine == "auto"
        return keyword_store(self.db, self.settings.index_dir if fast else None)

    @cached_property
    def _vectors(self) -> VectorStore:
        return vector_store(self.db, self.settings.index_dir)

    @property
    def dense_weight(self) -> float:
        """The blend's weight of the dense ranking for the served version."""
        fitted = self._served.version.dense_weight if self._served is not None else None
        return fitted if fitted is not None else DENSE_WEIGHT

    def _query_encoder(self, served: _Served) -> Encoder | OnnxEncoder:
        if served.encoder is None:
            served.encoder = query_encoder_for(
                served.version, served.backend, self.settings.backends_dir,
                self.settings.query_backend,
            )  # fmt: skip
        return served.encoder

    def _refresh(self, session: Session) -> _Served:
        """Follow the served generation and any chunk changes made by other processes."""
        revision = self.db.revision(session)
        served = self._served
        if served is not None and revision == self._revision:
            return served  # nothing committed since: every write and every promotion moves it
        generation, version = require_active_generation(session, self.pinned_generation)
        if served is None or generation.id != served.generation_id:
            index, self.last_sync = self._vectors.open(session, generation, version.dimension)
            served = self._served = _Served(generation.id, version, generation.backend, index)
        else:
            self._vectors.reconcile(session, served.index, generation.id)
        self._revision = revision
        return served

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The vectors of these chunks in the generation being searched (those it holds)."""
        with self._lock, self.db.read() as session:
            return self._refresh(session).index.vectors_of(chunk_ids, session=session)

    def best_chunk(
        self, document_id: int, query_vector: np.ndarray
    ) -> tuple[str, np.ndarray] | None:
        """The document's chunk closest to ``query_vector``: its text and its stored vector."""
        with self.db.read() as session:
            chunks = session.execute(
                select(Chunk.id, Chunk.text).where(Chunk.document_id == document_id)
            ).all()
        vectors = self.chunk_vectors([chunk_id for chunk_id, _ in chunks])
        scored = [
            (float(vector @ query_vector), text, vector)
            for chunk_id, text in chunks
            if (vector := vectors.get(chunk_id)) is not None
        ]
        if not scored:
            return None
        _, text, vector = max(scored, key=lambda item: item[0])
        return text, vector

    def search(
        self,
        query: str,
        k: int = DEFAULT_RESULTS,
        mode: str = SEARCH_MODE.default,
        filters: SearchFilters | None = None,
        fusion: str = FUSION.default,
    ) -> list[SearchResult]:
        """The ``k`` best documents for ``query``."""
        return self.search_many([query], k=k, mode=mode, fusion=fusion, filters=filters)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = DEFAULT_RESULTS,
        mode: str = SEARCH_MODE.default,
        fusion: str = FUSION.default,
        filters: SearchFilters | None = None,
        dense_weight: float | None = None,
    ) -> list[list[SearchResult]]:
        """Answer several queries with one model call; every query sees the same snapshot.

        Hybrid's blend weighs the dense ranking by ``dense_weight``, or by the one fitted for the
        served model version (``ModelVersion.dense_weight``), or by ``DENSE_WEIGHT``."""
        SEARCH_MODE.check(mode)
        FUSION.check(fusion)
        if not 1 <= k <= MAX_RESULTS:
            raise InvalidOptionError(f"k must be between 1 and {MAX_RESULTS}, got {k}.")
        with self._lock, self.db.read() as session:
            served = self._refresh(session)
            allowed = filters.allowed_documents(session) if filters and filters.active else None
            depth = max(k, _FUSION_DEPTH) if mode == "hybrid" else k
            if allowed is not None:
                depth *= 4  # filtered-out documents leave room for others
            dense, keyword, vectors = self._rankings(session, served, queries, mode, depth)
            answers = []
            for i, query in enumerate(queries):
                # One statement for both rankings' chunks. A single ranking holds about a page of
                # them: their text comes too, and the results need no second statement.
                candidates = [chunk_id for chunk_id, _ in dense[i]]
                candidates += [chunk_id for chunk_id, _ in keyword[i]]
                rows = chunk_rows(session, candidates, text=mode != "hybrid")
                ranked = self._fused(
                    session, dense[i], keyword[i], rows, mode, fusion, dense_weight
                )
                if allowed is not None:
                    ranked = [item for item in ranked if item[0] in allowed]
                vector = vectors[i] if vectors is not None else None
                page = ranked[:k]
                if mode == "hybrid":
                    rows = chunk_rows(session, [chunk_id for _, chunk_id, _ in page])
                answers.append(self._results(session, served, query, page, rows, vector))
            return answers

    def _rankings(
        self, session: Session, served: _Served, queries: Sequence[str], mode: str, depth: int
    ) -> tuple[list[list[tuple[int, float]]], list[list[tuple[int, float]]], np.ndarray | None]:
        """Each query's dense and keyword rankings of chunks, as (chunk id, score), ``depth``
        documents deep, and the query vectors (None in keyword mode)."""
        texts = [query.strip() for query in queries]
        dense: list[list[tuple[int, float]]] = [[] for _ in queries]
        keyword: list[list[tuple[int, float]]] = [[] for _ in queries]
        vectors = None
        encoding = None
        if mode == "dense" and any(texts):
            vectors = self._query_encoder(served).encode(
                [text or " " for text in texts], role="query"
            )
        elif mode == "hybrid" and any(texts):
            # Encoded in a thread while the keyword index answers (both release the GIL):
            # hybrid waits for the slower of the two, not for their sum.
            encoder = self._query_encoder(served)
            encoding = self._encoding_thread.submit(
                encoder.encode, [text or " " for text in texts], role="query"
            )
        if mode in ("keyword", "hybrid"):
            limit = depth * _CHUNKS_PER_DOCUMENT
            keyword = [self.keywords.search(session, query, limit) for query in queries]
        if encoding is not None:
            vectors = encoding.result()
        if vectors is not None:
            dense = [
                self._dense_chunks(session, served.index, vector, depth) if text else []
                for text, vector in zip(texts, vectors, strict=True)
            ]
        return dense, keyword, vectors

    def _fused(
        self,
        session: Session,
        dense: Sequence[tuple[int, float]],
        keyword: Sequence[tuple[int, float]],
        rows: dict[int, Sequence],
        mode: str,
        fusion: str,
        dense_weight: float | None,
    ) -> list[tuple[int, int, float]]:
        """One query's documents, best first: its chunks collapsed to documents, then the
        rankings the mode asks for fused."""
        dense_ranked = best_chunk_per_document(session, dense, rows)
        keyword_ranked = best_chunk_per_document(session, keyword, rows)
        if mode == "dense":
            return dense_ranked
        if mode == "keyword":
            return keyword_ranked
        if fusion == "rrf":
            return reciprocal_rank_fusion([dense_ranked, keyword_ranked])
        weight = self.dense_weight if dense_weight is None else dense_weight
        return score_blend(dense_ranked, keyword_ranked, weight)

    def more_like_this(self, document_id: int, k: int = DEFAULT_RESULTS) -> list[SearchResult]:
        """Documents closest to ``document_id`` itself (its chunks' mean vector as the query)."""
        with self._lock, self.db.read() as session:
            served = self._refresh(session)
            chunk_ids = session.scalars(select(Chunk.id).where(Chunk.document_id == document_id))
            vectors = list(served.index.vectors_of(list(chunk_ids), session=session).values())
            if not vectors:
                return []
            query = np.mean(vectors, axis=0)
            query /= np.linalg.norm(query) or 1.0
            nearest = self._dense_chunks(session, served.index, query, k + 1)
            ranked = best_chunk_per_document(session, nearest)
            ranked = [item for item in ranked if item[0] != document_id][:k]
            title = session.scalar(select(Document.title).where(Document.id == document_id))
            rows = chunk_rows(session, [chunk_id for _, chunk_id, _ in ranked])
            return self._results(session, served, title or "", ranked, rows, query)

    def matching_chunks(
        self, document_ids: Sequence[int], query: str, n: int = 3
    ) -> dict[int, list[tuple[str, float]]]:
        """Each document's ``n`` chunks most similar to ``query``, as (text, similarity)."""
        with self._lock, self.db.read() as session:
            served = self._refresh(session)
            vector = self._query_encoder(served).encode([query.strip() or " "], role="query")[0]
            chunks = session.execute(
                select(Chunk.document_id, Chunk.id, Chunk.text)
                .where(Chunk.document_id.in_(list(document_ids)))
                .order_by(Chunk.ordinal)
            ).all()
            scored: dict[int, list[tuple[str, float]]] = {i: [] for i in document_ids}
            vectors = served.index.vectors_of(
                [chunk_id for _, chunk_id, _ in chunks], session=session
            )
            for document_id, chunk_id, text in chunks:
                chunk_vector = vectors.get(chunk_id)
                if chunk_vector is not None:
                    scored[document_id].append((text, float(chunk_vector @ vector)))
        return {
            i: sorted(found, key=lambda item: item[1], reverse=True)[:n]
            for i, found in scored.items()
        }

    @staticmethod
    def _dense_chunks(
        session: Session, index: Vectors, vector: np.ndarray, depth: int
    ) -> list[tuple[int, float]]:
        """The best chunks for ``depth`` documents, as (chunk id, similarity), best first."""
        if not len(index):
            return []
        scores, ids = index.search(vector[None, :], depth * _CHUNKS_PER_DOCUMENT, session=session)
        return [(int(c), float(s)) for c, s in zip(ids[0], scores[0], strict=True) if c >= 0]

    def _results(
        self,
        session: Session,
        served: _Served,
        query: str,
        ranked: Sequence[tuple[int, int, float]],
        rows: dict[int, Sequence],
        query_vector: np.ndarray | None = None,
    ) -> list[SearchResult]:
        """``ranked``'s documents as results; ``rows`` (``chunk_rows``, text included) hold
        their chunks."""
        if not ranked:
            return []
        chunk_ids = [chunk_id for _, chunk_id, _ in ranked]
        vectors = {}
        if query_vector is not None:
            vectors = served.index.vectors_of(chunk_ids, session=session)
        results = []
        for document_id, chunk_id, score in ranked:
            row = rows.get(chunk_id)
            if row is None:
                continue
            _, _, chunk_text, path, external_id, title, start, part, sections = row[:9]
            author, date, meta, file_type = row[9:]
            similarity = None
            if (chunk_vector := vectors.get(chunk_id)) is not None:
                similarity = float(chunk_vector @ query_vector)
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
                    similarity=similarity,
                    location=location(part, sections, start),
                    author=author or "",
                    date=date or "",
                    file_type=file_type,
                    metadata=json.loads(meta) if meta else {},
                )
            )
        return results
