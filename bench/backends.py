"""Encoder backends side by side: speed, SciFact test nDCG@10 (dense) and cosine to fp32.

One process, one run: the SciFact corpus is imported once with PyTorch fp32 (the reference
generation); each other backend then re-embeds every chunk into a generation of its own through
the product's own path (``start_generation`` + ``embed_missing``), and is scored with the code
``searchapp eval`` runs. Speed is passages per second on the same sample of chunks, for every
backend, measured alternately in this run (ratios, not lone times). Results: docs/backends.json,
and the table printed.

    python bench/backends.py [--beir ../shared/datasets/scifact] [--work /tmp/backends]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from indexer.beir_import import import_beir
from indexer.generations import activate, embed_missing, start_generation
from searchapp.evaluation import evaluate_beir
from searchapp.progress import TerminalProgress
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Chunk, Embedding, ModelVersion
from searchapp.versions import encoder_for

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8", "openvino")
RESULTS = REPO / "docs" / "backends.json"


def _vectors(db: Database, generation_id: int) -> dict[int, np.ndarray]:
    with db.read() as session:
        rows = session.execute(
            select(Embedding.chunk_id, Embedding.vector).where(
                Embedding.generation_id == generation_id
            )
        ).all()
    return {chunk_id: np.frombuffer(blob, dtype=np.float32) for chunk_id, blob in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--work", type=Path, default=Path("/tmp/searchapp-backends"))
    parser.add_argument("--sample", type=int, default=512, help="chunks timed per backend")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from the JSON")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads(RESULTS.read_text()))
        return

    shutil.rmtree(args.work, ignore_errors=True)
    # Each backend end to end: its queries too run on it (see bench/query_backends.py).
    settings = Settings(home=args.work, database_url=f"sqlite:///{args.work / 'searchapp.db'}",
                        backend="torch", query_backend="generation")  # fmt: skip
    args.work.mkdir(parents=True)
    import_beir(settings, args.beir, progress=TerminalProgress())
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    with db.read() as session:
        version = session.scalars(select(ModelVersion)).one()
        texts = [
            text
            for (text,) in session.execute(
                select(Chunk.text).order_by(Chunk.id).limit(args.sample)
            ).all()
        ]
    reference = _vectors(db, 1)

    encoders = {b: encoder_for(version, b, settings.backends_dir) for b in BACKENDS}
    for encoder in encoders.values():
        encoder.encode(texts[:32])  # warm-up
    speed: dict[str, float] = {b: 0.0 for b in BACKENDS}
    for _ in range(args.rounds):  # alternately, so that a busy moment hits every backend
        for backend, encoder in encoders.items():
            started = time.perf_counter()
            encoder.encode(texts)
            speed[backend] = max(speed[backend], len(texts) / (time.perf_counter() - started))

    results: dict[str, dict[str, float]] = {}
    for backend in BACKENDS:
        if backend == "torch":
            generation_id = 1
        else:
            generation = start_generation(db, version, backend)
            embed_missing(db, settings, generation, encoders[backend], progress=TerminalProgress())
            generation_id = generation.id
        activate(db, generation_id)
        metrics = evaluate_beir(Searcher(settings, db), args.beir, "test", ["dense"])["dense"]
        vectors = _vectors(db, generation_id)
        cosines = np.array([float(vectors[i] @ v) for i, v in reference.items()])
        results[backend] = {
            "passages_per_second": round(speed[backend], 1),
            "speedup": round(speed[backend] / speed["torch"], 2),
            "ndcg@10": round(metrics.ndcg_at_10, 4),
            "ndcg_change": round(metrics.ndcg_at_10 - results.get("torch", {}).get(
                "ndcg@10", metrics.ndcg_at_10), 4),
            "cosine_min": round(float(cosines.min()), 4),
            "cosine_mean": round(float(cosines.mean()), 5),
        }  # fmt: skip
    payload = {
        "command": "python bench/backends.py",
        "chunks": len(reference),
        "sample": len(texts),
        "results": results,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    plot(payload)
    print(f"{'backend':<11} {'passages/s':>10} {'speed-up':>8} {'nDCG@10':>8} {'Δ':>7} "
          f"{'cos min':>8} {'cos mean':>9}")  # fmt: skip
    for backend, r in results.items():
        print(f"{backend:<11} {r['passages_per_second']:>10} {r['speedup']:>8} "
              f"{r['ndcg@10']:>8} {r['ndcg_change']:>+7.4f} {r['cosine_min']:>8} "
              f"{r['cosine_mean']:>9}")  # fmt: skip


def plot(payload: dict) -> None:
    """docs/backends.png: speed-up over PyTorch fp32 beside the change in nDCG@10."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(payload["results"])
    rows = [payload["results"][name] for name in names]
    figure, (speed, quality) = plt.subplots(1, 2, figsize=(9, 3.4))
    speed.bar(names, [r["speedup"] for r in rows], color="#4c72b0")
    speed.axhline(1.0, color="grey", linewidth=0.8)
    speed.set_title("encoding speed-up over PyTorch fp32")
    quality.bar(names, [r["ndcg_change"] for r in rows], color="#dd8452")
    quality.axhline(-0.005, color="red", linewidth=0.8, linestyle="--", label="-0.005 limit")
    quality.set_ylim(-0.01, 0.005)
    quality.set_title("SciFact test nDCG@10 change (dense)")
    quality.legend(loc="lower left", fontsize=8)
    for axes in (speed, quality):
        axes.tick_params(axis="x", labelsize=8)
    figure.suptitle(f"Encoder backends ({payload['chunks']} SciFact chunks, 2 CPU cores)")
    figure.tight_layout()
    figure.savefig(REPO / "docs" / "backends.png", dpi=110)


if __name__ == "__main__":
    main()
