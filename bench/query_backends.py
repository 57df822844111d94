"""Query backends side by side over one indexed home: one query's encode time, and nDCG@10.

Every choice of ``--query-backend`` embeds the 300 SciFact test queries one at a time (after a
warm-up, alternately, best of two rounds: ratios, not lone times), and then answers them through
``searchapp eval``'s code in dense and hybrid mode, against the same documents' vectors. Cosine:
each query's vector against the fp32 export's. Prints one JSON object; ``--record LABEL`` also
keeps it under LABEL in docs/query_backends.json.

    python bench/query_backends.py --home /tmp/sf-bf16 --record bundled
    python bench/query_backends.py --home /tmp/scifact --record fine-tuned
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from searchapp.backends import prepare_queries, query_backend
from searchapp.beir import read_qrels, read_queries
from searchapp.choices import QUERY_BACKEND
from searchapp.evaluation import evaluate_beir
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.versions import query_encoder_for, require_active_generation, spec_of

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "query_backends.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="a home with SciFact indexed")
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--record", metavar="LABEL", help="keep the result in the docs' JSON")
    args = parser.parse_args()

    settings = Settings.load(args.home, create=False)
    with Database(settings.database_url).read() as session:
        generation, version = require_active_generation(session)
    queries = read_queries(args.beir)
    texts = [queries[q] for q in sorted(read_qrels(args.beir, "test"))]
    encoders = {}
    for wanted in QUERY_BACKEND.values:
        prepare_queries(spec_of(version), generation.backend, version.fingerprint,
                        settings.backends_dir, wanted)  # fmt: skip
        assert query_backend(generation.backend, version.fingerprint, settings.backends_dir,
                             wanted) in (wanted, generation.backend)  # fmt: skip
        encoders[wanted] = query_encoder_for(version, generation.backend, settings.backends_dir,
                                             wanted)  # fmt: skip
    reference = encoders["onnx"].encode(texts)
    times: dict[str, list[float]] = {wanted: [] for wanted in encoders}
    for _ in range(2):
        for wanted, encoder in encoders.items():
            for text in texts[:20]:
                encoder.encode([text])
            spent = []
            for text in texts:
                started = time.perf_counter()
                encoder.encode([text])
                spent.append((time.perf_counter() - started) * 1000)
            if not times[wanted] or np.median(spent) < np.median(times[wanted]):
                times[wanted] = spent
    results = {}
    for wanted, encoder in encoders.items():
        cosines = (encoder.encode(texts) * reference).sum(axis=1)
        searcher = Searcher(dataclasses.replace(settings, query_backend=wanted))
        metrics = evaluate_beir(searcher, args.beir, "test", ("dense", "hybrid"))
        results[wanted] = {
            "runs_on": query_backend(generation.backend, version.fingerprint,
                                     settings.backends_dir, wanted),
            "encode_p50_ms": round(float(np.median(times[wanted])), 2),
            "encode_p95_ms": round(float(np.percentile(times[wanted], 95)), 2),
            "dense_ndcg@10": round(metrics["dense"].ndcg_at_10, 4),
            "hybrid_ndcg@10": round(metrics["hybrid"].ndcg_at_10, 4),
            "cosine_min": round(float(cosines.min()), 4),
        }  # fmt: skip
    payload = {
        "command": f"python bench/query_backends.py --home {args.home}",
        "generation_backend": generation.backend,
        "model_version": version.name,
        "queries": len(texts),
        "results": results,
    }
    print(json.dumps(payload, indent=2))
    if args.record:
        recorded = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        recorded[args.record] = payload
        RESULTS.write_text(json.dumps(recorded, indent=2) + "\n")


if __name__ == "__main__":
    main()
