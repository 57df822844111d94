"""Models side by side: SciFact test nDCG@10, passages per second and query latency per backend.

The models this machine has, each as a home would start from it: the bundled all-MiniLM-L6-v2;
the same with CLS pooling (``--pooling cls``); and a smaller model made from it, its first three
layers (``--model FOLDER``, the folder saved here as sentence-transformers saves any model). For
each, SciFact is imported into a home of its own (the default backend) and its test split scored,
dense and hybrid, with the code ``searchapp eval`` runs. Then each backend embeds the same sample
of the home's chunks (passages per second, alternating rounds: ratios, not lone times) and answers
queries one at a time (the query encoder's p50 latency, one thread). Results: docs/models.json,
docs/models.png, and the table printed.

    python bench/models.py [--beir ../shared/datasets/scifact] [--work /tmp/searchapp-models]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from sqlalchemy import select

from indexer.beir_import import import_beir
from searchapp.base_models import ModelChoice, start_home
from searchapp.beir import read_queries
from searchapp.encoder import bundled_model_path, requested_spec
from searchapp.evaluation import evaluate_beir
from searchapp.progress import TerminalProgress
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Chunk
from searchapp.versions import encoder_for, require_active_generation

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "models.json"
BACKENDS = ("torch", "onnx", "openvino")


def three_layer_model(folder: Path) -> Path:
    """The bundled model's first three layers, mean pooling and Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(bundled_model_path()), max_seq_length=256)
    layers = transformer.auto_model.encoder.layer
    transformer.auto_model.encoder.layer = type(layers)(list(layers)[:3])
    transformer.auto_model.config.num_hidden_layers = 3
    model = SentenceTransformer(modules=[transformer, Pooling(384), Normalize()])
    model.save(str(folder))
    return folder


def measure(home: Path, beir: Path, sample: int, rounds: int) -> dict:
    """Scores, speeds and latencies of the home's served model."""
    settings = Settings.load(home)
    db = Database(settings.database_url)
    scores = evaluate_beir(Searcher(settings, db), beir, "test", ["dense", "hybrid"])
    with db.read() as session:
        _, version = require_active_generation(session)
        texts = list(session.scalars(select(Chunk.text).order_by(Chunk.id).limit(sample)))
    queries = list(read_queries(beir).values())[:100]
    speed: dict[str, list[float]] = {backend: [] for backend in BACKENDS}
    latency: dict[str, float] = {}
    for backend in BACKENDS:  # made and warmed before any clock starts
        encoder_for(version, backend, settings.backends_dir).encode(texts[:8])
    for _ in range(rounds):
        for backend in BACKENDS:
            encoder = encoder_for(version, backend, settings.backends_dir)
            started = time.perf_counter()
            encoder.encode(texts)
            speed[backend].append(len(texts) / (time.perf_counter() - started))
    for backend in BACKENDS:
        encoder = encoder_for(version, backend, settings.backends_dir, threads=1)
        times = []
        for query in queries:
            started = time.perf_counter()
            encoder.encode([query], role="query")
            times.append((time.perf_counter() - started) * 1000)
        latency[backend] = round(statistics.median(times), 2)
    return {
        "version": version.name, "dimension": version.dimension, "pooling": version.pooling,
        "ndcg@10": {mode: round(m.ndcg_at_10, 4) for mode, m in scores.items()},
        "passages_per_s": {b: round(statistics.median(v), 1) for b, v in speed.items()},
        "query_p50_ms": latency,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--work", type=Path, default=Path("/tmp/searchapp-models"))
    parser.add_argument("--sample", type=int, default=512, help="chunks timed per backend")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from the JSON")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads(RESULTS.read_text()))
        return
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    three_layer = three_layer_model(args.work / "minilm-first-3-layers")
    arms = {
        "all-MiniLM-L6-v2 (bundled)": {},
        "all-MiniLM-L6-v2, CLS pooling": {"pooling": "cls"},
        "its first 3 layers (--model FOLDER)": {"model": str(three_layer)},
    }
    results = {}
    for name, choice in arms.items():
        settings = Settings.load(args.work / f"home-{len(results)}")
        db = Database(settings.database_url, lock_path=settings.write_lock_path)
        if "model" in choice:
            start_home(settings, db, ModelChoice(choice["model"]))
        started = time.perf_counter()
        import_beir(settings, args.beir, spec=requested_spec(choice.get("pooling"), None),
                    progress=TerminalProgress())  # fmt: skip
        results[name] = {"index_seconds": round(time.perf_counter() - started, 1),
                         **measure(settings.home, args.beir, args.sample, args.rounds)}  # fmt: skip
        print(json.dumps({name: results[name]}), flush=True)
    payload = {"command": "python bench/models.py", "beir": str(args.beir), "models": results}
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    plot(payload)
    print(table(payload))


def table(payload: dict) -> str:
    lines = [
        "| model | dim | dense nDCG@10 | hybrid nDCG@10 | passages/s torch / onnx / openvino "
        "| query p50 ms torch / onnx / openvino |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in payload["models"].items():
        speed = " / ".join(f"{row['passages_per_s'][b]:.1f}" for b in BACKENDS)
        latency = " / ".join(f"{row['query_p50_ms'][b]:.1f}" for b in BACKENDS)
        lines.append(f"| {name} | {row['dimension']} | {row['ndcg@10']['dense']:.4f} | "
                     f"{row['ndcg@10']['hybrid']:.4f} | {speed} | {latency} |")  # fmt: skip
    return "\n".join(lines)


def plot(payload: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(payload["models"])
    rows = [payload["models"][n] for n in names]
    figure, (quality, speed) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.38
    positions = range(len(names))
    for offset, mode in ((-width / 2, "dense"), (width / 2, "hybrid")):
        quality.barh([p + offset for p in positions], [r["ndcg@10"][mode] for r in rows],
                     height=width, label=mode)  # fmt: skip
    quality.set_yticks(list(positions), names)
    quality.set_xlabel("SciFact test nDCG@10")
    quality.legend()
    quality.set_title("Quality")
    step = 0.8 / len(BACKENDS)
    for i, backend in enumerate(BACKENDS):
        where = [p - 0.4 + step * (i + 0.5) for p in positions]
        values = [r["passages_per_s"][backend] for r in rows]
        speed.barh(where, values, height=step, label=backend)
    speed.set_yticks(list(positions), [""] * len(names))
    speed.set_xlabel("passages per second (2 cores)")
    speed.legend()
    speed.set_title("Embedding speed")
    figure.tight_layout()
    figure.savefig(REPO / "docs" / "models.png", dpi=120)


if __name__ == "__main__":
    main()
