"""The gate: the served model and the candidate scored on the same held-out queries, and the
decision to serve the candidate, a pure function of their per-query scores and the options.

The candidate is served when it is better with confidence: a paired bootstrap over the held-out
queries' nDCG@10 changes gives an interval for the mean change, and the whole interval must lie
above ``min_gain`` (0 by default). With fewer than ``min_queries`` held-out queries nothing is
decided and the served version stays; the report says so, and ``--force`` serves it anyway.
It is refused, whatever its own held-out queries say, when it is worse with the same confidence on
the standing evaluation set: the queries earlier versions held out (``history.standing_set``).

The held-out queries are chosen by document (``split_by_document``): no training query cites
their documents, so this asks whether the candidate ranks documents it never saw better. The
``two-part`` gate asks what a user who gave 👍 to documents expects instead: better with confidence
on held-out queries about documents it trained on (``split_seen``), and, so that it cannot win by
memorising them alone, not worse with confidence on the by-document queries. With ``--folds``
(``cross_validation``) every judged query is held out once and the two-part gate pools both
kinds: better with confidence on all of them, worse with confidence on neither.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from indexer.training.options import TrainingOptions
from indexer.training.pairs import Judgement, query_groups, relevant_documents
from searchapp.evaluation import Metrics, evaluate_beir, score_rankings
from searchapp.search import DENSE_WEIGHT, Searcher
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

    def describe(self, queries: str = "held-out queries") -> str:
        return (
            f"nDCG@10 {self.gain:+.4f} on {self.queries} {queries} "
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
    standing: Comparison | None = None  # on the queries earlier versions held out
    seen: Comparison | None = None  # two-part gate: on held-out queries about trained documents
    pooled: Comparison | None = None  # two-part with --folds: on every judged query, both parts
    passed: bool = False  # whether the gate itself would serve it (also when forced)
    undecided: bool = False  # too few held-out queries to decide anything
    # Not better with confidence, yet a gain: how many times as many judged queries would make
    # a gain of this size certain (the interval narrows as one over the root of their number).
    more: float | None = None


def decide(
    before: Metrics,
    after: Metrics,
    options: TrainingOptions,
    standing: tuple[Metrics, Metrics] | None = None,
    seen: tuple[Metrics, Metrics] | None = None,
) -> GateDecision:
    """Promote when the candidate is better with confidence: the whole interval of its mean
    per-query gain lies above ``min_gain`` (0: any gain), and it is not worse with confidence on
    the standing set (``standing``: the served model's and the candidate's scores there). Too few
    held-out queries to tell decides nothing and keeps the served version; ``force`` promotes
    regardless. With ``seen`` (the two-part gate: both models' scores on held-out queries about
    documents the candidate trained on), see ``_decide``."""
    decision, said = _decide(before, after, options, standing, seen)
    decision = dataclasses.replace(decision, passed=decision.promote)
    if options.force:  # served; the report still says whether the gate would have served it
        return dataclasses.replace(decision, promote=True, reason=f"forced: {said}")
    return decision


def _decide(
    before: Metrics,
    after: Metrics,
    options: TrainingOptions,
    standing: tuple[Metrics, Metrics] | None,
    seen: tuple[Metrics, Metrics] | None,
) -> tuple[GateDecision, str]:
    """The gate's own decision (``force`` aside) and what it measured, in words: the
    by-document gate, or with ``seen`` the two-part one: better with confidence on the
    held-out queries about documents the candidate trained on, and not worse with confidence on
    the by-document ones. With ``--folds`` every judged query is held out once and the two parts
    are pooled: better with confidence on all of them, and worse with confidence on neither part.
    Pairs whose by-document held-out answers neither model finds are then refused: what the
    candidate learnt of them cannot be checked."""
    unseen = compare(before.per_query, after.per_query, options.confidence, options.seed)
    kept = None
    if standing is not None:
        served, candidate = standing
        kept = compare(served.per_query, candidate.per_query, options.confidence, options.seed)
    on_evaluation_set = options.eval_beir is not None  # its queries stand in for held-out ones
    which = "queries of the evaluation set" if on_evaluation_set else "held-out queries"
    better, said = unseen, unseen.describe(which)  # what the candidate must be better on
    on_seen = pooled = None
    if seen is not None:
        on_seen = compare(seen[0].per_query, seen[1].per_query, options.confidence, options.seed)
        others = (
            which
            if on_evaluation_set
            else "held-out queries about documents no training query cites"
        )
        which = "held-out queries about documents it trained on"
        better, said = on_seen, f"{on_seen.describe(which)}; {unseen.describe(others)}"
        if options.folds:  # every judged query held out once: both parts pooled
            pooled = compare({**before.per_query, **seen[0].per_query},
                             {**after.per_query, **seen[1].per_query},
                             options.confidence, options.seed)  # fmt: skip
            which = f"judged queries, each held out by one of {options.folds} folds"
            better, said = pooled, f"{pooled.describe(which)}: {said}"
    said += _standing_said(kept, options)
    not_served = "the candidate is kept but not served"

    def decision(
        promote: bool, reason: str, undecided: bool = False, more: float | None = None
    ) -> tuple[GateDecision, str]:
        made = GateDecision(promote, reason, unseen, kept, on_seen, pooled, undecided=undecided,
                            more=more)  # fmt: skip
        return made, said

    if better.queries < options.min_queries:
        enough = _enough(options, two_part=seen is not None)
        return decision(
            False,
            f"too few {which} to decide ({better.queries}, at least {options.min_queries} "
            f"needed{enough}): the served version stays and {not_served}; add pairs, or pass "
            f"--force. {said[0].upper()}{said[1:]}",
            undecided=True,
        )
    if _worse(kept, options):
        return decision(
            False,
            f"worse with {options.confidence:.0%} confidence on the queries earlier versions held "
            f"out, so it would forget what they learned: {said}; {not_served}",
        )
    unfound = _unfound(before, after, unseen)
    if seen is not None:
        if _worse(unseen, options):
            return decision(
                False,
                f"worse with {options.confidence:.0%} confidence on documents no training query "
                f"cites, so it would find the rest of the collection worse: {said}; {not_served}",
            )
        if pooled is not None and _worse(on_seen, options):
            return decision(
                False,
                f"worse with {options.confidence:.0%} confidence on queries about documents it "
                f"trained on: {said}; {not_served}",
            )
        if unfound:
            return decision(False, f"not checkable: {said}; {not_served}{unfound}")
    if better.low > options.min_gain:
        return decision(True, f"better: {said}")
    margin = better.gain - options.min_gain
    return decision(
        False,
        f"not better with {options.confidence:.0%} confidence: {said}; {not_served}{unfound}",
        more=((better.high - better.low) / 2 / margin) ** 2 if margin > 0 and not unfound else None,
    )


def _worse(comparison: Comparison | None, options: TrainingOptions) -> bool:
    """Worse with confidence, on enough queries to tell."""
    return (
        comparison is not None and comparison.queries >= options.min_queries and comparison.high < 0
    )


# Below this held-out nDCG@10 for both models, the pairs' documents are as good as never found.
UNFOUND_NDCG = 0.05


def _unfound(before: Metrics, after: Metrics, comparison: Comparison) -> str:
    """A hint when neither model finds the held-out pairs' documents: pairs whose documents do
    not answer their queries (shuffled, or pointing at the wrong files) teach nothing."""
    if comparison.queries and max(before.ndcg_at_10, after.ndcg_at_10) < UNFOUND_NDCG:
        return (
            f". Neither the served model nor the candidate finds the held-out pairs' documents "
            f"(nDCG@10 {before.ndcg_at_10:.2f} and {after.ndcg_at_10:.2f}): check that each "
            "pair's document answers its query"
        )
    return ""


def _enough(options: TrainingOptions, two_part: bool) -> str:
    """How many judged queries would give the gate enough held-out ones."""
    if options.folds:  # every judged query is held out once: no share of them
        return f", which takes at least {options.min_queries} judged queries with --folds"
    if options.held_out <= 0 or (options.eval_beir is not None and not two_part):
        return ""
    needed = math.ceil(options.min_queries / options.held_out)
    about = ", some of them about the same documents" if two_part else ""
    share = f"{options.held_out:.0%}"
    return f", which takes about {needed} judged queries{about} with {share} held out"


def judgements_needed(
    judgements: Iterable[Judgement], options: TrainingOptions, decision: GateDecision
) -> int | None:
    """How many judged queries the gate would need: to decide at all, where it had too few, or
    to be sure of a gain the size of this one, where it was not; None where it was decided
    otherwise (served, or refused for harm or for no gain) or where more judgements would not
    help (gated on ``--eval-beir``'s queries alone)."""
    judged = len(relevant_documents(judgements))
    if decision.more is not None and not options.eval_beir:
        return max(judged + 1, math.ceil(judged * decision.more))
    return _to_decide(judgements, options) if decision.undecided else None


def _to_decide(judgements: Iterable[Judgement], options: TrainingOptions) -> int | None:
    """How many judged queries the gate needs before it can decide (``min_queries`` of them held
    out), or None where judging more would not help (gated on ``--eval-beir``'s queries alone).

    The by-document gate holds out ``held_out`` of the queries. The two-part gate also needs
    queries about documents other judged queries cite, one per such group of queries: their share
    among these judgements is how fast the groups come, where there are any yet. With ``--folds``
    every judged query is scored: by document those no other query shares a document with; the
    two-part gate pools them all."""
    two_part = options.gate == "two-part"
    if (options.held_out <= 0 and not options.folds) or (options.eval_beir and not two_part):
        return None
    judged = len(relevant_documents(judgements))
    groups = query_groups(judgements)
    if options.folds:  # every query is scored (two-part: both parts pooled)
        grouped = sum(len(group) for group in groups if len(group) > 1) / max(judged, 1)
        share = 1.0 if two_part else (1.0 - grouped) or options.held_out or 0.1
    else:
        share = options.held_out
        if two_part and judged:
            shared = sum(len(group) > 1 for group in groups)
            share = min(share, shared / judged) or share
    return max(judged + 1, math.ceil(options.min_queries / share))


def _standing_said(kept: Comparison | None, options: TrainingOptions) -> str:
    if kept is None or not kept.queries:
        return ""
    if kept.queries < options.min_queries:
        return (
            f"; {kept.queries} queries earlier versions held out, too few to judge forgetting "
            f"(nDCG@10 {kept.gain:+.4f})"
        )
    return f"; on the queries earlier versions held out: {kept.describe()}"


def evaluate_generation(
    settings: Settings,
    db: Database,
    generation_id: int,
    held_out: list[Judgement],
    options: TrainingOptions,
) -> Metrics:
    """Dense nDCG@10 etc. of one generation on the held-out queries (or the named BEIR split)."""
    if options.eval_beir is not None:
        searcher = Searcher(settings, db, generation_id=generation_id)
        return evaluate_beir(searcher, options.eval_beir, options.eval_split, ["dense"])["dense"]
    return score_judgements(settings, db, generation_id, held_out)


def _qrels(judgements: Iterable[Judgement]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for j in judgements:
        if j.relevant_document:
            qrels.setdefault(j.query, {})[str(j.doc_id)] = 1
    return qrels


def _score(
    searcher: Searcher, qrels: dict[str, dict[str, int]], mode: str, weight: float | None = None
) -> Metrics:
    queries = sorted(qrels)
    if not queries:  # none held out (forced): nothing to compare, which the gate then says
        return Metrics(0.0, 0.0, 0.0, 0, per_query={})
    answers = searcher.search_many(queries, k=100, mode=mode, dense_weight=weight)
    rankings = {q: [str(r.doc_id) for r in a] for q, a in zip(queries, answers, strict=True)}
    return score_rankings(rankings, qrels)


def score_judgements(
    settings: Settings, db: Database, generation_id: int, judgements: list[Judgement]
) -> Metrics:
    """Dense nDCG@10 etc. of one generation on the queries of ``judgements`` (their relevant
    indexed documents are the answers)."""
    searcher = Searcher(settings, db, generation_id=generation_id)
    return _score(searcher, _qrels(judgements), "dense")


# The hybrid blend weights a version's fit tries: the dense ranking's share.
BLEND_WEIGHTS = tuple(round(0.3 + 0.05 * step, 2) for step in range(11))  # 0.3 .. 0.8


def fit_blend(
    settings: Settings,
    db: Database,
    generation_id: int,
    judgements: list[Judgement],
    confidence: float = 0.95,
) -> tuple[float, dict[float, float]]:
    """The hybrid blend weight for a version, from the queries of ``judgements``, which it was
    not trained on: the one with the best nDCG@10 there, if it beats the default with
    ``confidence`` (the gate's paired bootstrap), else the default. A weight read off a few
    dozen queries is mostly noise (on SciFact the best of 81 held-out queries, 0.6, scored 0.006
    below the default on the test split). Returns the weight and the nDCG@10 of every weight."""
    searcher = Searcher(settings, db, generation_id=generation_id)
    qrels = _qrels(judgements)
    scored = {w: _score(searcher, qrels, "hybrid", w) for w in BLEND_WEIGHTS}
    return choose_weight(scored, confidence), {w: m.ndcg_at_10 for w, m in scored.items()}


def choose_weight(scored: Mapping[float, Metrics], confidence: float) -> float:
    """The weight with the best nDCG@10 (ties: the nearest the default), if it beats the default
    (``DENSE_WEIGHT``, which ``scored`` must hold) with ``confidence``; else the default."""
    best = max(scored, key=lambda w: (scored[w].ndcg_at_10, -abs(w - DENSE_WEIGHT)))
    if best == DENSE_WEIGHT:
        return best
    versus = compare(scored[DENSE_WEIGHT].per_query, scored[best].per_query, confidence)
    return best if versus.low > 0 else DENSE_WEIGHT
