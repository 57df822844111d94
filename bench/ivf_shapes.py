"""IVF shapes at scale: latency and recall@10 of lists x probe over a large store's vectors.

Reads every vector of a store that ``bench/scale.py`` built (``--work``, a million chunks by
default), encodes SciFact's 300 test queries with the store's query encoder, and for each list
count builds an ``IndexIVFFlat`` (centroids scanned, as FAISS does by default) and times one query
at a time on both cores (``parallel_mode`` 1, as the product searches), per probe count. Recall@10
is against exact search over the same vectors. Prints one JSON object per (lists, probe).

    python bench/ivf_shapes.py [--work /tmp/searchapp-scale] [--lists 2048 4096 8192] \\
        [--probes 32 64 128]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np

from searchapp.beir import read_qrels, read_queries
from searchapp.search import Searcher
from searchapp.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/searchapp-scale"))
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--lists", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--probes", type=int, nargs="+", default=[32, 64, 128])
    args = parser.parse_args()

    texts = read_queries(args.beir)
    searcher = Searcher(Settings.load(args.work, create=False))
    queries = searcher.encoder.encode([texts[q] for q in sorted(read_qrels(args.beir, "test"))])
    assert searcher.vector_index is not None
    ids, vectors = searcher.vector_index.vectors()
    del searcher
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    truth = ids[exact.search(queries, 10)[1]]
    del exact

    sample = np.random.default_rng(0).permutation(len(vectors))
    for lists in args.lists:
        started = time.perf_counter()
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], lists, faiss.METRIC_INNER_PRODUCT
        )
        index.train(np.ascontiguousarray(vectors[sample[: lists * 64]]))
        index.add_with_ids(vectors, ids)
        build = round(time.perf_counter() - started, 1)
        index.parallel_mode = 1
        for probe in args.probes:
            index.nprobe = probe
            for query in queries[:20]:  # warm-up
                index.search(query[None], 30)
            times, found = [], []
            for query in queries:
                started = time.perf_counter()
                _, hits = index.search(query[None], 30)  # a dense page's 3 chunks a document
                times.append((time.perf_counter() - started) * 1000)
                found.append(hits[0][:10])
            recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
            print(json.dumps({"vectors": len(vectors), "lists": lists, "probe": probe,
                              "build_seconds": build, "p50_ms": round(float(np.median(times)), 2),
                              "recall_at_10": round(float(recall), 4)}), flush=True)  # fmt: skip
        del index


if __name__ == "__main__":
    main()
