"""The vector store of a SQLite home: a FAISS index per generation, in a file beside the database.

The file is a cache of the ``embeddings`` table. Each save writes a new file under a name of its own
(temporary file, fsync, rename, directory fsync); then one SQL transaction records its name,
checksum, vector count and kind, and only after that commit is the previous file deleted. So the
file SQL names is always complete and never changes under a reader, and a crash anywhere in between
leaves at worst a file no generation names, removed by the next writer. On open the file is
verified and reconciled with SQL; any mismatch is repaired from the stored embeddings, never by
re-encoding.
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
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from searchapp.errors import CorruptIndexError, StorageFullError
from searchapp.faults import crash_point
from searchapp.store.checks import Check
from searchapp.store.database import Database, is_storage_full
from searchapp.store.schema import IndexGeneration
from searchapp.store.vectors.base import (
    SyncReport,
    Vectors,
    VectorStore,
    fetch_vectors,
    live_chunk_ids,
)

log = logging.getLogger(__name__)

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


class FaissFiles(VectorStore):
    """Each generation's vectors in a FAISS file of ``index_dir``, named by its SQL row."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    def new_file_path(self, generation_id: int) -> Path:
        """A name no earlier save of this generation used."""
        return self.index_dir / f"generation-{generation_id}-{secrets.token_hex(8)}.faiss"

    def recorded_file(self, generation: IndexGeneration) -> Path | None:
        """The file SQL names for this generation, or None before its first save."""
        return self.index_dir / generation.file_name if generation.file_name else None

    def leftovers(self, session: Session) -> list[Path]:
        """Temporary files of a save that died, and index files no generation names."""
        if not self.index_dir.is_dir():
            return []
        named = set(
            session.scalars(
                select(IndexGeneration.file_name).where(IndexGeneration.file_name.is_not(None))
            )
        )
        temporary = list(self.index_dir.glob(".generation-*.tmp"))
        files = self.index_dir.glob("generation-*.faiss")
        return temporary + [p for p in files if p.name not in named]

    def open(
        self, session: Session, generation: IndexGeneration, dimension: int
    ) -> tuple[VectorIndex, SyncReport]:
        """Load a generation's index file and make it agree exactly with SQL's live chunk ids;
        a missing or damaged file is rebuilt from the stored vectors, never by re-encoding."""
        path = self.recorded_file(generation)
        live = live_chunk_ids(session, generation.id)
        reason = ""
        index: VectorIndex | None = None
        if path is not None and generation.checksum is not None:
            try:
                index = self._load_recorded(path, generation, dimension)
            except CorruptIndexError as error:
                reason = str(error)
                if not path.exists():  # a writer saved again after our snapshot named this file
                    index = self._load_successor(generation, dimension)
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
        added, removed = self.reconcile(session, index, generation.id, live)
        return index, SyncReport(rebuilt=False, added=added, removed=removed)

    def reconcile(
        self, session: Session, vectors: Vectors, generation_id: int, live: np.ndarray | None = None
    ) -> tuple[int, int]:
        """Add vectors SQL has and the index lacks, drop ids SQL no longer has."""
        assert isinstance(vectors, VectorIndex), "FAISS files hold VectorIndex vectors"
        if live is None:
            live = live_chunk_ids(session, generation_id)
        have = vectors.ids()
        extra = np.setdiff1d(have, live, assume_unique=True)
        missing = np.setdiff1d(live, have, assume_unique=True)
        removed = vectors.remove(extra.tolist())
        ids, found = fetch_vectors(session, generation_id, missing, vectors.dimension)
        vectors.add(ids, found)
        return len(ids), removed

    @staticmethod
    def _load_recorded(path: Path, generation: IndexGeneration, dimension: int) -> VectorIndex:
        """The file SQL names, verified against what SQL recorded of it."""
        assert generation.checksum is not None
        return VectorIndex.load(
            path, checksum=generation.checksum, count=generation.vector_count, dimension=dimension
        )

    def _load_successor(self, generation: IndexGeneration, dimension: int) -> VectorIndex | None:
        """The newest other file of this generation, if one reads: a reader whose snapshot named
        a file that a writer has since replaced (and deleted) loads its successor instead, and
        ``reconcile`` then makes it agree with the reader's snapshot exactly. A chunk's vector
        never changes within a generation and chunk ids are never reused, so this is safe."""
        candidates = sorted(
            self.index_dir.glob(f"generation-{generation.id}-*.faiss"),
            key=lambda p: p.stat().st_mtime_ns if p.exists() else 0,
            reverse=True,
        )
        for candidate in candidates:
            try:
                data = np.frombuffer(candidate.read_bytes(), dtype=np.uint8)
                index = faiss.deserialize_index(data)
            except (OSError, RuntimeError):
                continue
            if index.d == dimension:
                return VectorIndex(dimension, index)
        return None

    def save(self, session: Session, generation: IndexGeneration, index: VectorIndex) -> None:
        """Write a new file, then record it in ``generation`` (the caller's transaction). The
        previous file stays until that transaction has committed; ``commit`` does both."""
        index.fit_to_size()
        path = self.new_file_path(generation.id)
        checksum = index.save(path)
        crash_point("index-renamed")
        generation.file_name = path.name
        generation.checksum = checksum
        generation.vector_count = len(index)
        generation.index_kind = index.kind
        generation.index_params = json.dumps(index.params)
        session.add(generation)

    def commit(self, db: Database, generation: IndexGeneration, vectors: Vectors) -> list[Path]:
        """Save ``vectors`` as ``generation``'s file, commit, then delete the file it replaces
        (and any other leftover)."""
        assert isinstance(vectors, VectorIndex), "FAISS files hold VectorIndex vectors"
        with db.write() as session:
            row = session.get(IndexGeneration, generation.id)
            if row is None:
                raise CorruptIndexError(f"generation {generation.id} was deleted while written")
            self.save(session, row, vectors)
        return self.remove_leftovers(db)

    def check(self, generation: IndexGeneration, dimension: int, live: np.ndarray) -> Check:
        """Does the saved index file verify, and hold exactly the live chunk ids?"""
        path = self.recorded_file(generation)
        if path is None or generation.checksum is None:
            return Check("index file", False, "no index file saved yet")
        try:
            index = self._load_recorded(path, generation, dimension)
        except CorruptIndexError as error:
            return Check("index file", False, str(error))
        ids = index.ids()
        missing = len(np.setdiff1d(live, ids))
        extra = len(np.setdiff1d(ids, live))
        if missing or extra:  # a run that stopped early: healed from SQL by the next open
            return Check(
                "index file",
                True,
                f"{path.name}: checksum ok; {missing} vectors to add and {extra} to drop from SQL "
                "when next opened (or by --repair)",
            )
        detail = f"{path.name}: checksum ok, {len(ids)} vectors = live chunks"
        return Check("index file", True, detail)
