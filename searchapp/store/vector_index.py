"""The FAISS vector index of one generation: keyed by chunk id, saved atomically, checked on open.

The file is a cache of the ``embeddings`` table. Each save writes a new file under a name of its own
(temporary file, fsync, rename, directory fsync); then one SQL transaction records its name,
checksum, vector count and highest chunk id, and only after that commit is the previous file
deleted. So the file SQL names is always complete and never changes under a reader, and a crash
anywhere in between leaves at worst a file no generation names, removed by the next writer. On open
the file is verified and reconciled with SQL; any mismatch is repaired from the stored embeddings,
never by re-encoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from searchapp.errors import CorruptIndexError, StorageFullError
from searchapp.faults import crash_point
from searchapp.store.database import Database, is_storage_full
from searchapp.store.pgvectors import PgVectors, create_hnsw_index, drop_hnsw_index
from searchapp.store.schema import Embedding, IndexGeneration

log = logging.getLogger(__name__)

_FETCH_BATCH = 500


@dataclass(frozen=True)
class SyncReport:
    """What opening an index had to do to agree with SQL."""

    rebuilt: bool
    added: int
    removed: int
    reason: str = ""


# Exact search answers in a few milliseconds up to about this many vectors (2 cores, 384
# dimensions); past it an inverted-file index (IVF) answers instead, at recall@10 >= 0.95
# (docs/benchmarks.md). Between half and all of it either kind is kept, so that a store near the
# line does not flip back and forth.
EXACT_LIMIT = 50_000


def ivf_shape(count: int) -> tuple[int, int]:
    """(lists, lists probed per query) for an IVF index of ``count`` vectors: about 8 sqrt(n)
    lists (a power of two, with the 39 training points per list FAISS asks for), 64 of them
    probed: recall@10 0.98 at 100k vectors of SciFact's clusters, 0.997 at a million
    (docs/benchmarks.md). More, smaller lists for the same probe scan fewer vectors."""
    lists = 1 << round(math.log2(8 * math.sqrt(max(count, 1))))
    lists = min(lists, 1 << int(math.log2(max(count // 39, 1))))
    return lists, min(lists, _PROBE)


_PROBE = 64
# A query finds its lists through an HNSW graph of the lists' centroids, not by scanning them all:
# at 8,192 lists that scan was half of a query's search. Wide enough to find the probed lists.
# Adding vectors still assigns them exactly, in batches (a graph there was 11x slower).
_GRAPH_NEIGHBOURS, _GRAPH_EF_SEARCH = 32, 128

# Below this many queries FAISS's exact search scans without BLAS, one query per core.
_BLAS_QUERIES = 20


class VectorIndex:
    """Inner-product search over L2-normalised vectors, by chunk id.

    Exact (``IndexIDMap2`` over a flat index) while that is fast; an IVF index with a hash-table
    direct map past ``EXACT_LIMIT`` vectors (``fit_to_size``). Both keep chunk ids explicitly, and
    both delete, reconstruct and save the same way.
    """

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._centroid_graph: faiss.Index | None = None  # made on an IVF index's first search

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self.index, faiss.IndexIVF) else "flat"

    @property
    def params(self) -> dict[str, int]:
        """What a search of this index depends on, as recorded with its generation."""
        if self.kind == "ivf":
            return {"lists": int(self.index.nlist), "probe": int(self.index.nprobe)}
        return {}

    def ids(self) -> np.ndarray:
        if self.kind == "flat":
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists  # ids only: readers call this after every write
        found = [
            faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)).astype(np.int64)
            for n in range(self.index.nlist)
            if lists.list_size(n)
        ]
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (id, vector) held, as two arrays."""
        if self.kind == "flat":
            flat = faiss.downcast_index(self.index.index)
            matrix = faiss.rev_swig_ptr(flat.get_xb(), len(self) * self.dimension)
            return self.ids(), np.array(matrix).reshape(len(self), self.dimension)
        lists = self._ivf_lists()
        if not lists:
            return np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32)
        return np.concatenate([i for i, _ in lists]), np.concatenate([v for _, v in lists])

    def _ivf_lists(self) -> list[tuple[np.ndarray, np.ndarray]]:
        lists = self.index.invlists
        found = []
        for number in range(self.index.nlist):
            size = lists.list_size(number)
            if size:
                ids = faiss.rev_swig_ptr(lists.get_ids(number), size).astype(np.int64)
                codes = faiss.rev_swig_ptr(lists.get_codes(number), size * self.dimension * 4)
                vectors = np.frombuffer(bytes(codes), dtype=np.float32).reshape(size, -1)
                found.append((ids, vectors))
        return found

    def fit_to_size(self, exact_limit: int | None = None) -> bool:
        """Exact below ``exact_limit`` (default ``EXACT_LIMIT``) vectors, IVF above (retrained
        when it has outgrown its lists); returns whether the index was rebuilt."""
        exact_limit = EXACT_LIMIT if exact_limit is None else exact_limit
        count = len(self)
        if self.kind == "flat":
            if count < exact_limit:
                return False
            make_ivf = True
        else:
            make_ivf = count >= exact_limit // 2
            if make_ivf and ivf_shape(count)[0] <= self.index.nlist:
                return False  # rebuilt when it has grown to need twice the lists: 4x the vectors
        ids, vectors = self.vectors()
        self.index = self._centroid_graph = None  # let the old go before the new is filled
        self.index = (
            self._new_ivf(vectors)
            if make_ivf
            else faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        )
        self.add(ids, vectors)
        return True

    def _new_ivf(self, vectors: np.ndarray) -> faiss.IndexIVFFlat:
        """An empty IVF index trained on (a sample of) ``vectors``, shaped by ``ivf_shape``."""
        lists, probe = ivf_shape(len(vectors))
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(self.dimension), self.dimension, lists, faiss.METRIC_INNER_PRODUCT
        )  # FAISS's Python wrapper keeps the quantizer alive with the index
        sample = np.random.default_rng(0).permutation(len(vectors))[: lists * 64]
        index.train(np.ascontiguousarray(vectors[sample]))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # ids, deletes, reconstruct
        index.nprobe = probe
        return index

    def _centroids(self) -> faiss.Index:
        """The HNSW graph of this IVF index's list centroids, made on first use (0.7 s at 8,192
        lists) and again after ``fit_to_size`` has rebuilt the index."""
        if self._centroid_graph is None:
            quantizer = faiss.downcast_index(self.index.quantizer)
            metric = faiss.METRIC_INNER_PRODUCT
            graph = faiss.IndexHNSWFlat(self.dimension, _GRAPH_NEIGHBOURS, metric)
            graph.hnsw.efSearch = _GRAPH_EF_SEARCH
            graph.add(quantizer.reconstruct_n(0, quantizer.ntotal))
            self._centroid_graph = graph
        return self._centroid_graph

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )

    def remove(self, ids: Iterable[int]) -> int:
        selector = np.fromiter(ids, dtype=np.int64)
        if not len(selector):
            return 0
        return int(self.index.remove_ids(selector))

    def vector(self, chunk_id: int, *, session: Session | None = None) -> np.ndarray | None:
        """The stored vector of one chunk, or None when the index does not hold it."""
        try:
            return self.index.reconstruct(int(chunk_id))
        except RuntimeError:
            return None

    def vectors_of(
        self, chunk_ids: Iterable[int], *, session: Session | None = None
    ) -> dict[int, np.ndarray]:
        """The vectors of several chunks (those the index holds)."""
        found = ((int(c), self.vector(c)) for c in chunk_ids)
        return {chunk_id: vector for chunk_id, vector in found if vector is not None}

    def search(
        self, queries: np.ndarray, k: int, *, session: Session | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, chunk ids) per query; missing slots have id -1."""
        k = max(1, min(k, len(self))) if len(self) else 1
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        few = len(queries) < _BLAS_QUERIES
        if self.kind == "flat" and len(self) and few:
            return self._flat_search(queries, k)
        if self.kind == "flat":
            return self.index.search(queries, k)
        # A few queries: the cores share each query's lists (1) instead of taking a query each
        # (0), twice as fast for one query on 2 cores at a million vectors.
        self.index.parallel_mode = 1 if few else 0
        centroid_scores, lists = self._centroids().search(queries, self.index.nprobe)
        return self.index.search_preassigned(queries, k, lists, centroid_scores)

    def _flat_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search of a few queries as one matrix product over the stored vectors (a view,
        not a copy): FAISS scans them one query at a time on one core below 20 queries, twice
        as slow at SciFact's size (docs/benchmarks.md). The same scores and order as FAISS."""
        flat = faiss.downcast_index(self.index.index)
        matrix = faiss.rev_swig_ptr(flat.get_xb(), len(self) * self.dimension)
        scores = queries @ matrix.reshape(len(self), self.dimension).T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-best, axis=1, kind="stable")
        rows = np.take_along_axis(top, order, axis=1)
        ids = faiss.vector_to_array(self.index.id_map)[rows]
        return np.take_along_axis(best, order, axis=1), ids.astype(np.int64)

    def save(self, path: Path) -> str:
        """Write atomically (temp file, fsync, rename, fsync dir); returns the file's sha256."""
        data = faiss.serialize_index(self.index).tobytes()
        tmp_name = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                half = len(data) // 2
                handle.write(data[:half])
                crash_point("index-write")
                handle.write(data[half:])
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException as error:
            if tmp_name is not None:
                Path(tmp_name).unlink(missing_ok=True)
            if is_storage_full(error):
                raise StorageFullError(f"the vector index file {path.name}") from error
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(cls, path: Path, *, checksum: str, count: int, dimension: int) -> VectorIndex:
        """Read a saved index, refusing one whose bytes or size disagree with SQL's record.

        The file is hashed as a stream and then read by FAISS: never two copies in memory (at a
        million vectors, 1.5 GB each)."""
        try:
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except FileNotFoundError:
            raise CorruptIndexError(f"index file {path.name} is missing") from None
        if digest != checksum:
            raise CorruptIndexError(f"index file {path.name} fails its checksum")
        try:  # saved files are never rewritten in place: these are the bytes just hashed
            index = faiss.read_index(str(path))
        except RuntimeError as error:
            raise CorruptIndexError(f"index file {path.name} cannot be read: {error}") from None
        if index.ntotal != count or index.d != dimension:
            raise CorruptIndexError(
                f"index file {path.name} holds {index.ntotal} vectors of dimension {index.d}, "
                f"SQL recorded {count} of dimension {dimension}"
            )
        return cls(dimension, index)


def new_index_file_path(index_dir: Path, generation_id: int) -> Path:
    """A name no earlier save of this generation used."""
    return index_dir / f"generation-{generation_id}-{secrets.token_hex(8)}.faiss"


def recorded_index_file(index_dir: Path, generation: IndexGeneration) -> Path | None:
    """The file SQL names for this generation, or None before its first save."""
    return index_dir / generation.file_name if generation.file_name else None


def leftover_index_files(session: Session, index_dir: Path) -> list[Path]:
    """Temporary files of a save that died, and index files no generation names. None on
    PostgreSQL: there the store has no files, and any in the folder belong to another store (the
    SQLite one this home was migrated from)."""
    if not index_dir.is_dir() or _on_postgres(session):
        return []
    named = set(
        session.scalars(
            select(IndexGeneration.file_name).where(IndexGeneration.file_name.is_not(None))
        )
    )
    temporary = list(index_dir.glob(".generation-*.tmp"))
    return temporary + [p for p in index_dir.glob("generation-*.faiss") if p.name not in named]


def remove_leftover_index_files(db: Database, index_dir: Path) -> list[Path]:
    """Delete ``leftover_index_files`` (call with the writer lock held, outside a transaction)."""
    with db.read() as session:
        leftovers = leftover_index_files(session, index_dir)
    removed = []
    for path in leftovers:
        try:
            path.unlink(missing_ok=True)
            removed.append(path)
        except OSError as error:  # tidying up; never a reason to fail a run that committed
            log.warning("Could not remove the leftover index file %s: %s", path, error)
    return removed


def live_chunk_ids(session: Session, generation_id: int) -> np.ndarray:
    rows = session.execute(
        select(Embedding.chunk_id).where(Embedding.generation_id == generation_id)
    ).scalars()
    return np.fromiter(rows, dtype=np.int64)


def fetch_vectors(
    session: Session, generation_id: int, chunk_ids: np.ndarray, dimension: int
) -> tuple[np.ndarray, np.ndarray]:
    """The stored vectors of ``chunk_ids`` in this generation, as (ids, matrix)."""
    found_ids: list[int] = []
    blobs: list[bytes] = []
    for start in range(0, len(chunk_ids), _FETCH_BATCH):
        batch = [int(i) for i in chunk_ids[start : start + _FETCH_BATCH]]
        for chunk_id, blob in session.execute(
            select(Embedding.chunk_id, Embedding.vector).where(
                Embedding.generation_id == generation_id, Embedding.chunk_id.in_(batch)
            )
        ):
            found_ids.append(chunk_id)
            blobs.append(blob)
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension)
    return np.asarray(found_ids, dtype=np.int64), matrix


def open_index(
    session: Session, generation: IndexGeneration, index_dir: Path, dimension: int
) -> tuple[VectorIndex, SyncReport]:
    """Load a generation's index file and make it agree exactly with SQL's live chunk ids.

    On PostgreSQL there is no file: the rows are searched where they are (``PgVectors``)."""
    if _on_postgres(session):
        vectors = PgVectors(generation.id, dimension, _any_vector(session, generation.id))
        return vectors, SyncReport(rebuilt=False, added=0, removed=0)  # type: ignore[return-value]
    path = recorded_index_file(index_dir, generation)
    live = live_chunk_ids(session, generation.id)
    reason = ""
    index: VectorIndex | None = None
    if path is not None and generation.checksum is not None:
        try:
            index = VectorIndex.load(
                path,
                checksum=generation.checksum,
                count=generation.vector_count,
                dimension=dimension,
            )
        except CorruptIndexError as error:
            reason = str(error)
            if not path.exists():  # a writer saved again after our snapshot named this file
                index = _load_successor(index_dir, generation, dimension)
    elif len(live):
        reason = "no index file was saved yet"  # a new generation, or a first run that died
    if index is None:
        index = VectorIndex(dimension)
        ids, vectors = fetch_vectors(session, generation.id, live, dimension)
        index.add(ids, vectors)
        index.fit_to_size()
        if generation.checksum is not None:  # a recorded file was damaged: worth saying
            log.warning(
                "Rebuilt the vector index of generation %d from %d stored embeddings (%s).",
                generation.id,
                len(ids),
                reason,
            )
        return index, SyncReport(rebuilt=True, added=len(ids), removed=0, reason=reason)
    added, removed = reconcile(session, index, generation.id, live)
    return index, SyncReport(rebuilt=False, added=added, removed=removed)


def reconcile(
    session: Session, index: VectorIndex, generation_id: int, live: np.ndarray | None = None
) -> tuple[int, int]:
    """Add vectors SQL has and the index lacks, drop ids SQL no longer has; returns counts."""
    if isinstance(index, PgVectors):  # the rows are the index
        index.count = _any_vector(session, generation_id)
        return 0, 0
    if live is None:
        live = live_chunk_ids(session, generation_id)
    have = index.ids()
    extra = np.setdiff1d(have, live, assume_unique=True)
    missing = np.setdiff1d(live, have, assume_unique=True)
    removed = index.remove(extra.tolist())
    ids, vectors = fetch_vectors(session, generation_id, missing, index.dimension)
    index.add(ids, vectors)
    return len(ids), removed


def drop_vectors(session: Session, generation_id: int) -> None:
    """Delete a generation's stored vectors (and on PostgreSQL its HNSW index); its file, no
    longer named once the generation's row is gone, is a leftover for the next writer."""
    session.execute(delete(Embedding).where(Embedding.generation_id == generation_id))
    if _on_postgres(session):
        drop_hnsw_index(session, generation_id)


def _on_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _any_vector(session: Session, generation_id: int) -> int:
    """1 if the generation has a vector, else 0 (cheap: what an empty-index check needs)."""
    found = session.execute(
        select(Embedding.chunk_id).where(Embedding.generation_id == generation_id).limit(1)
    ).first()
    return int(found is not None)


def _load_successor(
    index_dir: Path, generation: IndexGeneration, dimension: int
) -> VectorIndex | None:
    """The newest other file of this generation, if one reads: a reader whose snapshot named a
    file that a writer has since replaced (and deleted) loads its successor instead, and
    ``reconcile`` then makes it agree with the reader's snapshot exactly. A chunk's vector never
    changes within a generation and chunk ids are never reused, so this is safe."""
    candidates = sorted(
        index_dir.glob(f"generation-{generation.id}-*.faiss"),
        key=lambda p: p.stat().st_mtime_ns if p.exists() else 0,
        reverse=True,
    )
    for candidate in candidates:
        try:
            index = faiss.deserialize_index(np.frombuffer(candidate.read_bytes(), dtype=np.uint8))
        except (OSError, RuntimeError):
            continue
        if index.d == dimension:
            return VectorIndex(dimension, index)
    return None


def save_index(
    session: Session, generation: IndexGeneration, index: VectorIndex, index_dir: Path
) -> None:
    """Write a new file, then record it in ``generation`` (the caller's transaction).

    The previous file stays until that transaction has committed; ``commit_index`` does both.
    """
    index.fit_to_size()
    path = new_index_file_path(index_dir, generation.id)
    checksum = index.save(path)
    crash_point("index-renamed")
    ids = index.ids()
    generation.file_name = path.name
    generation.checksum = checksum
    generation.vector_count = len(index)
    generation.max_chunk_id = int(ids.max()) if len(ids) else 0
    generation.index_kind = index.kind
    generation.index_params = json.dumps(index.params)
    session.add(generation)


def commit_index(
    db: Database, generation: IndexGeneration, index: VectorIndex, index_dir: Path
) -> list[Path]:
    """Save ``index`` as ``generation``'s file, commit, then delete the file it replaces (and
    any other leftover); returns the files deleted.

    On PostgreSQL: make sure the generation has its HNSW index, and record its counts."""
    if isinstance(index, PgVectors):
        with db.write() as session:
            db.serialize(session)  # writers side by side: one makes the index, once
            row = session.get(IndexGeneration, generation.id)
            assert row is not None, f"generation {generation.id} vanished"
            create_hnsw_index(session, row.id, index.dimension)
            count, highest = session.execute(
                select(func.count(), func.max(Embedding.chunk_id)).where(
                    Embedding.generation_id == row.id
                )
            ).one()
            row.vector_count, row.max_chunk_id = count, highest or 0
            row.index_kind, row.index_params = index.kind, "{}"
        index.count = count
        return []
    with db.write() as session:
        row = session.get(IndexGeneration, generation.id)
        assert row is not None, f"generation {generation.id} vanished"
        save_index(session, row, index, index_dir)
    return remove_leftover_index_files(db, index_dir)
