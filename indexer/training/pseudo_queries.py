"""Pseudo-queries from the user's own corpus (``--titles N``): each document's title asked of its
text, mixed into training so that the model learns the collection's vocabulary before (and
beside) the few queries people judged.

A title is a short description of what its document is about, the way a query is: the pair
(title, the document's opening text with the title taken out) is a relevant pair nobody had to
judge.
Titles too short to say anything (fewer than ``MIN_TITLE_WORDS``, such as most file names) and
documents with little text are left out. Hard negatives are mined for them as for judged
queries. They are never held out and never judged: the gate still decides on people's queries.
"""

from __future__ import annotations

import random
import re

from sqlalchemy import select

from indexer.training.mining import MinedQuery, mine
from indexer.training.pairs import Judgement
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.search import Searcher
from searchapp.store.schema import Chunk, Document

MIN_TITLE_WORDS = 3
MIN_TEXT_WORDS = 20
TITLE_WITHIN = 200  # characters into the opening chunk a title is taken out from
_WORD = re.compile(r"\w+")


def title_pairs(searcher: Searcher, limit: int, seed: int) -> list[Judgement]:
    """Up to ``limit`` (title, opening text) pairs from the indexed documents, drawn with
    ``seed``: the opening chunk without its title, the title as the query."""
    with searcher.db.read() as session:
        rows = session.execute(
            select(Document.id, Document.title, Chunk.text)
            .join(Chunk, Chunk.document_id == Document.id)
            .where(Chunk.ordinal == 0)
            .order_by(Document.id)
        ).all()
    pairs, titles = [], set()
    for doc_id, title, text in rows:
        title = " ".join(title.split())
        if len(_WORD.findall(title)) < MIN_TITLE_WORDS or title.lower() in titles:
            continue  # too short to be a query, or one asked already
        titles.add(title.lower())
        passage = " ".join(text.split())
        at = passage.lower().find(title.lower())
        if 0 <= at <= TITLE_WITHIN:  # the title opens the text (after a "#", a site's menu)
            passage = " ".join((passage[:at] + passage[at + len(title) :]).split()).lstrip(" #.:-")
        if len(_WORD.findall(passage)) < MIN_TEXT_WORDS:
            continue
        pairs.append(Judgement(title, passage, 1.0, doc_id))
    random.Random(seed).shuffle(pairs)
    return pairs[:limit]


def title_queries(
    searcher: Searcher,
    limit: int,
    *,
    seed: int,
    judged: set[str],
    per_query: int = 1,
    mode: str = "dense",
    progress: Progress = NO_PROGRESS,
) -> list[MinedQuery]:
    """Training rows' worth of title pseudo-queries, hard negatives mined; titles that are also
    judged queries (``judged``) are left to their judgements."""
    pairs = [p for p in title_pairs(searcher, limit, seed) if p.query not in judged]
    if not pairs:
        return []
    passages = {p.query: p.text for p in pairs}
    mined = mine(searcher, pairs, per_query=per_query, mode=mode, progress=progress)
    # The positive is the text without its title, not the stored chunk mining picks (the title
    # would make the pair trivial to match).
    return [MinedQuery(m.query, [(passages[m.query], 1.0)], m.negatives) for m in mined]
