"""A quick probe of what the gate would see: fine-tune on SciFact's train split less the queries
the gate holds out by document, then score the held-out queries and the test split.

An approximation of ``searchapp train``, cheaper by one re-embedding: one vector per document
(title and abstract, the model's first 256 tokens, bf16) instead of the index's chunks, and a
brute-force ranking. The split (``split_by_document``, seed 13), the mining rule, the rows and the
fine-tuning are the product's own. It prints one JSON line: dense nDCG@10 before and after on the
held-out queries, on the test split, and on the test queries whose documents no train query cites
("unseen"), with the gate's comparison on the first and the last. Levers: ``negatives`` (hard
negatives per query), ``epochs``, ``lr``, ``corpus_pairs`` (a first epoch on that many of the
corpus's own title -> abstract pairs).

    python bench/gate_probe.py default '{}'
    python bench/gate_probe.py corpus '{"corpus_pairs": 1500}'
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from indexer.training.fine_tune import fine_tune
from indexer.training.gate import compare
from indexer.training.losses import training_rows
from indexer.training.mining import MinedQuery
from indexer.training.options import TrainingOptions
from indexer.training.pairs import Judgement, split_by_document
from searchapp.beir import read_corpus, read_qrels, read_queries
from searchapp.encoder import Encoder, EncoderSpec
from searchapp.evaluation import ndcg_at_k

REPO = Path(__file__).resolve().parents[1]
SCIFACT = REPO.parent / "shared/datasets/scifact"


def encode(model, texts: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    return np.asarray(vectors, dtype=np.float32)


def main() -> None:
    name, config = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    queries = read_queries(SCIFACT)
    corpus = list(read_corpus(SCIFACT))
    ids = [d.id for d in corpus]
    position = {doc_id: i for i, doc_id in enumerate(ids)}
    texts = [f"{d.title}\n{d.text}" for d in corpus]
    train_qrels, test_qrels = read_qrels(SCIFACT, "train"), read_qrels(SCIFACT, "test")
    judgements = [
        Judgement(queries[q], texts[position[d]], 1.0, position[d])
        for q, judged in sorted(train_qrels.items())
        for d, grade in judged.items()
        if grade > 0 and d in position
    ]
    train, held = split_by_document(judgements, 0.1, 13)
    cited = {d for judged in train_qrels.values() for d in judged}
    held_qrels: dict[str, dict[str, int]] = {}
    for j in held:
        held_qrels.setdefault(j.query, {})[ids[j.doc_id]] = 1  # type: ignore[index]
    test = {queries[q]: judged for q, judged in test_qrels.items()}
    unseen = {queries[q] for q, judged in test_qrels.items() if not set(judged) & cited}

    def scores(model, documents: np.ndarray) -> dict[str, float]:  # type: ignore[no-untyped-def]
        found = {}
        for qrels in (held_qrels, test):
            texts_ = sorted(qrels)
            top = np.argsort(-(encode(model, texts_) @ documents.T), axis=1)[:, :100]
            for query, row in zip(texts_, top, strict=True):
                found[query] = ndcg_at_k([ids[i] for i in row], qrels[query])
        return found

    groups = {"held": held_qrels, "test": test, "unseen": unseen}

    def summary(per: dict[str, float]) -> dict[str, float]:
        return {part: round(float(np.mean([per[q] for q in group])), 4)
                for part, group in groups.items()}  # fmt: skip

    base = Encoder(EncoderSpec()).model
    base_documents = encode(base, texts)
    before = scores(base, base_documents)

    # Mining: the base model's ranking, ranks 4-30, near-duplicates of a positive left out.
    positives: dict[str, list[int]] = {}
    for j in train:
        positives.setdefault(j.query, []).append(j.doc_id)  # type: ignore[arg-type]
    train_queries = sorted(positives)
    vectors = encode(base, train_queries)
    ranking = np.argsort(-(vectors @ base_documents.T), axis=1)[:, :30]
    mined = []
    for query, row in zip(train_queries, ranking, strict=True):
        kept = base_documents[positives[query]]
        negatives = [
            (texts[i], 0.0)
            for i in row[3:]
            if i not in positives[query] and np.max(kept @ base_documents[i]) < 0.95
        ][: config.get("negatives", 1)]
        mined.append(MinedQuery(query, [(texts[d], 1.0) for d in positives[query]], negatives))
    rows = training_rows("mnrl", mined)

    work = Path(tempfile.mkdtemp(prefix="gate-probe-"))
    spec = EncoderSpec()
    if config.get("corpus_pairs"):
        titled = [d for d in corpus if d.title]
        chosen = random.Random(1).sample(titled, min(config["corpus_pairs"], len(titled)))
        pairs = {"anchor": [d.title for d in chosen], "positive": [d.text for d in chosen]}
        fine_tune(spec, pairs, TrainingOptions(epochs=1), work / "corpus")
        spec = EncoderSpec(str(work / "corpus"))
    options = TrainingOptions(epochs=config.get("epochs", 2), learning_rate=config.get("lr", 3e-5))
    fine_tune(spec, rows, options, work / "model")
    model = Encoder(EncoderSpec(str(work / "model"))).model
    after = scores(model, encode(model, texts))

    def gate(group) -> str:  # type: ignore[no-untyped-def]
        return compare({q: before[q] for q in group}, {q: after[q] for q in group}, 0.95).describe()

    print(json.dumps({
        "name": name, "config": config, "before": summary(before), "after": summary(after),
        "gate": gate(held_qrels), "unseen_gate": gate(unseen),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
