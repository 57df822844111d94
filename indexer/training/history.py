"""What earlier versions were trained and gated on: replay and the standing evaluation set.

Every training run records its judgements with the candidate version (``TrainingPair``): the ones
it trained on and the ones it held out for the gate. Two things are built from them:

- **Replay.** A candidate trained on this week's pairs also sees some of the pairs its ancestors
  (the served version, its parent, …) were trained on, ``replay`` times as many queries as the new
  pairs bring, so that it keeps what they learned.
- **The standing evaluation set.** Every version's held-out queries, scored again for each later
  candidate: a candidate that is worse on them with confidence is refused, however well it does
  on its own held-out queries.

Both keep the gate honest: no replayed query shares a relevant document with a held-out query, and
no standing query shares one with a training query (the rule of ``split_by_document``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.training.pairs import DocumentResolver, Judgement, relevant_documents
from searchapp.store.database import Database
from searchapp.store.schema import ModelVersion, TrainingPair

TRAIN, HELD_OUT = "train", "held_out"


def record_pairs(
    session: Session, version_id: int, train: Iterable[Judgement], held_out: Iterable[Judgement]
) -> None:
    """Keep the judgements ``version_id`` was trained and gated on (new ones only: replayed
    judgements are already kept with the version that brought them)."""
    for role, judgements in ((TRAIN, train), (HELD_OUT, held_out)):
        session.add_all(
            TrainingPair(
                model_version_id=version_id,
                role=role,
                query=j.query,
                document_id=j.doc_id,
                text=None if j.doc_id is not None else j.text,
                score=j.score,
            )
            for j in judgements
        )


def _stored(
    db: Database, resolver: DocumentResolver, role: str, versions: Sequence[int] | None = None
) -> list[Judgement]:
    """The kept judgements of ``role`` (of ``versions``, or of all), each once, skipping those
    whose document is no longer indexed."""
    statement = select(
        TrainingPair.query, TrainingPair.document_id, TrainingPair.text, TrainingPair.score
    ).where(TrainingPair.role == role)
    if versions is not None:
        statement = statement.where(TrainingPair.model_version_id.in_(versions))
    with db.read() as session:
        rows = session.execute(statement.order_by(TrainingPair.id)).all()
    found: dict[tuple[str, int | None, str | None], Judgement] = {}
    for query, document_id, text, score in rows:
        if document_id is not None:
            if not resolver.indexed(document_id):
                continue
            found[query, document_id, None] = Judgement(
                query, resolver.text(document_id), score, document_id
            )
        elif text:
            found[query, None, text] = Judgement(query, text, score)
    return list(found.values())


def lineage(db: Database, version_id: int) -> list[int]:
    """``version_id`` and its ancestors, nearest first."""
    with db.read() as session:
        parents = dict(session.execute(select(ModelVersion.id, ModelVersion.parent_id)).all())
    chain: list[int] = []
    current: int | None = version_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return chain


def _apart(
    candidates: Iterable[Judgement], taken: Iterable[Judgement], shared: Iterable[Judgement]
) -> dict[str, list[Judgement]]:
    """``candidates`` by query, less the queries ``taken`` has and those sharing a relevant
    document with a query of ``shared``."""
    taken_queries = {j.query for j in taken}
    documents = set().union(*relevant_documents(shared).values())
    by_query: dict[str, list[Judgement]] = {}
    for j in candidates:
        if j.query not in taken_queries:
            by_query.setdefault(j.query, []).append(j)
    return {
        query: found
        for query, found in by_query.items()
        if not set().union(*relevant_documents(found).values()) & documents
    }


def replay_pairs(
    db: Database,
    resolver: DocumentResolver,
    served_version: int,
    train: Sequence[Judgement],
    held_out: Sequence[Judgement],
    share: float,
    seed: int = 13,
) -> list[Judgement]:
    """Earlier training judgements of the served version's line to mix into ``train``: whole
    queries, ``share`` times as many as ``train`` has (all there are, at most), seeded; none
    that this run judges anew, none sharing a relevant document with a held-out query."""
    if share <= 0:
        return []
    earlier = _stored(db, resolver, TRAIN, lineage(db, served_version))
    by_query = _apart(earlier, taken=[*train, *held_out], shared=held_out)
    wanted = round(share * len({j.query for j in train}))
    queries = sorted(by_query)
    random.Random(seed).shuffle(queries)
    return [j for query in sorted(queries[:wanted]) for j in by_query[query]]


def standing_set(
    db: Database,
    resolver: DocumentResolver,
    train: Sequence[Judgement],
    held_out: Sequence[Judgement],
) -> list[Judgement]:
    """Every earlier version's held-out judgements that this run can still judge fairly: not
    its own held-out queries (scored already), not a query it trains on, and none sharing a
    relevant document with a training query."""
    standing = _apart(_stored(db, resolver, HELD_OUT), taken=[*train, *held_out], shared=train)
    # The queries with a positive:
    judged = relevant_documents(j for found in standing.values() for j in found)
    return [j for query in sorted(judged) for j in standing[query]]
