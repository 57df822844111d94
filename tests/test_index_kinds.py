"""The vector index scales: exact search while small, an IVF index past the limit, with explicit
ids, deletes, reconstruction and saving alike, and recall@10 against exact search measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer.folders import index_folders
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.vectors.faiss import VectorIndex, ivf_shape
from searchapp.versions import active_generation

DIMENSION = 64
LIMIT = 2_000  # a small stand-in for EXACT_LIMIT, so that the test builds quickly


def _clustered(count: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 40 topics, as embeddings of real documents are."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIMENSION))
    vectors = centres[rng.integers(0, 40, count)] + 0.6 * rng.standard_normal((count, DIMENSION))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _recall_at_10(approximate: VectorIndex, exact: VectorIndex, queries: np.ndarray) -> float:
    _, found = approximate.search(queries, 10)
    _, truth = exact.search(queries, 10)
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return _clustered(6_000)


def test_a_few_queries_get_exactly_what_faiss_finds_after_deletes(vectors: np.ndarray) -> None:
    index = VectorIndex(DIMENSION)
    index.add(np.arange(5000, 5000 + 500), vectors[:500])
    index.remove(np.arange(5000, 5100, 7))  # holes in the middle of the stored vectors
    queries = _clustered(3, seed=2)
    for k in (1, 10, len(index), len(index) + 5):  # a k past the size gets every vector
        scores, ids = index.search(queries, k)
        faiss_scores, faiss_ids = index.index.search(queries, min(k, len(index)))
        np.testing.assert_array_equal(ids, faiss_ids)
        np.testing.assert_allclose(scores, faiss_scores, atol=1e-5)
        assert not set(ids.ravel()) & set(range(5000, 5100, 7))


def test_small_stays_exact_and_large_becomes_ivf_with_high_recall(vectors: np.ndarray) -> None:
    ids = np.arange(1000, 1000 + len(vectors), dtype=np.int64)
    small = VectorIndex(DIMENSION)
    small.add(ids[:1_500], vectors[:1_500])
    assert not small.fit_to_size(LIMIT) and small.kind == "flat"

    index, exact = VectorIndex(DIMENSION), VectorIndex(DIMENSION)
    for part in (index, exact):
        part.add(ids, vectors)
    assert index.fit_to_size(LIMIT) and index.kind == "ivf"
    assert index.params == dict(zip(("lists", "probe"), ivf_shape(len(vectors)), strict=True))
    assert sorted(index.ids()) == sorted(ids) and len(index) == len(vectors)
    np.testing.assert_array_equal(index.vector(1007), vectors[7])
    queries = _clustered(200, seed=1)
    assert _recall_at_10(index, exact, queries) >= 0.95
    # Its lists are found through a graph of their centroids: nearly what scanning them finds.
    _, found = index.search(queries, 10)
    _, scanned = index.index.search(queries, 10)
    assert np.mean([len(set(f) & set(s)) / 10 for f, s in zip(found, scanned, strict=True)]) >= 0.99


def test_ivf_deletes_adds_and_saves_like_the_exact_index(vectors: np.ndarray, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ids = np.arange(len(vectors), dtype=np.int64) + 1
    index = VectorIndex(DIMENSION)
    index.add(ids, vectors)
    index.fit_to_size(LIMIT)
    assert index.remove([1, 2, 3]) == 3 and index.vector(2) is None
    index.add(np.array([9_999], dtype=np.int64), vectors[:1])
    _, found = index.search(vectors[:1], 1)
    assert found[0][0] in (9_999, 1) and 1 not in index.ids()

    path = tmp_path / "generation-1-test.faiss"
    checksum = index.save(path)
    loaded = VectorIndex.load(path, checksum=checksum, count=len(index), dimension=DIMENSION)
    assert loaded.kind == "ivf" and loaded.params == index.params
    assert sorted(loaded.ids()) == sorted(index.ids())


def test_an_index_that_shrank_goes_back_to_exact(vectors: np.ndarray) -> None:
    ids = np.arange(len(vectors), dtype=np.int64)
    index = VectorIndex(DIMENSION)
    index.add(ids, vectors)
    index.fit_to_size(LIMIT)
    index.remove(ids[: len(ids) - 900])  # 900 left: below half the limit
    assert index.fit_to_size(LIMIT) and index.kind == "flat"
    assert sorted(index.ids()) == sorted(ids[-900:])
    np.testing.assert_array_equal(index.vector(int(ids[-1])), vectors[-1])


def test_a_store_past_the_limit_is_served_by_ivf_end_to_end(
    cli, docs_copy: Path, home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("searchapp.store.vectors.faiss.EXACT_LIMIT", 20)
    index_folders(home, [docs_copy])
    with Database(home.database_url).read() as session:
        generation = active_generation(session)
        assert generation.index_kind == "ivf"
        assert json.loads(generation.index_params)["lists"] >= 1
    assert (
        Searcher(home).search("varroa mites", k=1, mode="dense")[0].path.endswith("varroa-mites.md")
    )
    (docs_copy / "bees" / "varroa-mites.md").unlink()
    index_folders(home, [docs_copy])  # a delete in an IVF index
    assert cli("--home", home.home, "check").code == 0
    paths = [r.path for r in Searcher(home).search("varroa mites", k=5, mode="dense")]
    assert paths and not any(p.endswith("varroa-mites.md") for p in paths)
