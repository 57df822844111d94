"""The schema is made and upgraded by Alembic migrations: a new home gets exactly the tables
``schema.py`` declares, and a home made by the last release before migrations upgrades in place
with nothing lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.migrations import FOLDER, HEAD, current
from searchapp.store.schema import Base, Document, Feedback, ModelVersion

BEFORE_MIGRATIONS = Path(__file__).parent / "data" / "homes" / "before-migrations.sql"


def _declared(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    """Leave out what SQLAlchemy does not declare: the FTS5 table (and its shadow tables), and
    the keyword index's log of changed chunks."""
    return not (type_ == "table" and (name.startswith("chunks_fts") or name == "keyword_log"))


def test_migrations_make_exactly_the_declared_tables(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'new.db'}")
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _declared})
        assert compare_metadata(context, Base.metadata) == []
        assert current(conn) == HEAD
        assert inspect(conn).has_table("chunks_fts")
    assert ScriptDirectory(str(FOLDER)).get_current_head() == HEAD


def test_a_home_from_before_migrations_upgrades_in_place(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(home / "searchapp.db") as conn:
        conn.executescript(BEFORE_MIGRATIONS.read_text(encoding="utf-8"))

    settings = Settings.load(home, create=False)
    searcher = Searcher(settings)  # opens and upgrades the home; the index file is rebuilt
    for mode in ("dense", "keyword", "hybrid"):
        best = searcher.search("how do I treat varroa mites", k=3, mode=mode)[0]
        assert "Varroa" in best.title, mode

    db = Database(settings.database_url)
    with db.engine.connect() as conn:
        assert current(conn) == HEAD
        context = MigrationContext.configure(conn, opts={"include_object": _declared})
        assert compare_metadata(context, Base.metadata) == []
    with db.read() as session:  # what was stored is still there
        assert session.scalar(select(func.count()).select_from(Document)) == 6
        assert session.execute(select(Feedback.query, Feedback.label)).all() == [
            ("varroa treatment", 1)
        ]
        version = session.get(ModelVersion, 1)
        assert version is not None and version.dense_weight is None
