"""Shared fixtures: a real model, a real SQLite home, the shipped sample corpus."""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import tempfile
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
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run
