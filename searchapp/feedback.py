"""Feedback: 👍 / 👎 on search results, stored as (query, document, label) pairs for training."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from searchapp.errors import InvalidOptionError, UnknownDocumentError
from searchapp.store.database import Database
from searchapp.store.schema import Document, Feedback


def record_feedback(db: Database, query: str, document_id: int, relevant: bool) -> None:
    """Store (or change) the judgement of ``document_id`` for ``query``."""
    query = query.strip()
    if not query:
        raise InvalidOptionError("Feedback needs the query it was given for.")
    with db.write() as session:
        if session.get(Document, document_id) is None:
            raise UnknownDocumentError(
                f"Document {document_id} is no longer indexed: search again for its current id."
            )
        row = session.execute(
            select(Feedback).where(Feedback.query == query, Feedback.document_id == document_id)
        ).scalar_one_or_none()
        if row is None:
            session.add(Feedback(query=query, document_id=document_id, label=int(relevant)))
        else:
            row.label = int(relevant)


def undo_feedback(db: Database, query: str, document_id: int) -> bool:
    """Forget the judgement; returns whether there was one."""
    with db.write() as session:
        result = session.execute(
            delete(Feedback).where(
                Feedback.query == query.strip(), Feedback.document_id == document_id
            )
        )
        return bool(result.rowcount)


def feedback_for(db: Database, query: str) -> dict[int, bool]:
    """Document id -> relevant, for the judgements already given on ``query``."""
    with db.read() as session:
        rows = session.execute(
            select(Feedback.document_id, Feedback.label).where(Feedback.query == query.strip())
        ).all()
    return {document_id: bool(label) for document_id, label in rows}


def feedback_counts(db: Database) -> tuple[int, int]:
    """(relevant, not relevant) judgements stored."""
    with db.read() as session:
        rows = dict(
            session.execute(select(Feedback.label, func.count()).group_by(Feedback.label)).all()
        )
    return rows.get(1, 0), rows.get(0, 0)
