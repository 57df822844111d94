"""Retraining on the sample pairs: bad rows reported, the gate, promotion, rollback, kills."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from indexer.folders import index_folders
from indexer.training.fine_tune import fine_tune
from indexer.training.gate import BLEND_WEIGHTS
from indexer.training.history import record_pairs, replay_pairs, standing_set
from indexer.training.options import PairSources, TrainingOptions
from indexer.training.pairs import DocumentResolver, Judgement, read_pairs_file
from indexer.training.pseudo_queries import title_pairs
from indexer.training.retrain import retrain
from searchapp.encoder import Encoder, EncoderSpec
from searchapp.learning_curve import nearest
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import IndexGeneration, ModelVersion, TrainingPair
from searchapp.versions import active_generation, list_versions, needed_said
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
    # Not better with confidence: a few held-out queries may move either way by chance (the
    # mean moved +0.012 on 7 queries in one CI run), never with an interval wholly above 0.
    assert report.gate["interval"][0] <= 0  # type: ignore[index]
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
    # Nothing held out: forced, it is served without a comparison, and says so.
    report = retrain(home, PairSources(files=(DATA / "pairs.jsonl",)),
                     TrainingOptions(**{**QUICK, "held_out": 0.0}, force=True))  # fmt: skip
    assert report.promoted and report.reason.startswith("forced: nDCG@10 +0.0000 on 0 held-out")
    after = _snapshot(home)
    assert after != before  # the new model's vectors now answer
    db = Database(home.database_url, lock_path=home.write_lock_path)
    with db.read() as session:
        assert active_generation(session).model_version_id == report.version

    run = cli("--home", home.home, "models", "rollback")
    assert run.code == 0, run.err
    assert "serving model version 1" in run.out
    listed = cli("--home", home.home, "models", "list").out
    assert "gate two-part: no held-out queries" in listed  # what the gate had to go on
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


def test_replay_and_the_standing_set_keep_the_gate_honest(home: Settings) -> None:
    db = Database(home.database_url)
    resolver = DocumentResolver(db)
    doc = {name: resolver.find(f"docs/{name}.md") for name in (
        "bees/varroa-mites", "bees/swarm-prevention", "coffee/espresso-dialing-in",
        "coffee/pour-over-technique", "astronomy/choosing-first-telescope")}  # fmt: skip

    def judged(query: str, name: str) -> Judgement:
        return Judgement(query, resolver.text(doc[name]), 1.0, doc[name])

    earlier_train = [judged("mites in the hive", "bees/varroa-mites"),
                     judged("stop a swarm", "bees/swarm-prevention"),
                     judged("sour espresso", "coffee/espresso-dialing-in")]  # fmt: skip
    earlier_held = [judged("bloom the coffee", "coffee/pour-over-technique"),
                    judged("first telescope", "astronomy/choosing-first-telescope")]  # fmt: skip
    with db.write() as session:
        record_pairs(session, 1, earlier_train, earlier_held)
        assert session.query(TrainingPair).count() == 5

    new_train = [judged("telescope aperture", "astronomy/choosing-first-telescope")]
    new_held = [judged("queen cells", "bees/swarm-prevention"), judged("stop a swarm",
                "bees/swarm-prevention")]  # fmt: skip
    # Replayed: earlier training queries, never one judged anew or sharing a held-out document.
    replayed = replay_pairs(db, resolver, 1, new_train, new_held, share=5.0)
    assert {j.query for j in replayed} == {"mites in the hive", "sour espresso"}
    assert len(replay_pairs(db, resolver, 1, new_train, new_held, share=1.0)) == 1
    assert replay_pairs(db, resolver, 1, new_train, new_held, share=0.0) == []
    # Standing: earlier held-out queries, never one sharing a document with a training query.
    standing = standing_set(db, resolver, [*new_train, *replayed], new_held)
    assert [j.query for j in standing] == ["bloom the coffee"]


def test_a_second_training_replays_the_first_and_is_scored_on_its_held_out_queries(
    home: Settings, tmp_path: Path
) -> None:
    rows = (DATA / "pairs.jsonl").read_text().splitlines()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(rows[:24]) + "\n")
    second.write_text("\n".join(rows[24:]) + "\n")
    options = TrainingOptions(**QUICK, force=True, min_queries=2)
    one = retrain(home, PairSources(files=(first,)), options)
    assert one.replayed == {"queries": 0, "pairs": 0} and one.standing == {}
    two = retrain(home, PairSources(files=(second,)), options)
    assert two.replayed["queries"] > 0
    assert 0 < two.standing["queries"] <= one.held_out["queries"]
    assert "queries earlier versions held out" in two.reason
    db = Database(home.database_url)
    with db.read() as session:
        kept = {(p.model_version_id, p.role) for p in session.query(TrainingPair)}
        fitted = session.get(ModelVersion, two.version).dense_weight
    assert kept == {(one.version, "train"), (one.version, "held_out"), (two.version, "train"),
                    (two.version, "held_out")}  # fmt: skip
    # Hybrid's blend weight was fitted for the served version on queries it did not train on.
    assert fitted == two.dense_weight and fitted in BLEND_WEIGHTS
    assert Searcher(home).search("varroa", mode="dense") and Searcher(home).dense_weight == fitted


def test_the_two_part_gate_holds_out_queries_about_trained_documents(cli, home: Settings) -> None:  # type: ignore[no-untyped-def]
    before = _snapshot(home)
    run = cli("--home", home.home, "train", DATA / "pairs.jsonl", "--epochs", "1",
              "--batch-size", "8", "--held-out", "0.25", "--gate", "two-part",
              "--min-queries", "3", "--json", "--quiet")  # fmt: skip
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["gate_rule"] == "two-part"
    seen, unseen = report["seen"], report["gate"]
    assert seen["queries"] == report["held_out_seen"]["queries"] >= 3
    assert unseen["queries"] == report["held_out"]["queries"] > 0
    assert seen["wins"] + seen["losses"] + seen["ties"] == seen["queries"]
    assert "queries about documents it trained on" in report["reason"]
    assert "queries about documents no training query cites" in report["reason"]
    # Served only when better on the trained documents and not worse on the others.
    served = seen["interval"][0] > 0 and unseen["interval"][1] >= 0
    assert report["promoted"] is served, report["reason"]
    assert (_snapshot(home) != before) is served
    # The held-out queries about trained documents: never trained on, their documents all are.
    db = Database(home.database_url)
    with db.read() as session:
        kept = session.query(TrainingPair).filter_by(model_version_id=report["version"]).all()
        metrics = json.loads(session.get(ModelVersion, report["version"]).metrics_json)
    trained = {p.document_id for p in kept if p.role == "train" and p.score >= 0.5}
    train_queries = {p.query for p in kept if p.role == "train"}
    held = {p.query: p.document_id for p in kept if p.role == "held_out" and p.score >= 0.5}
    about_trained = {q for q, doc in held.items() if doc in trained}
    assert len(about_trained) == seen["queries"] and not about_trained & train_queries
    assert metrics["gate_rule"] == "two-part" and metrics["seen"] == seen
    # The versions list says which comparison decided, with its interval.
    listed = cli("--home", home.home, "models", "list")
    low, high = seen["interval"]
    assert (f"gate two-part: {seen['gain']:+.4f} ({low:+.4f}..{high:+.4f}) on {seen['queries']} "
            "held-out queries about trained documents") in listed.out  # fmt: skip


def test_too_few_judged_queries_say_how_many_the_gate_needs(cli, home: Settings) -> None:  # type: ignore[no-untyped-def]
    # The sample's 40 judged queries: a tenth held out is too few for the gate to decide on.
    run = cli("--home", home.home, "train", DATA / "pairs.jsonl", "--epochs", "1",
              "--batch-size", "8", "--json", "--quiet")  # fmt: skip
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert not report["promoted"] and report["reason"].startswith("too few")
    assert report["judged_queries"] == 40
    needed = report["judgements_needed"]
    assert isinstance(needed, int) and needed >= 100  # 10 held out, a tenth of the queries
    # And what the learning curve shows near 40 judged queries.
    assert report["learning_curve"] == [asdict(point) for point in nearest(40)] != []
    said = needed_said(40, needed)
    assert said.startswith(f"40 judged queries; the gate needs about {needed} to tell whether "
                           "training helps; on the ")  # fmt: skip
    listed = cli("--home", home.home, "models", "list")
    assert said in listed.out
    as_json = json.loads(cli("--home", home.home, "models", "list", "--json").out)
    assert as_json[-1]["judgements_needed"] == needed and as_json[-1]["needed"] == said
    # (A training that could decide: the --folds test below.)


def test_folds_score_each_judged_query_by_a_model_not_trained_on_it(cli, home: Settings) -> None:  # type: ignore[no-untyped-def]
    before = _snapshot(home)
    run = cli("--home", home.home, "train", DATA / "pairs.jsonl", "--epochs", "1",
              "--batch-size", "8", "--folds", "2", "--gate", "two-part", "--min-queries", "3",
              "--titles", "10", "--json", "--quiet")  # fmt: skip
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["folds"] == 2 and report["judged_queries"] == 40
    assert report["title_queries"] == 10  # trained on in every fold, never judged
    assert 0 < report["folds_seconds"] < report["seconds"]  # what the folds cost is said
    # Every judged query is scored once: by document, or about documents other folds cite.
    by_document, seen = report["held_out"]["queries"], report["held_out_seen"]["queries"]
    assert by_document + seen == 40 and seen >= 3
    assert report["gate"]["queries"] == by_document and report["seen"]["queries"] == seen
    assert report["pooled"]["queries"] == 40  # what the two-part gate decides on with folds
    assert not report["reason"].startswith("too few"), report["reason"]
    # Decided: more judgements are asked for only where a gain was not yet sure.
    unsure = not report["promoted"] and report["pooled"]["gain"] > 0
    assert (report["judgements_needed"] is not None) is unsure, report["reason"]
    assert not unsure or report["judgements_needed"] > 40
    assert (_snapshot(home) != before) is report["promoted"]
    # The candidate trained on every judged query; the fold models are gone.
    db = Database(home.database_url)
    with db.read() as session:
        kept = session.query(TrainingPair).filter_by(model_version_id=report["version"]).all()
    assert {p.role for p in kept} == {"train"} and len({p.query for p in kept}) == 40
    assert not list(home.models_dir.glob("fold-*"))
    listed = cli("--home", home.home, "models", "list")
    assert "on 40 judged queries, each held out once (2 folds)" in listed.out


def test_titles_are_pseudo_queries_asked_of_their_documents_text(home: Settings) -> None:
    pairs = title_pairs(Searcher(home), 1000, seed=0)
    assert len(pairs) >= 20  # the sample's documents with a title of three words or more
    for pair in pairs:
        assert len(pair.query.split()) >= 3 and pair.relevant_document
        assert pair.query.lower() not in pair.text[:300].lower(), pair  # not a trivial match
    assert len({pair.query for pair in pairs}) == len(pairs)
    assert [p.query for p in title_pairs(Searcher(home), 5, seed=0)] == [
        p.query for p in pairs[:5]
    ]  # seeded


def test_hybrid_blends_by_the_served_versions_weight(home: Settings) -> None:
    db = Database(home.database_url)
    searcher = Searcher(home, db)
    query = "how often should I feed a sourdough starter"
    dense = [r.doc_id for r in searcher.search(query, k=5, mode="dense")]
    keyword = [r.doc_id for r in searcher.search(query, k=5, mode="keyword")]
    assert dense != keyword and searcher.dense_weight == 0.5
    for weight, alone in ((1.0, dense), (0.0, keyword)):
        with db.write() as session:
            session.get(ModelVersion, 1).dense_weight = weight
        assert [r.doc_id for r in Searcher(home, db).search(query, k=5)] == alone


FOUR_ROWS = {"anchor": ["mites in the hive", "sour espresso", "a first telescope", "sticky dough"],
             "positive": ["Varroa mites weaken colonies.", "Grind finer to fix sour shots.",
                          "Aperture matters most.", "Add flour a spoonful at a time."]}  # fmt: skip


def test_a_one_step_training_still_learns(tmp_path: Path) -> None:
    # Four pairs in one batch: one step. A warm-up would spend it at learning rate 0.
    options = TrainingOptions(epochs=1, batch_size=4)
    fine_tune(EncoderSpec(), FOUR_ROWS, options, tmp_path / "model")
    before = Encoder(EncoderSpec()).encode(FOUR_ROWS["anchor"])
    after = Encoder(EncoderSpec(path=str(tmp_path / "model"))).encode(FOUR_ROWS["anchor"])
    assert not np.allclose(before, after, atol=1e-4)


def test_min_steps_trains_longer_and_toward_served_stays_nearer(tmp_path: Path) -> None:
    # Four pairs in one batch and one epoch, yet ten steps: --min-steps adds passes.
    longer = TrainingOptions(epochs=1, batch_size=4, min_steps=10)
    history = fine_tune(EncoderSpec(), FOUR_ROWS, longer, tmp_path / "free")
    assert [step for step, _ in history] == [5, 10]
    # The same ten steps held near the served weights move its embeddings less.
    held = TrainingOptions(epochs=1, batch_size=4, min_steps=10, toward_served=100.0)
    fine_tune(EncoderSpec(), FOUR_ROWS, held, tmp_path / "held")
    texts = FOUR_ROWS["anchor"] + FOUR_ROWS["positive"]
    start = Encoder(EncoderSpec()).encode(texts)
    moved = {name: float(np.linalg.norm(start - Encoder(EncoderSpec(
        path=str(tmp_path / name))).encode(texts))) for name in ("free", "held")}  # fmt: skip
    assert 0 < moved["held"] < 0.5 * moved["free"], moved
