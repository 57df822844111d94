"""Training pairs in: JSONL or CSV files, a BEIR split, and the feedback given in the UI.

Every source becomes a list of ``Judgement``: a query, a document (an indexed document or a plain
text), and how relevant it is (1 relevant, 0 not, or a graded score in between). Bad rows are
reported by line number with the reason, and skipped; no row is dropped silently.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from searchapp.beir import read_jsonl, read_qrels, read_queries
from searchapp.choices import RELEVANT_SCORE
from searchapp.errors import PairsError, PathNotFoundError
from searchapp.store.database import Database
from searchapp.store.schema import Chunk, Document, Feedback

# A reference with at least this many words is taken as the document's text, not an id or path.
MIN_TEXT_WORDS = 4


@dataclass(frozen=True)
class Judgement:
    """A (query, document, relevance) triple; ``doc_id`` is set when the document is indexed."""

    query: str
    text: str
    score: float
    doc_id: int | None = None

    @property
    def relevant(self) -> bool:
        """A positive: judged at least ``RELEVANT_SCORE`` (a 👍, or a graded score from there)."""
        return self.score >= RELEVANT_SCORE

    @property
    def relevant_document(self) -> bool:
        """A positive about an indexed document."""
        return self.relevant and self.doc_id is not None


@dataclass
class PairSet:
    """Judgements read from one or more sources, and the rows that could not be used."""

    judgements: list[Judgement] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file:line, reason)

    def extend(self, other: PairSet) -> None:
        self.judgements.extend(other.judgements)
        self.skipped.extend(other.skipped)


class DocumentResolver:
    """Finds indexed documents by BEIR id, by path (absolute, or a unique path suffix), or by id."""

    def __init__(self, db: Database) -> None:
        with db.read() as session:
            rows = session.execute(select(Document.id, Document.path, Document.external_id)).all()
            chunks = session.execute(
                select(Chunk.document_id, Chunk.text).order_by(Chunk.document_id, Chunk.ordinal)
            ).all()
        self._by_external = {external: doc_id for doc_id, _, external in rows if external}
        self._paths = {path: doc_id for doc_id, path, _ in rows if path}
        self._ids = {doc_id for doc_id, _, _ in rows}
        self.texts: dict[int, list[str]] = {}
        for document_id, text in chunks:
            self.texts.setdefault(document_id, []).append(text)

    def find(self, reference: str) -> int | None:
        reference = reference.strip()
        if reference in self._by_external:
            return self._by_external[reference]
        if reference in self._paths:
            return self._paths[reference]
        suffix = "/" + reference.lstrip("./")
        matches = [doc_id for path, doc_id in self._paths.items() if path.endswith(suffix)]
        if len(matches) == 1:
            return matches[0]
        if reference.isdigit() and int(reference) in self._ids:
            return int(reference)
        return None

    def indexed(self, doc_id: int) -> bool:
        return doc_id in self._ids

    def text(self, doc_id: int) -> str:
        return "\n".join(self.texts.get(doc_id, []))

    def judgement(self, query: str, reference: str, score: float) -> Judgement:
        """A judgement on ``reference`` (id, path or text); raises PairsError naming the problem."""
        if not reference.strip():
            raise PairsError("empty document")
        doc_id = self.find(reference)
        if doc_id is not None:
            return Judgement(query, self.text(doc_id), score, doc_id)
        if len(reference.split()) >= MIN_TEXT_WORDS:
            return Judgement(query, reference.strip(), score)
        raise PairsError(f"unknown document id or path {reference!r} (not in the index)")


def _score(row: dict) -> float:
    for column in ("score", "label"):
        value = row.get(column)
        if value not in (None, ""):
            try:
                score = float(value)
            except (TypeError, ValueError):
                raise PairsError(f"{column} {value!r} is not a number") from None
            if not 0.0 <= score <= 1.0:
                raise PairsError(f"{column} {score} is outside 0..1")
            return score
    return 1.0


def _rows(path: Path) -> Iterator[tuple[int, dict | None, str]]:
    """(line number, row or None, error) for each row of a JSONL or CSV file."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, row, ""
        return
    yield from read_jsonl(path)


def read_pairs_file(path: Path, resolver: DocumentResolver) -> PairSet:
    """Pairs from JSONL or CSV with columns query, positive, optional negative, label or score."""
    if not path.is_file():
        raise PathNotFoundError(f"Pairs file {path} not found.")
    result = PairSet()
    for number, row, error in _rows(path):
        where = f"{path.name}:{number}"
        if row is None:
            result.skipped.append((where, error))
            continue
        query = str(row.get("query") or "").strip()
        positive = str(row.get("positive") or "")
        negative = str(row.get("negative") or "")
        if not query:
            result.skipped.append((where, "missing or empty column 'query'"))
            continue
        if not positive.strip():
            result.skipped.append((where, "missing or empty column 'positive'"))
            continue
        try:
            found = [resolver.judgement(query, positive, _score(row))]
            if negative.strip():
                found.append(resolver.judgement(query, negative, 0.0))
        except PairsError as problem:
            result.skipped.append((where, str(problem)))
            continue
        result.judgements.extend(found)
    return result


def read_beir_pairs(folder: Path, split: str, resolver: DocumentResolver) -> PairSet:
    """The split's queries with their judged documents (which must be indexed: ``index --beir``)."""
    queries = read_queries(folder)
    result = PairSet()
    for query_id, judged in sorted(read_qrels(folder, split).items()):
        where = f"qrels/{split}.tsv query {query_id}"
        if not queries.get(query_id, "").strip():
            result.skipped.append((where, "query text missing from queries.jsonl"))
            continue
        for external_id, grade in sorted(judged.items()):
            doc_id = resolver.find(external_id)
            if doc_id is None:
                result.skipped.append((where, f"document {external_id} is not indexed"))
                continue
            score = 1.0 if grade > 0 else 0.0
            result.judgements.append(
                Judgement(queries[query_id], resolver.text(doc_id), score, doc_id)
            )
    return result


def read_feedback(db: Database, resolver: DocumentResolver) -> PairSet:
    """The 👍 / 👎 judgements stored from the UI."""
    with db.read() as session:
        rows = session.execute(select(Feedback.query, Feedback.document_id, Feedback.label)).all()
    result = PairSet()
    for query, document_id, label in rows:
        result.judgements.append(
            Judgement(query, resolver.text(document_id), float(label), document_id)
        )
    return result


def split_by_document(
    judgements: Iterable[Judgement], held_out_fraction: float, seed: int = 13
) -> tuple[list[Judgement], list[Judgement]]:
    """(train, held-out), grouped so that no held-out query shares a relevant document with a
    training query: a candidate cannot win the gate by having memorised the held-out answers.

    Queries that share a relevant document (directly or through others) form a group, and whole
    groups are held out, in a seeded order, until ``held_out_fraction`` of the eligible queries is
    reached (at least one group on each side when there are two). Only queries with an indexed
    relevant document are eligible, since the gate ranks the index. Stable for a given seed.
    """
    import random

    judgements = list(judgements)
    relevant = relevant_documents(judgements)
    groups = _groups(relevant)
    random.Random(seed).shuffle(groups)
    target = round(len(relevant) * held_out_fraction)
    chosen: list[set[str]] = []
    if held_out_fraction > 0 and len(groups) > 1:
        for group in groups:  # whole groups that fit, in the seeded order
            if sum(map(len, chosen)) + len(group) <= target:
                chosen.append(group)
        if not chosen:  # every group is bigger than the fraction: the smallest one
            chosen.append(min(groups, key=len))
        if len(chosen) == len(groups):  # training keeps at least one group
            chosen.pop()
    held = set().union(*chosen)
    train = [j for j in judgements if j.query not in held]
    return train, [j for j in judgements if j.query in held]


def split_seen(
    train: Iterable[Judgement], count: int, seed: int = 13
) -> tuple[list[Judgement], list[Judgement]]:
    """(train, held-out) again, the other way round: ``count`` queries (at most) whose relevant
    documents all stay cited by the training queries, so the gate can ask what a user who gave
    👍 to a document expects, that it is found for a new question about it.

    One query per group of queries sharing relevant documents (``split_by_document``'s groups),
    never the last of its group, in a seeded order; a query is taken only if every one of its
    relevant documents is also relevant to another query of its group. Stable for a given seed.
    """
    import random

    train = list(train)
    relevant = relevant_documents(train)
    rng = random.Random(seed)
    groups = [sorted(group) for group in _groups(relevant) if len(group) > 1]
    rng.shuffle(groups)
    held: set[str] = set()
    for group in groups:
        if len(held) >= count:
            break
        rng.shuffle(group)
        for query in group:
            others = set().union(*(relevant[other] for other in group if other != query))
            if relevant[query] <= others:
                held.add(query)
                break
    return [j for j in train if j.query not in held], [j for j in train if j.query in held]


def relevant_documents(judgements: Iterable[Judgement]) -> dict[str, set[int]]:
    """Each judged query's relevant indexed documents (queries with none are left out)."""
    relevant: dict[str, set[int]] = {}
    for j in judgements:
        if j.relevant_document:
            relevant.setdefault(j.query, set()).add(j.doc_id)
    return relevant


def query_groups(judgements: Iterable[Judgement]) -> list[set[str]]:
    """The judged queries joined by shared relevant documents, as ``split_by_document`` and
    ``split_seen`` group them."""
    return _groups(relevant_documents(judgements))


def _groups(relevant: dict[str, set[int]]) -> list[set[str]]:
    """The queries joined by shared relevant documents (connected components), in a stable
    order: each group's first query, sorted."""
    parent = {query: query for query in relevant}

    def root(query: str) -> str:
        while parent[query] != query:
            parent[query] = parent[parent[query]]
            query = parent[query]
        return query

    first_query: dict[int, str] = {}
    for query in sorted(relevant):
        for doc_id in sorted(relevant[query]):
            other = first_query.setdefault(doc_id, query)
            parent[root(query)] = root(other)
    groups: dict[str, set[str]] = {}
    for query in sorted(relevant):
        groups.setdefault(root(query), set()).add(query)
    return sorted(groups.values(), key=min)
