"""The schema's history: Alembic migrations that create a home's tables and upgrade them in place.

``Database`` calls ``migrate`` on every open; when the store is at ``HEAD`` (one cheap query) that
is all. A home made before migrations existed (no ``alembic_version`` table, tables present) is
first brought to the baseline with the columns earlier releases added by hand, then stamped, then
upgraded like any other.

A schema change is a new file in ``versions/``, written by ``new_revision`` from the difference
between ``HEAD`` and ``schema.py`` (then read and tidied by hand), and a new ``HEAD``; a test
checks that the two agree and that the migrations make exactly the tables ``schema.py`` declares.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, create_engine, inspect, text

HEAD = "0009"
BASELINE = "0001"
FOLDER = Path(__file__).parent

# Columns that releases before migrations added to existing homes: (table, column, DDL).
_LEGACY_COLUMNS = (
    ("index_generations", "backend", "VARCHAR(16) NOT NULL DEFAULT 'torch'"),
    ("index_generations", "index_kind", "VARCHAR(8) NOT NULL DEFAULT 'flat'"),
    ("index_generations", "index_params", "TEXT NOT NULL DEFAULT '{}'"),
)


def current(conn: Connection) -> str | None:
    """The revision the store is at; None for an empty store or one made before migrations."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(conn: Connection) -> str | None:
    """Bring the store on ``conn`` (inside the caller's transaction) to ``HEAD``; returns the
    revision it was at."""
    was = current(conn)
    if was == HEAD:
        return was
    from alembic import command

    config = _config(conn)
    if was is None and inspect(conn).has_table("documents"):  # a home from before migrations
        present = {c["name"] for c in inspect(conn).get_columns("index_generations")}
        for table, column, ddl in _LEGACY_COLUMNS:
            if column not in present:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
    return was


def _config(conn: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    config.attributes["connection"] = conn
    return config


def new_revision(revision_id: str, message: str) -> None:
    """Write ``versions/<revision_id>_….py``: what ``schema.py`` has that ``HEAD`` has not.

    Example: ``python -c "from searchapp.store.migrations import new_revision;
    new_revision('0003', 'add a column')"``, then set ``HEAD = "0003"``.
    """
    from alembic import command

    with create_engine("sqlite://").begin() as conn:
        migrate(conn)
        command.revision(_config(conn), message=message, autogenerate=True, rev_id=revision_id)
