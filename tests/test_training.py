"""Retraining on the sample pairs: bad rows reported, the gate, promotion, rollback, kills."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.folders import index_folders
from indexer.training.options import PairSources, TrainingOptions
from indexer.training.pairs import DocumentResolver, read_pairs_file
from indexer.training.retrain import retrain
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import IndexGeneration
from searchapp.versions import active_generation, list_versions
from tests import crashing
from tests.conftest import DATA

QUICK = {"epochs": 1, "batch_size": 8, "held_out": 0.25}
PROBES = ["how to get rid of varroa mites", "bread dough too sticky", "cold brew ratio"]


def _snapshot(home: Settings) -> list[list[tuple[int, float]]]:
    searcher = Searcher(home)
    return [[(r.doc_id, round(r.score, 4)) for r in searcher.search(q, k=5, mode="dense")]
            for q in PROBES]  # fmt: skip


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample indexed once; tests copy it so that each starts from the same home."""
    home = Settings.load(tmp_path_factory.mktemp("train-template") / "home")
    index_folders(home, [DATA])
    return home.home


@pytest.fixture
def home(trained_home: Path, tmp_path: Path) -> Settings:
    shutil.copytree(trained_home, tmp_path / "home")
    return Settings.load(tmp_path / "home")


def test_bad_rows_are_reported_by_line_and_skipped(home: Settings, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        '{"query": "varroa treatment", "positive": "docs/bees/varroa-mites.md"}\n'
        '{"positive": "docs/bees/varroa-mites.md"}\n'
        '{"query": "x", "positive": "docs/bees/no-such-file.md"}\n'
        "this is not json\n"
        '{"query": "y", "positive": "   "}\n'
        '{"query": "z", "positive": "docs/bees/varroa-mites.md", "label": "maybe"}\n'
        '{"query": "a plain text positive", "positive": "Bees keep warm by clustering."}\n'
    )
    result = read_pairs_file(pairs, DocumentResolver(Database(home.database_url)))
    reasons = dict(result.skipped)
    assert set(reasons) == {"pairs.jsonl:2", "pairs.jsonl:3", "pairs.jsonl:4", "pairs.jsonl:5",
                            "pairs.jsonl:6"}  # fmt: skip
    assert "query" in reasons["pairs.jsonl:2"]
    assert "unknown document" in reasons["pairs.jsonl:3"]
    assert "JSON" in reasons["pairs.jsonl:4"]
    assert "positive" in reasons["pairs.jsonl:5"]
    assert "not a number" in reasons["pairs.jsonl:6"]
    assert [j.query for j in result.judgements] == ["varroa treatment", "a plain text positive"]
    assert result.judgements[0].doc_id is not None and result.judgements[1].doc_id is None


def test_pairs_that_teach_nothing_are_not_promoted(home: Settings, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (DATA / "pairs.jsonl").read_text().splitlines()]
    positives = [row["positive"] for row in rows]
    random.Random(3).shuffle(positives)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text(
        "".join(json.dumps({"query": r["query"], "positive": p}) + "\n"
                for r, p in zip(rows, positives, strict=True))
    )  # fmt: skip
    before = _snapshot(home)
    report = retrain(home, PairSources(files=(shuffled,)), TrainingOptions(**QUICK))  # fmt: skip
    assert not report.promoted
    assert report.after["ndcg@10"] < report.before["ndcg@10"] + 0.005
    assert "not served" in report.reason
    # The report says on how many held-out queries and documents it decided, and how it went.
    gate = report.gate
    assert gate["queries"] == report.held_out["queries"] > 0 and report.held_out["documents"] > 0
    assert gate["wins"] + gate["losses"] + gate["ties"] == gate["queries"]
    assert gate["interval"][0] <= gate["gain"] <= gate["interval"][1]
    assert f"on {gate['queries']} held-out queries" in report.reason
    assert _snapshot(home) == before
    versions = {v.id: v.status for v in list_versions(Database(home.database_url))}
    assert versions == {1: "active", report.version: "candidate"}


def test_forced_promotion_then_rollback_restores_the_results(cli, home: Settings) -> None:  # type: ignore[no-untyped-def]
    before = _snapshot(home)
    report = retrain(home, PairSources(files=(DATA / "pairs.jsonl",)),
                     TrainingOptions(**QUICK, force=True))  # fmt: skip
    assert report.promoted and "forced" in report.reason
    after = _snapshot(home)
    assert after != before  # the new model's vectors now answer
    db = Database(home.database_url, lock_path=home.write_lock_path)
    with db.read() as session:
        assert active_generation(session).model_version_id == report.version

    run = cli("--home", home.home, "models", "rollback")
    assert run.code == 0, run.err
    assert "serving model version 1" in run.out
    assert _snapshot(home) == before
    statuses = {v.id: v.status for v in list_versions(db)}
    assert statuses == {1: "active", report.version: "retired"}


@pytest.mark.parametrize("crash_at", ["train-step:2", "re-embed"])
def test_killed_retrain_keeps_serving_and_reruns(home: Settings, crash_at: str) -> None:
    before = _snapshot(home)
    command = [sys.executable, "-m", "searchapp.cli", "--home", str(home.home), "train",
               str(DATA / "pairs.jsonl"), "--epochs", "1", "--batch-size", "8",
               "--held-out", "0.25", "--force"]  # fmt: skip
    # Killed (SIGKILL, like a power cut) in the middle of training, or of the candidate's
    # re-embedding.
    assert crashing.run_killed(command, crash_at=crash_at)

    assert _snapshot(home) == before  # the old model keeps serving
    crashing.assert_generations_pure(home, sample=None)
    rerun = subprocess.run([*command, "--json", "--quiet"], capture_output=True, text=True,
                           timeout=900, check=False)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["promoted"] is True
    assert not list(home.models_dir.glob("*.partial*"))
    db = Database(home.database_url)
    with db.read() as session:
        statuses = sorted(g.status for g in session.query(IndexGeneration))
    assert statuses == ["active", "retired"]  # the half-built generation is gone
    crashing.assert_generations_pure(home, sample=None)
