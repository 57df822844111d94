"""The pure steps of training, without a model: the held-out split, the rows each loss is fed,
and the gate's decision."""

from __future__ import annotations

import pytest

from indexer.training.gate import decide
from indexer.training.losses import training_rows
from indexer.training.mining import MinedQuery
from indexer.training.options import TrainingOptions
from indexer.training.pairs import Judgement, split_by_query
from searchapp.errors import InvalidOptionError


def _judgements(queries: int) -> list[Judgement]:
    found = []
    for q in range(queries):
        found.append(Judgement(f"query {q}", f"passage {q}", 1.0, doc_id=q))
        found.append(Judgement(f"query {q}", f"wrong passage {q}", 0.0, doc_id=1000 + q))
    return found


def test_held_out_queries_are_wholly_on_one_side_and_stable() -> None:
    judgements = _judgements(40)
    train, held = split_by_query(judgements, 0.25, seed=13)
    train_queries, held_queries = {j.query for j in train}, {j.query for j in held}
    assert len(held_queries) == 10 and not train_queries & held_queries
    assert len(train) + len(held) == len(judgements)
    assert split_by_query(judgements, 0.25, seed=13) == (train, held)  # seeded: the same again
    assert {j.query for j in split_by_query(judgements, 0.25, seed=14)[1]} != held_queries


def test_only_queries_with_an_indexed_positive_can_be_held_out() -> None:
    plain = [Judgement(f"plain {i}", "a text positive", 1.0) for i in range(20)]
    _train, held = split_by_query(plain + _judgements(4), 0.5, seed=1)
    assert all(j.doc_id is not None for j in held)
    assert len({j.query for j in held}) == 2
    assert split_by_query(plain, 0.5) == (plain, [])  # none eligible: nothing held out


def test_a_fraction_keeps_at_least_one_query_on_each_side() -> None:
    _, held = split_by_query(_judgements(3), 0.01)
    assert len({j.query for j in held}) == 1
    train, _ = split_by_query(_judgements(3), 0.89)
    assert len({j.query for j in train}) == 1
    assert split_by_query(_judgements(5), 0.0)[1] == []


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


def test_pair_losses_get_labels_or_scores() -> None:
    contrastive = training_rows("contrastive", MINED)
    assert list(contrastive) == ["sentence1", "sentence2", "label"]
    assert contrastive["label"] == [1, 1, 0, 1]
    cosine = training_rows("cosine", MINED)
    assert cosine["score"] == [1.0, 0.8, 0.0, 1.0]
    assert cosine["sentence2"] == ["bees make honey", "hives hold bees", "coffee", "a positive"]
    with pytest.raises(InvalidOptionError, match="Unknown loss 'hinge'"):
        training_rows("hinge", MINED)


def test_the_gate_promotes_only_a_big_enough_gain_unless_forced() -> None:
    options = TrainingOptions(min_gain=0.01)
    assert decide(0.50, 0.52, options).promote
    assert "improved by +0.0200" in decide(0.50, 0.52, options).reason
    kept = decide(0.50, 0.505, options)
    assert not kept.promote and "not served" in kept.reason
    assert not decide(0.50, 0.40, options).promote
    forced = decide(0.50, 0.40, TrainingOptions(force=True))
    assert forced.promote and "forced" in forced.reason and "-0.1000" in forced.reason


def test_training_options_refuse_what_cannot_train() -> None:
    with pytest.raises(InvalidOptionError, match="batch size of at least 2"):
        TrainingOptions(batch_size=1)
    with pytest.raises(InvalidOptionError, match="held_out must be between"):
        TrainingOptions(held_out=0.95)
