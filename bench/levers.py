"""Issue 12's quality levers, each measured where the gate looks (the held-out train queries) and
on SciFact's test split, and the gate's decision on each.

Each lever starts from a copy of one home holding the SciFact corpus indexed with the untuned
model (``--base``) and runs the product's own ``retrain`` on the train split (``force``, so that the
test split can be scored on every candidate; the gate's own decision is recorded beside it). Then
it scores the test split: dense, and hybrid both with the blend weight fitted on the held-out
queries (what is served) and with the default 0.5. Results accumulate in docs/levers.json (the run
resumes where it stopped); the table goes to docs/benchmarks.md by hand. A lever takes 25-35
minutes on two CPU cores.

    python bench/levers.py --base /tmp/scifact-untuned [--beir ../shared/datasets/scifact] \\
        [--only default negatives-3-hybrid]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from indexer.training.options import PairSources, TrainingOptions
from indexer.training.retrain import retrain
from searchapp.beir import read_qrels, read_queries
from searchapp.evaluation import evaluate_beir, score_rankings
from searchapp.progress import TerminalProgress
from searchapp.search import DENSE_WEIGHT, Searcher
from searchapp.settings import Settings

REPO = Path(__file__).resolve().parents[1]
LEVERS: dict[str, dict[str, object]] = {
    "default": {},
    "hybrid-mining-false-negative-0.95": {"mine_from": "hybrid", "false_negative": 0.95},
    "false-negative-0.95": {"false_negative": 0.95},
    "negatives-3-hybrid": {"negatives_per_query": 3, "mine_from": "hybrid", "false_negative": 0.95},
    "negatives-3": {"negatives_per_query": 3},
    "hybrid-mining": {"mine_from": "hybrid"},
    "held-out-0.2": {"held_out": 0.2},
}


def hybrid_at(searcher: Searcher, beir: Path, weight: float) -> float:
    """Test nDCG@10 of hybrid search with the blend weighing dense by ``weight``."""
    qrels, queries = read_qrels(beir, "test"), read_queries(beir)
    ids = sorted(qrels)
    answers = searcher.search_many([queries[q] for q in ids], k=100, mode="hybrid",
                                   dense_weight=weight)  # fmt: skip
    rankings = {q: [r.path for r in a] for q, a in zip(ids, answers, strict=True)}
    return score_rankings(rankings, qrels).ndcg_at_10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="home with SciFact indexed")
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--work", type=Path, default=REPO / "bench/out/levers")
    parser.add_argument("--only", nargs="*", choices=sorted(LEVERS), help="levers to run")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    results_path = REPO / "docs" / "levers.json"  # tracked, so a later session can resume
    results: dict[str, dict] = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.only or LEVERS:
        if name in results:
            continue
        home = args.work / name
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(args.base, home)
        settings = Settings.load(home)
        options = TrainingOptions(force=True, **LEVERS[name])  # type: ignore[arg-type]
        started = time.perf_counter()
        with TerminalProgress() as progress:
            report = retrain(
                settings, PairSources(beir=args.beir, split="train"), options, progress=progress
            )
        searcher = Searcher(settings)
        test = evaluate_beir(searcher, args.beir, "test", ["dense", "hybrid"])
        gate = report.gate
        results[name] = {
            "options": LEVERS[name],
            "held_out": report.held_out,
            "held_out_ndcg": [report.before["ndcg@10"], report.after["ndcg@10"]],
            "gate": gate,
            "promoted_without_force": gate["interval"][0] > options.min_gain  # type: ignore[index]
            and gate["queries"] >= options.min_queries,  # type: ignore[operator]
            "dense_weight": report.dense_weight,
            "test_dense": test["dense"].ndcg_at_10,
            "test_hybrid": test["hybrid"].ndcg_at_10,
            "test_hybrid_at_default_weight": hybrid_at(searcher, args.beir, DENSE_WEIGHT),
            "seconds": round(time.perf_counter() - started),
        }
        results_path.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps({name: results[name]}, indent=2), flush=True)


if __name__ == "__main__":
    main()
