"""The SQL tables: SQL is the source of truth, the vector index is a cache rebuilt from it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class VectorBlob(TypeDecorator):
    """A float32 vector, which Python code always sees as its bytes: a BLOB on SQLite, pgvector's
    ``vector`` on PostgreSQL, where the database itself searches it (``store.vectors.pgvector``)."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):  # type: ignore[no-untyped-def]
        if dialect.name == "postgresql":
            from pgvector.sqlalchemy import VECTOR

            return dialect.type_descriptor(VECTOR())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None or dialect.name != "postgresql":
            return value
        import numpy as np

        return np.frombuffer(value, dtype=np.float32)

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None or dialect.name != "postgresql":
            return value
        import numpy as np

        return np.asarray(value, dtype=np.float32).tobytes()


class Source(Base):
    """A folder or an imported corpus that documents come from."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "folder" or "beir"
    location: Mapped[str] = mapped_column(Text, unique=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    indexed_at: Mapped[datetime | None] = mapped_column(default=None)


class Document(Base):
    """One file (or one corpus record); its text lives in its chunks."""

    __tablename__ = "documents"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    uri: Mapped[str] = mapped_column(Text, unique=True)
    path: Mapped[str | None] = mapped_column(Text, default=None, index=True)
    external_id: Mapped[str | None] = mapped_column(Text, default=None, index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    file_type: Mapped[str] = mapped_column(String(16), default="text")
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A file holding several documents names each: "message 3", "message 3/invoice.pdf".
    part: Mapped[str] = mapped_column(Text, default="", server_default="")
    author: Mapped[str] = mapped_column(Text, default="", server_default="")
    doc_date: Mapped[str] = mapped_column(Text, default="", server_default="")  # ISO 8601
    # JSON: [[start, "page 3"], …], where in the text each page, slide or sheet starts; and
    # {"from": …, "to": …}, what else the format records. NULL when there is none.
    sections: Mapped[str | None] = mapped_column(Text, default=None)
    meta: Mapped[str | None] = mapped_column(Text, default=None)

    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )


class Chunk(Base):
    """A piece of a document that fits the model; ids are never reused (AUTOINCREMENT)."""

    __tablename__ = "chunks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)

    document: Mapped[Document] = relationship(back_populates="chunks")


class ModelVersion(Base):
    """A bi-encoder: a weights directory plus everything that changes its vectors."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str | None] = mapped_column(Text, default=None)  # None: the bundled backbone
    pooling: Mapped[str] = mapped_column(String(8))
    layer: Mapped[int | None] = mapped_column(Integer, default=None)  # None: the final layer
    max_seq_length: Mapped[int] = mapped_column(Integer)
    dimension: Mapped[int] = mapped_column(Integer)
    # The model it started from, as the user named it (a hub name or a folder); None: the bundled
    # one. A trained version keeps its parent's.
    base_model: Mapped[str | None] = mapped_column(Text, default=None)
    # Put before every query and every document it embeds (e5's "query: ", bge's instruction).
    query_prompt: Mapped[str] = mapped_column(Text, default="", server_default="")
    document_prompt: Mapped[str] = mapped_column(Text, default="", server_default="")
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), default=None)
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    metrics_json: Mapped[str | None] = mapped_column(Text, default=None)
    # Hybrid's blend weight of the dense ranking for this version, fitted on the queries its
    # training held out; None: the default (searchapp.search.DENSE_WEIGHT).
    dense_weight: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingPair(Base):
    """A judgement a model version was trained on (``role`` "train") or gated on ("held_out").

    Kept with the version: its held-out judgements join the standing evaluation set every later
    candidate is also scored on, and its training judgements are replayed when its descendants
    train (``indexer.training.history``). ``document_id`` is an indexed document (not a foreign
    key: a judgement outlives its document, and is skipped while the document is gone); ``text``
    is set instead for a plain-text passage.
    """

    __tablename__ = "training_pairs"
    __table_args__ = (Index("ix_training_pairs_version_role", "model_version_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(8))  # "train" or "held_out"
    query: Mapped[str] = mapped_column(Text)
    document_id: Mapped[int | None] = mapped_column(Integer, default=None)
    text: Mapped[str | None] = mapped_column(Text, default=None)
    score: Mapped[float] = mapped_column(Float)


class IndexGeneration(Base):
    """The vectors of every live chunk under one model version, and the file that caches them."""

    __tablename__ = "index_generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    status: Mapped[str] = mapped_column(String(16), default="building")
    # The runtime that embedded its chunks (searchapp.backends); queries use the same one.
    backend: Mapped[str] = mapped_column(String(16), default="torch", server_default="torch")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(default=None)
    file_name: Mapped[str | None] = mapped_column(Text, default=None)
    checksum: Mapped[str | None] = mapped_column(String(64), default=None)
    vector_count: Mapped[int] = mapped_column(Integer, default=0)
    # No longer written nor read (kept for the homes that have it): opening an index compares its
    # chunk ids with SQL's one by one (``VectorStore.reconcile``), which a highest id cannot.
    max_chunk_id: Mapped[int] = mapped_column(Integer, default=0)
    # The FAISS index kind of its file ("flat": exact; "ivf") and what its searches depend on.
    index_kind: Mapped[str] = mapped_column(String(8), default="flat", server_default="flat")
    index_params: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")


class Embedding(Base):
    """A chunk's vector (float32 bytes) in one generation."""

    __tablename__ = "embeddings"
    __table_args__ = (Index("ix_embeddings_chunk", "chunk_id"),)

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("index_generations.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_id: Mapped[int] = mapped_column(
        ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True
    )
    vector: Mapped[bytes] = mapped_column(VectorBlob)


class StoreState(Base):
    """One row: a counter bumped by every write that changes chunks, so readers notice."""

    __tablename__ = "store_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class Feedback(Base):
    """A (query, document, label) judgement given in the UI or imported; used by training."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("query", "document_id", name="uq_feedback_query_doc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query: Mapped[str] = mapped_column(Text)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    label: Mapped[int] = mapped_column(Integer)  # 1 relevant, 0 not relevant
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """Long work (index, import, train, promote, …) run by a ``searchapp`` process of its own;
    see ``searchapp.jobs``."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    arguments: Mapped[str] = mapped_column(Text)  # the command's arguments, as a JSON list
    cwd: Mapped[str] = mapped_column(Text)  # where relative paths in them are resolved
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    stage: Mapped[str] = mapped_column(Text, default="")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, default=None)
    unit: Mapped[str] = mapped_column(String(16), default="item")
    rate: Mapped[float | None] = mapped_column(Float, default=None)  # units per second
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    host: Mapped[str | None] = mapped_column(Text, default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    result_json: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
