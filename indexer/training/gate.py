"""The gate: the served model and the candidate scored on the same held-out queries, and the
decision to serve the candidate, a pure function of their per-query scores and the options.

The candidate is served when it is better with confidence: a paired bootstrap over the held-out
queries' nDCG@10 changes gives an interval for the mean change, and the whole interval must lie
above ``min_gain`` (0 by default). With fewer than ``min_queries`` held-out queries nothing is
decided and the served version stays; the report says so, and ``--force`` serves it anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from indexer.training.options import TrainingOptions
from indexer.training.pairs import Judgement
from searchapp.evaluation import Metrics, evaluate_beir, score_rankings
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database

BOOTSTRAP_SAMPLES = 10_000


@dataclass(frozen=True)
class Comparison:
    """The candidate against the served model, query by query (nDCG@10 on the same queries)."""

    queries: int
    wins: int  # queries where the candidate ranks better
    losses: int
    ties: int
    gain: float  # mean per-query change
    low: float  # the confidence interval of the mean change (paired bootstrap)
    high: float
    confidence: float

    def to_json(self) -> dict[str, object]:
        return {
            "queries": self.queries, "wins": self.wins, "losses": self.losses, "ties": self.ties,
            "gain": round(self.gain, 6), "interval": [round(self.low, 6), round(self.high, 6)],
            "confidence": self.confidence,
        }  # fmt: skip

    def describe(self) -> str:
        return (
            f"nDCG@10 {self.gain:+.4f} on {self.queries} held-out queries "
            f"({self.confidence:.0%} interval {self.low:+.4f} to {self.high:+.4f}; "
            f"{self.wins} better, {self.losses} worse, {self.ties} the same)"
        )


def compare(
    before: Mapping[str, float], after: Mapping[str, float], confidence: float, seed: int = 13
) -> Comparison:
    """Paired comparison over the queries both were scored on: wins and losses, and a
    percentile bootstrap interval of the mean per-query change (resampling queries)."""
    queries = sorted(set(before) & set(after))
    change = np.array([after[q] - before[q] for q in queries], dtype=np.float64)
    if not len(change):
        return Comparison(0, 0, 0, 0, 0.0, 0.0, 0.0, confidence)
    rng = np.random.default_rng(seed)
    means = change[rng.integers(0, len(change), (BOOTSTRAP_SAMPLES, len(change)))].mean(axis=1)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Comparison(
        queries=len(change), wins=int((change > 1e-9).sum()), losses=int((change < -1e-9).sum()),
        ties=int((abs(change) <= 1e-9).sum()), gain=float(change.mean()), low=float(low),
        high=float(high), confidence=confidence,
    )  # fmt: skip


@dataclass(frozen=True)
class GateDecision:
    """Whether to serve the candidate, and why, in words a person reads."""

    promote: bool
    reason: str
    comparison: Comparison


def decide(before: Metrics, after: Metrics, options: TrainingOptions) -> GateDecision:
    """Promote when the candidate is better with confidence: the whole interval of its mean
    per-query gain lies above ``min_gain`` (0: any gain). Too few queries to tell decides
    nothing and keeps the served version; ``force`` promotes regardless."""
    comparison = compare(before.per_query, after.per_query, options.confidence, options.seed)
    said = comparison.describe()
    if options.force:
        return GateDecision(True, f"forced: {said}", comparison)
    if comparison.queries < options.min_queries:
        return GateDecision(
            False,
            f"too few held-out queries to decide ({comparison.queries}, at least "
            f"{options.min_queries} needed): the served version stays and the candidate is kept "
            f"but not served; add pairs, or pass --force. {said[0].upper()}{said[1:]}",
            comparison,
        )
    if comparison.low > options.min_gain:
        return GateDecision(True, f"better: {said}", comparison)
    return GateDecision(
        False,
        f"not better with {options.confidence:.0%} confidence: {said}; the candidate is kept "
        "but not served",
        comparison,
    )


def evaluate_generation(
    settings: Settings,
    db: Database,
    generation_id: int,
    held_out: list[Judgement],
    options: TrainingOptions,
) -> Metrics:
    """Dense nDCG@10 etc. of one generation on the held-out queries (or the named BEIR split)."""
    searcher = Searcher(settings, db, generation_id=generation_id)
    if options.eval_beir is not None:
        return evaluate_beir(searcher, options.eval_beir, options.eval_split, ["dense"])["dense"]
    qrels: dict[str, dict[str, int]] = {}
    for j in held_out:
        if j.doc_id is not None and j.score >= 0.5:
            qrels.setdefault(j.query, {})[str(j.doc_id)] = 1
    queries = sorted(qrels)
    answers = searcher.search_many(queries, k=100, mode="dense")
    rankings = {q: [str(r.doc_id) for r in a] for q, a in zip(queries, answers, strict=True)}
    return score_rankings(rankings, qrels)
