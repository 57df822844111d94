"""Recall@10 of the IVF index against exact search, at the shape ``ivf_shape`` picks and around it.

Vectors: the real embeddings of a home (all SciFact chunks), and, to reach 10x that, synthetic
copies of them (each real vector plus Gaussian noise of 0.05 per component, renormalised: clearly
not real documents, but keeping the real data's clusters). Queries: SciFact's test queries, encoded
by the home's model. Prints one JSON object per size; ``probe`` marks the one ``ivf_shape`` picks.

    python bench/ivf_recall.py --home /tmp/searchapp-backends --beir ../shared/datasets/scifact
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import select

from searchapp.beir import read_qrels, read_queries
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.schema import Embedding
from searchapp.store.vectors.faiss import VectorIndex, ivf_shape

REPO = Path(__file__).resolve().parents[1]


def recall_at_10(index: faiss.Index, exact: faiss.Index, queries: np.ndarray) -> float:
    _, found = index.search(queries, 10)
    _, truth = exact.search(queries, 10)
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--copies", type=int, default=9, help="synthetic copies of the data")
    args = parser.parse_args()

    searcher = Searcher(Settings.load(args.home, create=False))
    with searcher.db.read() as session:
        blobs = session.scalars(select(Embedding.vector).where(Embedding.generation_id == 1)).all()
    real = np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])
    rng = np.random.default_rng(0)
    noisy = [real + 0.05 * rng.standard_normal(real.shape).astype(np.float32)
             for _ in range(args.copies)]  # fmt: skip
    grown = np.concatenate([real, *noisy])
    grown /= np.linalg.norm(grown, axis=1, keepdims=True)
    texts = read_queries(args.beir)
    queries = searcher.encoder.encode([texts[q] for q in sorted(read_qrels(args.beir, "test"))])

    for name, data in (("real", real), (f"real + {args.copies} synthetic copies", grown)):
        exact = faiss.IndexFlatIP(data.shape[1])
        exact.add(data)
        index = VectorIndex(data.shape[1])
        index.add(np.arange(len(data), dtype=np.int64), data)
        index.fit_to_size(exact_limit=1)
        lists, chosen = ivf_shape(len(data))
        recalls = {}
        for probe in sorted(p for p in {8, 16, 32, 64, 128, chosen} if p <= lists):
            index.index.nprobe = probe
            recalls[probe] = round(recall_at_10(index.index, exact, queries), 4)
        print(json.dumps({"vectors": len(data), "data": name, "lists": lists, "probe": chosen,
                          "recall_at_10": recalls}))  # fmt: skip


if __name__ == "__main__":
    main()
