"""The gate: the served model and the candidate scored on the same held-out queries, and the
decision to serve the candidate, a pure function of the two scores and the options."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.training.options import TrainingOptions
from indexer.training.pairs import Judgement
from searchapp.evaluation import Metrics, evaluate_beir, score_rankings
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database


@dataclass(frozen=True)
class GateDecision:
    """Whether to serve the candidate, and why, in words a person reads."""

    promote: bool
    reason: str


def decide(before: float, after: float, options: TrainingOptions) -> GateDecision:
    """Promote when nDCG@10 rose by at least ``min_gain``, or when forced."""
    gain = after - before
    if options.force:
        return GateDecision(True, f"forced (nDCG@10 change {gain:+.4f})")
    if gain >= options.min_gain:
        return GateDecision(
            True, f"nDCG@10 improved by {gain:+.4f} (needed {options.min_gain:+.4f})"
        )
    return GateDecision(
        False,
        f"nDCG@10 changed by {gain:+.4f}, less than the required {options.min_gain:+.4f}: "
        "the candidate is kept but not served",
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
