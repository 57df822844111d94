"""A store of N chunks, built through the store's own API, then searched: latency and recall.

Text: sentences of real SciFact abstracts recombined into chunks. Vectors: the real embeddings
of SciFact's chunks (from a home indexed with ``searchapp index --beir``) as far as they go, and
beyond them synthetic ones (a real vector plus Gaussian noise of 0.05 per component, renormalised),
counted in the output as ``synthetic_vectors``. Queries: SciFact's 300 test queries, each answered
by ``Searcher.search`` in a fresh process with the model loaded (query encoding included).

Prints one JSON object: chunks, build_seconds, index_kind, recall_at_10 (dense, against exact
search over the same vectors), ``dense``, ``keyword`` and ``hybrid`` each with p50_ms and p95_ms,
peak_rss_mb (the searching process, up to its last query), recall_peak_rss_mb (the same process
after it has also loaded every vector and an exact index of them, to measure recall) and
build_peak_rss_mb.

    python bench/scale.py --chunks 100000 --from /tmp/scifact [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

REPO = Path(__file__).resolve().parents[1]
BATCH = 2_000
RESULTS = REPO / "docs" / "scale.json"
CHUNKS_PER_DOCUMENT = 2


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited through
    fork and exec from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def build(args: argparse.Namespace) -> dict[str, object]:
    from indexer.chunking import TextChunk
    from indexer.pipeline import IndexWriter, SourceDocument, get_or_create_source
    from searchapp.settings import Settings
    from searchapp.store.database import Database
    from searchapp.store.schema import Chunk, Embedding, IndexGeneration

    source = Settings.load(args.source, create=False)
    with Database(source.database_url).read() as session:
        generation = session.scalars(
            select(IndexGeneration).where(IndexGeneration.status == "active")
        ).one()
        rows = session.execute(
            select(Chunk.text, Embedding.vector)
            .join(Embedding, Embedding.chunk_id == Chunk.id)
            .where(Embedding.generation_id == generation.id)
        ).all()
    texts = [text for text, _ in rows]
    real = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
    sentences = [s for text in texts for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 20]

    shutil.rmtree(args.work, ignore_errors=True)
    settings = Settings.load(args.work)
    if source.models_dir.is_dir():  # a fine-tuned model the source home serves
        shutil.copytree(source.models_dir, settings.models_dir, dirs_exist_ok=True)
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    with db.writer_lock(), IndexWriter(settings, db) as writer:
        source_id = get_or_create_source(db, "folder", "/scale-benchmark")
        for start in range(0, args.chunks, BATCH):
            count = min(BATCH, args.chunks - start)
            numbers = np.arange(start, start + count)
            vectors = real[numbers % len(real)].copy()
            synthetic = numbers >= len(real)
            noise = rng.standard_normal((int(synthetic.sum()), real.shape[1])).astype(np.float32)
            vectors[synthetic] += 0.05 * noise
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            picks = rng.integers(0, len(sentences), (count, 3))
            chunk_texts = [
                texts[n] if n < len(real) else " ".join(sentences[i] for i in pick)
                for n, pick in zip(numbers, picks, strict=True)
            ]
            documents = []
            for first in range(0, count, CHUNKS_PER_DOCUMENT):
                part = chunk_texts[first : first + CHUNKS_PER_DOCUMENT]
                uri = f"/scale-benchmark/doc-{start + first}.txt"
                document = SourceDocument(uri=uri, path=uri, external_id=None, title=part[0][:60],
                                          text="\n\n".join(part), file_type="text",
                                          content_hash=str(start + first))  # fmt: skip
                chunks = [TextChunk(t, 0, len(t)) for t in part]
                documents.append((document, chunks, vectors[first : first + len(part)]))
            writer.add_embedded(documents, source_id)
            print(f"\rbuilt {start + count} of {args.chunks} chunks", end="", file=sys.stderr)
    print(file=sys.stderr)
    return {
        "chunks": args.chunks,
        "real_vectors": min(args.chunks, len(real)),
        "synthetic_vectors": max(0, args.chunks - len(real)),
        "build_seconds": round(time.perf_counter() - started, 1),
        "build_peak_rss_mb": _peak_rss_mb(),
    }


def measure(args: argparse.Namespace) -> dict[str, object]:
    """In a fresh process: load the model and the index, then time the 300 queries per mode."""
    import faiss

    from searchapp.beir import read_qrels, read_queries
    from searchapp.search import Searcher
    from searchapp.settings import Settings
    from searchapp.store.vectors.base import fetch_vectors, live_chunk_ids

    texts = read_queries(args.beir)
    queries = [texts[q] for q in sorted(read_qrels(args.beir, "test"))]
    searcher = Searcher(Settings.load(args.work, create=False))
    searcher.search(queries[0], k=10, mode="hybrid")  # load the model and the index
    result: dict[str, object] = {"index_kind": searcher.vector_index.kind,
                                 "index_params": searcher.vector_index.params}  # fmt: skip
    for mode in ("dense", "keyword", "hybrid"):
        times = []
        for query in queries:
            started = time.perf_counter()
            searcher.search(query, k=10, mode=mode)
            times.append((time.perf_counter() - started) * 1000)
        result[mode] = {
            "p50_ms": round(float(np.percentile(times, 50)), 2),
            "p95_ms": round(float(np.percentile(times, 95)), 2),
        }
    result["peak_rss_mb"] = _peak_rss_mb()  # what serving these queries took
    vectors = searcher.encoder.encode(queries)
    _, found = searcher.vector_index.search(vectors, 10)
    with searcher.db.read() as session:
        generation_id = searcher.generation_id
        ids, matrix = fetch_vectors(session, generation_id, live_chunk_ids(session, generation_id),
                                    vectors.shape[1])  # fmt: skip
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(matrix.shape[1]))
    exact.add_with_ids(matrix, ids)
    _, truth = exact.search(vectors, 10)
    result["recall_at_10"] = round(
        float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])), 4
    )
    result["recall_peak_rss_mb"] = _peak_rss_mb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, required=True)
    parser.add_argument("--from", dest="source", type=Path, default=Path("/tmp/scifact"),
                        help="a home with SciFact indexed (real texts and vectors)")  # fmt: skip
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--work", type=Path, default=Path("/tmp/searchapp-scale"))
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--record", action="store_true",
                        help="add the result to docs/scale.json, redraw the plot")  # fmt: skip
    parser.add_argument("--plot-only", action="store_true", help="redraw docs/scale.png")
    args = parser.parse_args()
    if args.plot_only:
        plot()
        return
    if args.measure_only:
        print(json.dumps(measure(args)))
        return
    result = build(args)
    child = subprocess.run(
        [sys.executable, __file__, "--measure-only", "--chunks", str(args.chunks),
         "--work", str(args.work), "--beir", str(args.beir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result.update(json.loads(child.stdout.splitlines()[-1]))
    if not args.json:
        print(f"command: python bench/scale.py --chunks {args.chunks}", file=sys.stderr)
    print(json.dumps(result))
    if args.record:
        recorded = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
        recorded["runs"] = [r for r in recorded["runs"] if r["chunks"] != args.chunks]
        recorded["runs"] = sorted([*recorded["runs"], result], key=lambda r: r["chunks"])
        RESULTS.write_text(json.dumps(recorded, indent=2) + "\n")
        plot()


def plot() -> None:
    """docs/scale.png: p50 latency of each mode against the number of chunks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = json.loads(RESULTS.read_text())["runs"]
    sizes = [r["chunks"] for r in runs]
    figure, axes = plt.subplots(figsize=(6, 3.6))
    for mode in ("dense", "keyword", "hybrid"):
        axes.plot(sizes, [r[mode]["p50_ms"] for r in runs], marker="o", label=f"{mode} p50")
    for size, run in zip(sizes, runs, strict=True):
        label = f"{run['index_kind']}, recall@10 {run['recall_at_10']}"
        axes.annotate(label, (size, run["dense"]["p50_ms"]), xytext=(0, -14),
                      textcoords="offset points", fontsize=7, ha="center")  # fmt: skip
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("chunks")
    axes.set_ylabel("ms per query (model loaded)")
    axes.set_title("Search latency against store size (bench/scale.py)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(REPO / "docs" / "scale.png", dpi=110)


if __name__ == "__main__":
    main()
