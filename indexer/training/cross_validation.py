"""The cross-validated gate (``--folds K``): every judged query held out once, for a gate that can
decide with a few dozen judgements.

A single held-out split spends a tenth of a user's few judgements on the gate and still has too
few to decide on. Here the judged queries are dealt into ``K`` folds; for each fold a model is
trained on the other folds' queries (the same mined rows the served candidate trains on) and
both it and the served model rank the fold's queries. Every query then has a score before and
after a training that never saw it, and the gate's paired bootstrap runs over all of them. A
held-out query whose relevant documents other folds' queries cite is "seen" (the two-part gate's
queries about trained documents); the others are by document. The candidate that is served is
then trained on every judged query.

Each fold model ranks a pool, not the whole collection: the documents the served model ranks
in its first ``POOL_DEPTH`` by dense and by keyword search, every chunk of them embedded by the
fold model. The served model's dense ranking within the pool is its ranking of the collection
(the pool holds its first ``POOL_DEPTH``); a fold model could only do better than the pool lets
it where it would lift a document the served model ranks below ``POOL_DEPTH`` both ways. It
keeps each fold to a few thousand chunks, where embedding the collection once per fold would
cost ``K`` times a re-index.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from indexer.training.fine_tune import fine_tune
from indexer.training.losses import training_rows
from indexer.training.mining import MinedQuery
from indexer.training.options import TrainingOptions
from indexer.training.pairs import Judgement, relevant_documents
from searchapp.encoder import Encoder, EncoderSpec
from searchapp.evaluation import Metrics, score_rankings
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.search import Searcher
from searchapp.store.schema import Chunk

POOL_DEPTH = 30  # documents the served model ranks first, by dense and by keyword search


@dataclass(frozen=True)
class CrossValidation:
    """Both models' nDCG@10 on every held-out query: by document (``before``/``after``) and on
    the queries about documents other folds trained on (``seen``)."""

    folds: int
    before: Metrics
    after: Metrics
    seen: tuple[Metrics, Metrics]


def assign_folds(judgements: Sequence[Judgement], folds: int, seed: int) -> dict[str, int]:
    """Each judged query (with a relevant indexed document) to a fold, dealt in a seeded order:
    the folds differ in size by one query at most."""
    queries = sorted(relevant_documents(judgements))
    random.Random(seed).shuffle(queries)
    return {query: i % folds for i, query in enumerate(queries)}


def cross_validate(
    searcher: Searcher,
    spec: EncoderSpec,
    judgements: Sequence[Judgement],
    mined: Sequence[MinedQuery],
    options: TrainingOptions,
    work: Path,
    *,
    progress: Progress = NO_PROGRESS,
) -> CrossValidation:
    """Train one model per fold on the rows of the other folds' queries (``mined``, replayed
    queries included: they are in no fold) and score the fold's queries with it and with the
    served model (``searcher``'s), on the pool."""
    relevant = relevant_documents(judgements)
    fold_of = assign_folds(judgements, options.folds, options.seed)
    rankings: tuple[dict[str, list[str]], dict[str, list[str]]] = ({}, {})
    seen: set[str] = set()
    for fold in range(options.folds):
        progress.report("cross-validate", fold, options.folds, unit="fold")
        held = {q for q, f in fold_of.items() if f == fold}
        rows = training_rows(options.loss, [m for m in mined if m.query not in held])
        if not held or len(next(iter(rows.values()), [])) < 2:
            continue  # too few rows left to train on: these queries stay unscored
        trained = {doc for q, f in fold_of.items() if f != fold for doc in relevant[q]}
        seen.update(q for q in held if relevant[q] & trained)
        work.mkdir(parents=True, exist_ok=True)  # a killed run's ".partial" folders are removed
        folder = Path(tempfile.mkdtemp(prefix=f"fold-{fold}.partial-", dir=work))
        try:
            fine_tune(spec, rows, options, folder / "model", progress=progress)
            model = Encoder(dataclasses.replace(spec, path=str(folder / "model")))
            ranked = pool_rankings(searcher, model, sorted(held))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for mine, theirs in zip(rankings, ranked, strict=True):
            mine.update(theirs)
    progress.report("cross-validate", options.folds, options.folds, unit="fold")
    qrels = {q: {str(doc): 1 for doc in relevant[q]} for q in rankings[0]}
    unseen = set(qrels) - seen

    def scored(which: int, queries: set[str]) -> Metrics:
        if not queries:
            return Metrics(0.0, 0.0, 0.0, 0, per_query={})
        return score_rankings(rankings[which], {q: qrels[q] for q in queries})

    return CrossValidation(
        folds=options.folds,
        before=scored(0, unseen),
        after=scored(1, unseen),
        seen=(scored(0, seen & set(qrels)), scored(1, seen & set(qrels))),
    )


def pool_rankings(
    searcher: Searcher, model: Encoder, queries: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Each query's ranking of its pool's documents (ids as text, best chunk per document): by
    the served model (its stored vectors) and by ``model``."""
    pools: dict[str, set[int]] = {q: set() for q in queries}
    for mode in ("dense", "keyword"):
        answers = searcher.search_many(list(queries), k=POOL_DEPTH, mode=mode)
        for query, found in zip(queries, answers, strict=True):
            pools[query].update(result.doc_id for result in found)
    documents = sorted(set().union(*pools.values()))
    with searcher.db.read() as session:
        chunks = session.execute(
            select(Chunk.id, Chunk.document_id, Chunk.text).where(Chunk.document_id.in_(documents))
        ).all()
    ids = [chunk_id for chunk_id, _, _ in chunks]
    owners = np.array([document_id for _, document_id, _ in chunks])
    stored = searcher.chunk_vectors(ids)
    served = (searcher.encoder.encode(list(queries), role="query"),
              np.stack([stored[i] for i in ids]))  # fmt: skip
    trained = (model.encode(list(queries), role="query"),
               model.encode([text for _, _, text in chunks]))  # fmt: skip
    result: tuple[dict[str, list[str]], dict[str, list[str]]] = ({}, {})
    for ranked, (query_vectors, chunk_vectors) in zip(result, (served, trained), strict=True):
        similarity = query_vectors @ chunk_vectors.T
        for i, query in enumerate(queries):
            best: dict[int, float] = {}
            for owner, score in zip(owners, similarity[i], strict=True):
                if owner in pools[query] and score > best.get(int(owner), -np.inf):
                    best[int(owner)] = float(score)
            ranked[query] = [str(doc) for doc in sorted(best, key=best.__getitem__,
                                                        reverse=True)]  # fmt: skip
    return result
