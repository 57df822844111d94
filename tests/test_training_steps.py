"""The pure steps of training, without a model: the held-out split, the rows each loss is fed,
and the gate's decision."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from indexer.training.gate import choose_weight, compare, decide, judgements_needed
from indexer.training.losses import training_rows
from indexer.training.mining import MinedQuery
from indexer.training.options import TrainingOptions
from indexer.training.pairs import Judgement, PairSet, split_by_document, split_seen
from indexer.training.retrain import split_pairs
from searchapp.errors import InvalidOptionError
from searchapp.evaluation import Metrics
from searchapp.learning_curve import CURVE, curve_said, measured, summarise
from searchapp.versions import VersionRow, needed_said
from tests.conftest import REPO


def _judgements(queries: int) -> list[Judgement]:
    found = []
    for q in range(queries):
        found.append(Judgement(f"query {q}", f"passage {q}", 1.0, doc_id=q))
        found.append(Judgement(f"query {q}", f"wrong passage {q}", 0.0, doc_id=1000 + q))
    return found


def test_held_out_queries_are_wholly_on_one_side_and_stable() -> None:
    judgements = _judgements(40)
    train, held = split_by_document(judgements, 0.25, seed=13)
    train_queries, held_queries = {j.query for j in train}, {j.query for j in held}
    assert len(held_queries) == 10 and not train_queries & held_queries
    assert len(train) + len(held) == len(judgements)
    assert split_by_document(judgements, 0.25, seed=13) == (train, held)  # seeded: the same again
    assert {j.query for j in split_by_document(judgements, 0.25, seed=14)[1]} != held_queries


def test_only_queries_with_an_indexed_positive_can_be_held_out() -> None:
    plain = [Judgement(f"plain {i}", "a text positive", 1.0) for i in range(20)]
    _train, held = split_by_document(plain + _judgements(4), 0.5, seed=1)
    assert all(j.doc_id is not None for j in held)
    assert len({j.query for j in held}) == 2
    assert split_by_document(plain, 0.5) == (plain, [])  # none eligible: nothing held out


def test_a_fraction_keeps_at_least_one_query_on_each_side() -> None:
    _, held = split_by_document(_judgements(3), 0.01)
    assert len({j.query for j in held}) == 1
    train, _ = split_by_document(_judgements(3), 0.89)
    assert len({j.query for j in train}) == 1
    assert split_by_document(_judgements(5), 0.0)[1] == []


MINED = [
    MinedQuery("bees", [("bees make honey", 1.0), ("hives hold bees", 0.8)], [("coffee", 0.0)]),
    MinedQuery("no negative", [("a positive", 1.0)], []),
]


def test_triplet_losses_get_one_row_per_positive_with_a_negative() -> None:
    for loss in ("mnrl", "triplet"):
        rows = training_rows(loss, MINED)
        assert rows == {
            "anchor": ["bees", "bees"],
            "positive": ["bees make honey", "hives hold bees"],
            "negative": ["coffee", "coffee"],
        }


def test_several_negatives_become_columns_for_mnrl_and_rows_for_triplet() -> None:
    mined = [
        MinedQuery("bees", [("bees make honey", 1.0)], [("coffee", 0.0), ("telescopes", 0.0)]),
        MinedQuery("bread", [("knead the dough", 1.0)], [("espresso", 0.0)]),
    ]
    assert training_rows("mnrl", mined) == {
        "anchor": ["bees", "bread"],
        "positive": ["bees make honey", "knead the dough"],
        "negative": ["coffee", "espresso"],
        "negative_2": ["telescopes", "espresso"],  # a query with one negative repeats it
    }
    triplets = training_rows("triplet", mined)
    assert triplets["negative"] == ["coffee", "telescopes", "espresso"]
    assert triplets["anchor"] == ["bees", "bees", "bread"]


def test_pair_losses_get_labels_or_scores() -> None:
    contrastive = training_rows("contrastive", MINED)
    assert list(contrastive) == ["sentence1", "sentence2", "label"]
    assert contrastive["label"] == [1, 1, 0, 1]
    cosine = training_rows("cosine", MINED)
    assert cosine["score"] == [1.0, 0.8, 0.0, 1.0]
    assert cosine["sentence2"] == ["bees make honey", "hives hold bees", "coffee", "a positive"]
    with pytest.raises(InvalidOptionError, match="Unknown loss 'hinge'"):
        training_rows("hinge", MINED)


def _metrics(per_query: dict[str, float]) -> Metrics:
    mean = sum(per_query.values()) / len(per_query)
    return Metrics(mean, 0.0, 0.0, len(per_query), per_query=per_query)


def test_held_out_queries_share_no_relevant_document_with_training_queries() -> None:
    # Queries that cite the same documents, in chains: 0-1 share doc 0, 1-2 share doc 1, …
    judgements = [Judgement(f"q{i}", "p", 1.0, doc_id=i // 3) for i in range(60)]
    judgements += [Judgement(f"q{i}", "p", 1.0, doc_id=100 + i // 3 + 1) for i in range(60)]
    train, held = split_by_document(judgements, 0.25, seed=5)
    train_docs = {j.doc_id for j in train if j.score >= 0.5}
    held_docs = {j.doc_id for j in held if j.score >= 0.5}
    assert held and not train_docs & held_docs  # nothing to memorise
    assert not {j.query for j in train} & {j.query for j in held}
    assert split_by_document(judgements, 0.25, seed=5) == (train, held)  # stable


def test_one_document_cited_by_every_query_leaves_nothing_to_hold_out() -> None:
    judgements = [Judgement(f"q{i}", "p", 1.0, doc_id=7) for i in range(20)]
    assert split_by_document(judgements, 0.3) == (judgements, [])  # one group: all train


def test_queries_held_out_about_trained_documents_leave_their_documents_trained() -> None:
    # Groups of one, two and three queries sharing a document, and one query citing two.
    judgements = [Judgement(f"alone {i}", "p", 1.0, doc_id=i) for i in range(10)]
    judgements += [Judgement(f"pair {i}{s}", "p", 1.0, doc_id=100 + i) for i in range(8)
                   for s in "ab"]  # fmt: skip
    judgements += [Judgement(f"three {s}", "p", 1.0, doc_id=200) for s in "abc"]
    judgements += [Judgement("three b", "p", 1.0, doc_id=201)]  # cited by no other query
    judgements += [Judgement("pair 0a", "wrong", 0.0, doc_id=300)]
    train, seen = split_seen(judgements, 6, seed=3)
    assert len({j.query for j in seen}) == 6
    assert not {j.query for j in seen} & {j.query for j in train}  # whole queries move
    trained = {j.doc_id for j in train if j.score >= 0.5}
    for j in seen:
        assert not j.query.startswith("alone")  # a query whose document nothing else cites
        if j.score >= 0.5:
            assert j.doc_id in trained  # every relevant document stays trained
    assert "three b" not in {j.query for j in seen}  # its document 201 would go untrained
    groups = [j.query.rstrip("abc") for j in seen if j.score >= 0.5]
    assert len(groups) == len(set(groups))  # one query per group
    assert sorted([*train, *seen], key=repr) == sorted(judgements, key=repr)  # nothing lost
    assert split_seen(judgements, 6, seed=3) == (train, seen)  # seeded: the same again
    assert len({j.query for j in split_seen(judgements, 50, seed=3)[1]}) == 9  # all it can
    assert split_seen(judgements, 0) == (judgements, [])


def test_the_gate_promotes_only_a_gain_it_is_confident_of() -> None:
    before = {f"q{i}": 0.5 for i in range(40)}
    better = _metrics({q: 0.6 + 0.01 * (i % 5) for i, q in enumerate(before)})
    decision = decide(_metrics(before), better, TrainingOptions())
    assert decision.promote and decision.reason.startswith("better: nDCG@10 +0.1200 on 40")
    assert decision.comparison.wins == 40 and decision.comparison.low > 0.1

    # Half the queries a little better, half a little worse: no confident gain.
    noisy = _metrics({q: 0.5 + (0.05 if i % 2 else -0.04) for i, q in enumerate(before)})
    kept = decide(_metrics(before), noisy, TrainingOptions())
    assert not kept.promote and "not better with 95% confidence" in kept.reason
    assert kept.comparison.low < 0 < kept.comparison.high
    assert (kept.comparison.wins, kept.comparison.losses) == (20, 20)

    few = decide(_metrics(dict(list(before.items())[:4])),
                 _metrics({q: 0.9 for q in list(before)[:4]}), TrainingOptions())  # fmt: skip
    assert not few.promote and "too few held-out queries to decide (4" in few.reason
    assert "about 100 judged queries with 10% held out" in few.reason
    assert "Neither the served model" not in kept.reason
    # Pairs whose documents no model finds (shuffled, wrong files): the reason says so.
    lost = {f"q{i}": 0.02 * (i % 2) for i in range(40)}
    unfound = decide(_metrics(lost), _metrics({q: 0.02 - s for q, s in lost.items()}),
                     TrainingOptions())  # fmt: skip
    assert not unfound.promote and "Neither the served model nor the candidate" in unfound.reason
    assert "check that each pair's document answers its query" in unfound.reason
    forced = decide(_metrics(before), noisy, TrainingOptions(force=True))
    assert forced.promote and forced.reason.startswith("forced: nDCG@10 +0.0050")
    assert not forced.passed and decision.passed  # what the gate alone would have done
    assert decide(_metrics(before), better, TrainingOptions(force=True)).passed
    assert not decide(_metrics(before), better, TrainingOptions(min_gain=0.2)).promote


def test_a_gain_too_small_to_be_sure_of_says_how_many_judgements_would_be() -> None:
    judged = _judgements(40)
    before = {f"query {i}": 0.5 for i in range(40)}
    # +0.005 a query on average, with the spread of half better and half worse: not sure yet.
    noisy = _metrics({q: 0.5 + (0.05 if i % 2 else -0.04) for i, q in enumerate(before)})
    options = TrainingOptions(gate="by-document", folds=5)
    kept = decide(_metrics(before), noisy, options)
    assert not kept.promote and kept.more is not None and kept.more > 1
    half = (kept.comparison.high - kept.comparison.low) / 2
    needed = judgements_needed(judged, options, kept)
    assert needed == math.ceil(40 * (half / kept.comparison.gain) ** 2) > 40
    # The interval narrows as one over the root: with that many, it would clear zero.
    assert half * math.sqrt(40 / needed) <= kept.comparison.gain + 1e-9
    # No gain at all: more of the same judgements would not make one.
    worse = _metrics({q: 0.5 + (0.04 if i % 2 else -0.05) for i, q in enumerate(before)})
    flat = decide(_metrics(before), worse, options)
    assert flat.more is None and judgements_needed(judged, options, flat) is None
    # Served: nothing needed.
    better = _metrics({q: 0.7 for q in before})
    assert judgements_needed(judged, options, decide(_metrics(before), better, options)) is None


def test_the_bootstrap_interval_is_seeded_and_covers_the_mean() -> None:
    before = {f"q{i}": 0.0 for i in range(30)}
    after = {f"q{i}": (i % 7) / 10 for i in range(30)}
    first, again = compare(before, after, 0.9), compare(before, after, 0.9)
    assert first == again and first.low < first.gain < first.high
    assert compare(before, after, 0.99).low < first.low  # more confidence, a wider interval


def test_training_options_refuse_what_cannot_train() -> None:
    with pytest.raises(InvalidOptionError, match="batch size of at least 2"):
        TrainingOptions(batch_size=1)
    with pytest.raises(InvalidOptionError, match="held_out must be between"):
        TrainingOptions(held_out=0.95)
    with pytest.raises(InvalidOptionError, match="confidence must be"):
        TrainingOptions(confidence=1.0)


def test_a_candidate_worse_on_earlier_held_out_queries_is_refused() -> None:
    held_before = _metrics({f"q{i}": 0.5 for i in range(20)})
    held_after = _metrics({f"q{i}": 0.9 for i in range(20)})
    standing_before = _metrics({f"s{i}": 0.8 for i in range(20)})
    standing_worse = _metrics({f"s{i}": 0.8 - 0.3 * (i % 2) for i in range(20)})
    options = TrainingOptions()
    refused = decide(held_before, held_after, options, (standing_before, standing_worse))
    assert not refused.promote and "forget" in refused.reason
    assert refused.standing is not None and refused.standing.losses == 10
    kept = decide(held_before, held_after, options, (standing_before, standing_before))
    assert kept.promote and "queries earlier versions held out" in kept.reason
    few = _metrics({"s0": 0.8}), _metrics({"s0": 0.1})
    assert decide(held_before, held_after, options, few).promote  # one query cannot refuse
    assert "too few to judge forgetting" in decide(held_before, held_after, options, few).reason


def test_a_fitted_blend_weight_leaves_the_default_only_with_confidence() -> None:
    queries = [f"q{i}" for i in range(40)]
    default = _metrics({q: 0.5 for q in queries})
    noisy = _metrics({q: 0.5 + (0.06 if i % 2 else -0.05) for i, q in enumerate(queries)})
    clear = _metrics({q: 0.7 if i % 4 else 0.5 for i, q in enumerate(queries)})
    assert choose_weight({0.5: default, 0.6: noisy}, 0.95) == 0.5  # best by a hair: noise
    assert choose_weight({0.5: default, 0.6: noisy, 0.7: clear}, 0.95) == 0.7
    assert choose_weight({0.4: default, 0.5: default, 0.6: default}, 0.95) == 0.5  # a tie


def test_a_gate_on_an_evaluation_set_names_it_in_its_reason_and_in_the_versions_list() -> None:
    options = TrainingOptions(gate="by-document", eval_beir=Path("scifact"), eval_split="dev")
    before = _metrics({f"q{i}": 0.5 for i in range(30)})
    decision = decide(before, _metrics({f"q{i}": 0.7 for i in range(30)}), options)
    assert decision.promote and "+0.2000 on 30 queries of the evaluation set" in decision.reason
    assert "held-out" not in decision.reason  # nothing was held out of the pairs
    metrics = {
        "before": before.to_json(),
        "after": before.to_json(),
        "gate": decision.comparison.to_json(),
        "gate_rule": "by-document",
        "eval_set": "scifact (dev split)",
    }
    row = VersionRow(2, "mnrl", "active", "mean", None, "f", datetime.now(UTC), metrics)
    assert row.decided_on == (
        "by-document: +0.2000 (+0.2000..+0.2000) on 30 queries of the evaluation set "
        "scifact (dev split)"
    )


def test_the_two_part_gate_wants_trained_documents_found_and_the_rest_no_worse() -> None:
    options = TrainingOptions(gate="two-part")
    unseen = _metrics({f"u{i}": 0.6 for i in range(30)})
    seen_before = _metrics({f"s{i}": 0.5 for i in range(30)})
    seen_better = _metrics({f"s{i}": 0.7 + 0.01 * (i % 3) for i in range(30)})
    # Better on the trained documents, the others unchanged: served.
    served = decide(unseen, unseen, options, seen=(seen_before, seen_better))
    assert served.promote and served.reason.startswith("better: nDCG@10 +0.2100 on 30 held-out")
    assert "queries about documents it trained on" in served.reason
    assert "30 held-out queries about documents no training query cites" in served.reason
    assert served.seen is not None and served.seen.wins == 30 and served.comparison.ties == 30
    # The same gain, bought by ranking the rest of the collection worse: refused.
    worse = _metrics({f"u{i}": 0.6 - 0.2 * (i % 2) for i in range(30)})
    memoriser = decide(unseen, worse, options, seen=(seen_before, seen_better))
    assert not memoriser.promote and "worse with 95% confidence on documents no training" in (
        memoriser.reason
    )
    # No better on the trained documents: kept, not served.
    flat = decide(unseen, unseen, options, seen=(seen_before, seen_before))
    assert not flat.promote and flat.reason.startswith("not better with 95% confidence")
    # Too few queries about trained documents to tell, whatever the rest says.
    few = (_metrics({"s0": 0.1, "s1": 0.2}), _metrics({"s0": 0.9, "s1": 0.9}))
    undecided = decide(unseen, unseen, options, seen=few)
    assert not undecided.promote and "too few held-out queries about documents it trained on" in (
        undecided.reason
    )
    assert decide(unseen, unseen, TrainingOptions(gate="two-part", force=True), seen=few).promote
    # Held-out pairs neither model can answer (shuffled): nothing to check the gain against.
    lost = _metrics({f"u{i}": 0.0 for i in range(30)})
    unchecked = decide(lost, lost, options, seen=(seen_before, seen_better))
    assert not unchecked.promote and "check that each pair's document" in unchecked.reason
    # And forgetting what earlier versions learned refuses it as in the by-document gate.
    standing = _metrics({f"e{i}": 0.8 for i in range(20)})
    forgot = _metrics({f"e{i}": 0.8 - 0.3 * (i % 2) for i in range(20)})
    refused = decide(unseen, unseen, options, (standing, forgot), (seen_before, seen_better))
    assert not refused.promote and "forget" in refused.reason


def test_with_folds_the_two_part_gate_pools_both_kinds_of_held_out_query() -> None:
    options = TrainingOptions(gate="two-part", folds=5)
    # A few judgements: 6 queries share a document with another fold's, 24 do not. Neither part
    # alone could decide (6 < 10) or be sure of a small gain; all 30 together are.
    seen = (_metrics({f"s{i}": 0.5 for i in range(6)}), _metrics({f"s{i}": 0.6 for i in range(6)}))
    unseen = _metrics({f"u{i}": 0.5 for i in range(24)})
    lifted = _metrics({f"u{i}": 0.5 + 0.05 * (i % 3) for i in range(24)})
    served = decide(unseen, lifted, options, seen=seen)
    assert served.promote and served.pooled is not None and served.pooled.queries == 30
    assert served.reason.startswith("better: nDCG@10 +0.0600 on 30 judged queries, each held out")
    assert served.seen is not None and served.seen.queries == 6  # both parts still reported
    # Bought by ranking the by-document queries worse with confidence: refused.
    worse = _metrics({f"u{i}": 0.5 - 0.02 * (i % 2) for i in range(24)})
    many = (_metrics({f"s{i}": 0.3 for i in range(12)}),
            _metrics({f"s{i}": 0.9 for i in range(12)}))  # fmt: skip
    refused = decide(unseen, worse, options, seen=many)
    assert not refused.promote and "worse with 95% confidence on documents no training" in (
        refused.reason
    )
    # And worse with confidence on the queries about trained documents: refused as well.
    forgot = (_metrics({f"s{i}": 0.9 for i in range(12)}),
              _metrics({f"s{i}": 0.8 - 0.01 * (i % 2) for i in range(12)}))  # fmt: skip
    lifted_more = _metrics({f"u{i}": 0.9 for i in range(24)})
    memoriser = decide(unseen, lifted_more, options, seen=forgot)
    assert not memoriser.promote and "on queries about documents it trained on" in (
        memoriser.reason
    )
    # Too few judged queries in all: nothing decided, however it looks.
    tiny = decide(_metrics({"u0": 0.1}), _metrics({"u0": 0.9}), options,
                  seen=(_metrics({"s0": 0.1}), _metrics({"s0": 0.9})))  # fmt: skip
    assert tiny.undecided and "too few judged queries" in tiny.reason
    assert "at least 10 judged queries with --folds" in tiny.reason  # not a share held out
    assert "% held out" not in tiny.reason


def test_the_gate_is_one_of_two_and_two_part_holds_out_from_the_pairs() -> None:
    with pytest.raises(InvalidOptionError, match="Unknown gate 'both'"):
        TrainingOptions(gate="both")
    assert TrainingOptions().gate == "two-part"  # the default
    # With an evaluation set of its own, the two-part gate's other part is that set: from the
    # pairs it holds out only queries about trained documents.
    pairs = PairSet([Judgement(f"q{i}", "p", 1.0, doc_id=i // 2) for i in range(100)])
    train, by_document, seen = split_pairs(pairs, TrainingOptions(eval_beir=Path("beir")))
    assert not by_document and len({j.query for j in seen}) == 10
    assert {j.doc_id for j in seen} <= {j.doc_id for j in train}
    train, by_document, seen = split_pairs(pairs, TrainingOptions(gate="by-document"))
    assert not seen and len({j.query for j in by_document}) == 10


def test_a_training_too_small_to_decide_quotes_the_benchmarks_own_learning_curve() -> None:
    # What the product quotes is the benchmark's summary of its default runs, not a copy.
    results = json.loads((REPO / "docs" / "learning_curve.json").read_text())
    assert json.loads(CURVE.read_text()) == summarise(results)
    points = measured()
    assert len(points) >= 2 and all(p.runs >= 1 for p in points)
    first, second = points[0], points[1]
    # Between two measured sizes: both are quoted, the one below first.
    between = curve_said(first.judged + 1)
    assert between.startswith(f"on the SciFact benchmark, {first.judged} gave ")
    assert f" and {second.judged} gave {second.hybrid_gain:+.3f} (served in" in between
    assert f"{first.hybrid_gain:+.3f} hybrid nDCG@10" in between
    # Fewer than any measured, or more: the nearest one alone.
    assert curve_said(0).count(" gave ") == 1 and f"{first.judged} gave" in curve_said(0)
    assert curve_said(10**6).count(" gave ") == 1
    assert needed_said(12, 100).startswith(
        "12 judged queries; the gate needs about 100 to tell whether training helps; "
    )
    assert needed_said(12, None) == ""  # decided: nothing to say
