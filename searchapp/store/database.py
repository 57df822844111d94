"""The SQL engine: SQLite in WAL mode by default, readers that never block, one writer at a time.

With Python's sqlite3 driver, SQLAlchemy needs the documented "pysqlite transaction fix": the
driver's own transaction handling is switched off and we emit ``BEGIN`` (readers: one consistent
snapshot for the whole transaction) or ``BEGIN IMMEDIATE`` (the writer: takes the write lock up
front instead of failing half-way with "database is locked").
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, Table, create_engine, event, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from searchapp.errors import DatabaseUnavailableError, StorageFullError, WriterBusyError
from searchapp.store.checks import Check
from searchapp.store.migrations import migrate
from searchapp.store.schema import StoreState

# The PostgreSQL advisory lock writers take turns on (any 64-bit key no other program uses).
WRITER_LOCK_KEY = 0x5EA7C4A99
SET_UP_LOCK_KEY = 0x5EA7C4A9A


# The execution options of a transaction that cannot write, per dialect.
_READ_ONLY: dict[str, dict[str, bool]] = {
    "sqlite": {"sqlite_query_only": True},
    "postgresql": {"postgresql_readonly": True},
}

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_REVISION_SQL = "SELECT revision FROM store_state"


def is_storage_full(error: BaseException) -> bool:
    """Is ``error`` the disk (or a quota, or a file size limit) running out?"""
    if isinstance(error, OperationalError):
        return "database or disk is full" in str(error.orig)
    return isinstance(error, OSError) and error.errno in FULL_ERRNOS


class Database:
    """An engine plus the two kinds of transaction searchapp uses."""

    def __init__(self, url: str, *, lock_path: Path | None = None) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._lock = FileLock(str(lock_path)) if lock_path else None
        self._advisory_depth = 0
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._create_schema()

    def _connect(self) -> Connection:
        """A connection, or a clear refusal when the database cannot be reached or opened."""
        try:
            return self.engine.connect()
        except OperationalError as error:
            if is_storage_full(error):
                raise StorageFullError(f"the database {self.engine.url.database}") from error
            where = self.engine.url.render_as_string(hide_password=True)
            raise DatabaseUnavailableError(
                f"Cannot open the database {where}: {str(error.orig).strip().splitlines()[0]}. "
                "Check --database-url (or SEARCHAPP_DATABASE_URL) and that the server is running "
                "and reachable."
            ) from error

    def _create_schema(self) -> None:
        with self._connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                self.serialize(conn)  # processes starting side by side: one migrates
                migrate(conn)  # created, or upgraded in place, by the Alembic migrations
                if conn.execute(select(StoreState.id)).first() is None:
                    conn.execute(StoreState.__table__.insert().values(id=1, revision=0))

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session that sees one snapshot from its first query to its end and cannot write:
        the database refuses any statement that would (SQLite's ``query_only``, a read-only
        transaction on PostgreSQL). Writes go through ``write``, one writer at a time."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**_READ_ONLY[self.engine.dialect.name])
            with conn.begin(), Session(bind=conn, expire_on_commit=False) as session:
                yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction, committed when the block ends and rolled back on any error."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            try:
                with conn.begin(), Session(bind=conn, expire_on_commit=False) as session:
                    yield session
                    session.flush()
            except OperationalError as error:  # SQLite's; the index file reports its own
                if is_storage_full(error):
                    raise StorageFullError(f"the database {self.engine.url.database}") from error
                raise

    @contextmanager
    def writer_lock(self, timeout: float = 0) -> Iterator[None]:
        """Hold the single-writer lock, or fail with a clear message after ``timeout`` seconds:
        on SQLite the home's lock file; on PostgreSQL an advisory lock of the database, so that
        writers on any machine take turns."""
        if not self.is_sqlite:
            with self._advisory_lock(timeout, shared=False):
                yield
            return
        with self._file_lock(timeout):
            yield

    @contextmanager
    def indexer_lock(self, timeout: float = 0) -> Iterator[None]:
        """The lock an index run holds. On SQLite the writer lock: one writer at a time. On
        PostgreSQL a shared hold of the same advisory lock: index runs (of different folders)
        write side by side, each batch in a transaction of its own, while training, promotion
        and repair, which take it whole, wait for them and they for those."""
        if self.is_sqlite:
            with self._file_lock(timeout):
                yield
            return
        with self._advisory_lock(timeout, shared=True):
            yield

    def serialize(self, session: Session | Connection) -> None:
        """Make the rest of ``session``'s transaction run alone among those that call this too:
        the short set-up steps that writers side by side must not race (the first model version
        and generation, a generation's HNSW index). SQLite's writes are serial already."""
        if not self.is_sqlite:
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SET_UP_LOCK_KEY})

    def check(self, session: Session) -> list[Check]:
        """The database's own integrity check, where it has one to run (SQLite's; PostgreSQL
        checks its pages itself)."""
        if not self.is_sqlite:
            return []
        verdict = session.execute(text("PRAGMA integrity_check")).scalar()
        return [Check("SQLite integrity", verdict == "ok", str(verdict))]

    def move_sequences_past_ids(self, session: Session, tables: Iterable[Table]) -> None:
        """After rows were inserted with their ids: the next id of each table past them
        (SQLite's ``AUTOINCREMENT`` follows by itself)."""
        if self.is_sqlite:
            return
        for table in tables:
            key = table.primary_key.columns.values()
            if len(key) == 1 and key[0].autoincrement in (True, "auto"):
                session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{key[0].name}'), "
                        f"coalesce((SELECT max({key[0].name}) FROM {table.name}), 0) + 1, false)"
                    )
                )

    @contextmanager
    def _file_lock(self, timeout: float) -> Iterator[None]:
        if self._lock is None:
            yield
            return
        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            raise WriterBusyError(
                f"Another searchapp process is writing to this home (lock {self._lock.lock_file}). "
                "Wait for it to finish, then run the command again."
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    @contextmanager
    def _advisory_lock(self, timeout: float, *, shared: bool) -> Iterator[None]:
        """PostgreSQL's session-level advisory lock ``WRITER_LOCK_KEY``, whole or shared, on a
        connection of its own (autocommit: no transaction stays open meanwhile). Re-entrant
        within this object, in the mode first taken. A writer that dies loses its connection,
        and the server releases the lock."""
        if self._advisory_depth:
            self._advisory_depth += 1
            try:
                yield
            finally:
                self._advisory_depth -= 1
            return
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            deadline = time.monotonic() + timeout
            mode = "_shared" if shared else ""
            try_lock = text(f"SELECT pg_try_advisory_lock{mode}(:key)")
            while not conn.execute(try_lock, {"key": WRITER_LOCK_KEY}).scalar():
                if time.monotonic() >= deadline:
                    raise WriterBusyError(
                        "Another searchapp process is writing to this database "
                        f"({self.engine.url.render_as_string(hide_password=True)}). Wait for it "
                        "to finish, then run the command again."
                    )
                time.sleep(0.2)
            self._advisory_depth = 1
            try:
                yield
            finally:
                self._advisory_depth = 0
                unlock = text(f"SELECT pg_advisory_unlock{mode}(:key)")
                conn.execute(unlock, {"key": WRITER_LOCK_KEY})
        finally:
            conn.close()

    def bump_revision(self, session: Session) -> None:
        """Mark that chunks changed, so that readers refresh their vector index."""
        session.execute(
            StoreState.__table__.update().values(revision=StoreState.__table__.c.revision + 1)
        )

    def revision(self, session: Session) -> int:
        return store_revision(session)


def store_revision(session: Session) -> int:
    """The store's revision in ``session``'s snapshot: moved by every change of chunks and every
    promotion. Handed to the driver as written: asked before every search, where SQLAlchemy's
    layers cost more than the query itself."""
    return session.connection().exec_driver_sql(_REVISION_SQL).scalar_one()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see module docstring)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before it returns, so the index file a commit names is never
        # deleted while a power cut could still roll that commit back.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # A page cache of up to 64 MiB per connection (SQLite's default is 2 MiB): at a million
        # chunks the default evicts the tables' inner pages between searches, and reading one
        # page of results took twice as long (docs/benchmarks.md, Latency against size).
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        options = conn.get_execution_options()
        # A pooled connection serves readers and the writer in turn: set when it changes (kept
        # with the driver's connection), not once more before every search.
        read_only = bool(options.get("sqlite_query_only", False))
        state = conn.connection.info
        if state.get("query_only") is not read_only:
            conn.exec_driver_sql(f"PRAGMA query_only={int(read_only)}")
            state["query_only"] = read_only
        conn.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', 'DEFERRED')}")
