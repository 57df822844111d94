"""The web UI's pages, driven by Streamlit's AppTest on real homes (real model, real SQLite)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from searchapp.feedback import record_feedback
from searchapp.jobs import list_jobs
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Feedback
from tests.conftest import DATA, REPO
from tests.format_samples import render_page

APP = str(REPO / "ui" / "app.py")


def _app(home: Path, monkeypatch: pytest.MonkeyPatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("SEARCHAPP_HOME", str(home))
    app = AppTest.from_file(APP, default_timeout=300).run()
    if page:
        app.sidebar.radio[0].set_value(page)
        app.run()
    assert not app.exception, app.exception
    return app


@pytest.fixture
def own_home(sample_home: Settings, tmp_path: Path) -> Path:
    """A copy of the sample home that a test may change."""
    shutil.copytree(sample_home.home, tmp_path / "home")
    return tmp_path / "home"


def _search(app: AppTest, query: str) -> AppTest:
    app.text_input(key="q").input(query)
    app.button[0].click()  # the form's Search button
    app.run()
    assert not app.exception, app.exception
    return app


def _after_jobs(app: AppTest, home: Path, timeout: float = 600.0) -> AppTest:
    """Wait for the jobs the page started (processes of their own), then look again."""
    db = Database(Settings.load(home).database_url)
    deadline = time.monotonic() + timeout
    while any(view.active for view in list_jobs(db)):
        assert time.monotonic() < deadline, "the page's jobs did not end"
        time.sleep(0.5)
    app.run()
    assert not app.exception, app.exception
    return app


def _captions(app: AppTest) -> list[str]:
    return [c.value for c in app.caption]


def test_search_page_shows_ranked_documents_with_snippets(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _search(_app(sample_home.home, monkeypatch), "how to get rid of varroa mites")
    assert any("varroa-mites.md" in c for c in _captions(app))
    assert any(m.value.startswith("#### 1. ") for m in app.markdown)
    assert any("**mites**" in m.value.lower() for m in app.markdown)


def test_empty_query_asks_for_one(sample_home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _search(_app(sample_home.home, monkeypatch), "   ")
    assert "Type a query" in app.info[0].value


def test_odd_queries_get_an_answer_not_a_traceback(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(sample_home.home, monkeypatch)
    for query in ['"unbalanced', "bees AND (honey", "🐝🍯", "NEAR(a b)", "x" * 3000]:
        _search(app, query)
        assert not app.error


def test_unmatched_query_says_so(sample_home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(sample_home.home, monkeypatch)
    app.radio(key="mode").set_value("keyword")
    _search(app, "zzzyqx")
    assert "No documents match" in app.info[0].value


def test_far_fetched_query_is_flagged_as_not_confident(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _search(_app(sample_home.home, monkeypatch), "quarterly tax filing for corporations")
    assert any("No confident match" in i.value for i in app.info)


def test_file_type_filter_keeps_only_that_type(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(sample_home.home, monkeypatch)
    app.multiselect(key="filter_types").set_value(["pdf"])
    _search(app, "how to brew coffee")
    paths = [c.split("  ·  ")[0] for c in _captions(app) if "  ·  score" in c]
    assert paths and all(p.endswith(".pdf") for p in paths)


def test_thumbs_up_is_stored_and_can_be_undone(
    own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _search(_app(own_home, monkeypatch), "how to make a sourdough starter")
    up = next(b for b in app.button if b.label == "👍")
    up.click()
    app.run()
    assert any("Recorded: 👍 relevant" in s.value for s in app.success)
    db = Database(Settings.load(own_home).database_url)
    with db.read() as session:
        rows = session.query(Feedback.query, Feedback.label).all()
    assert rows == [("how to make a sourdough starter", 1)]

    next(b for b in app.button if b.label == "Undo").click()
    app.run()
    with db.read() as session:
        assert session.query(Feedback).count() == 0


def test_more_like_this_shows_related_documents(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _search(_app(sample_home.home, monkeypatch), "varroa mites")
    next(b for b in app.button if b.label == "More like this").click()
    app.run()
    assert any(s.value.startswith("More like") for s in app.subheader)
    assert any("/bees/" in c for c in _captions(app))


def test_index_page_indexes_a_folder_and_names_failed_files(
    own_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "new-folder"
    shutil.copytree(DATA / "docs" / "astronomy", folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    for name in ("one.png", "two.png", "three.png"):
        render_page("A photographed note.", width=600, height=200).save(folder / name)
    app = _app(own_home, monkeypatch, page="📁 Index")
    app.text_input[0].input(str(folder))
    app.checkbox[0].uncheck()  # OCR off: the pictures are skipped, and grouped by why
    next(b for b in app.button if b.label == "Index folder").click()
    app.run()
    assert not app.exception, app.exception
    _after_jobs(app, own_home)
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Added"], metrics["Failed"], metrics["Skipped"]) == ("6", "1", "3")
    assert any("could not be indexed" in e.value for e in app.error)
    assert any(str(folder) in m.value for m in app.markdown)
    assert [e.label for e in app.expander if "files:" in e.label] == [
        "3 files: needs OCR, and OCR is off (--no-ocr)"
    ]


def test_index_page_reports_a_missing_folder(
    own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(own_home, monkeypatch, page="📁 Index")
    app.text_input[0].input("/no/such/folder")
    next(b for b in app.button if b.label == "Index folder").click()
    app.run()
    assert "does not exist" in app.error[0].value


def test_status_page_shows_the_model_counts_and_a_healthy_store(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(sample_home.home, monkeypatch, page="🩺 Status")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Documents"] == "30"
    assert any("fingerprint" in m.value for m in app.markdown)
    assert app.success and not app.error  # every health check passes


def test_the_health_check_runs_when_the_store_changes_not_on_every_render(
    own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui import status_page

    checked = []
    check_store = status_page.check_store
    monkeypatch.setattr(status_page, "check_store", lambda *a: checked.append(a) or check_store(*a))
    app = _app(own_home, monkeypatch, page="🩺 Status")
    app.run()
    app.run()
    assert len(checked) == 1 and app.success and not app.error
    index_file = next((own_home / "index").glob("generation-*.faiss"))
    index_file.write_bytes(index_file.read_bytes()[:-8])  # damaged: the next render sees it
    app.run()
    assert len(checked) == 2
    assert any("fails its checksum" in e.value for e in app.error), [e.value for e in app.error]


def test_train_page_counts_feedback_and_lists_versions(
    own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(own_home, monkeypatch, page="🎓 Train")
    assert any("**0** 👍" in m.value for m in app.markdown)
    next(b for b in app.button if b.label == "Roll back to the previous version").click()
    app.run()
    _after_jobs(app, own_home)
    assert any("no earlier model version" in e.value for e in app.error)


def test_empty_home_explains_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _search(_app(tmp_path, monkeypatch), "bees")
    assert "Nothing is indexed" in app.warning[0].value


def test_train_page_trains_shows_the_gate_and_serves_the_new_version(
    own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pairs from feedback: a few 👍, as the search page stores them.
    searcher = Searcher(Settings.load(own_home))
    for query in ("varroa mite treatment", "espresso grind size", "sourdough starter feeding",
                  "treating a burn", "choosing a telescope", "preventing a swarm",
                  "pour over coffee bloom", "bread dough too sticky", "cold brew ratio",
                  "first aid for a sprained ankle", "dark sky for stargazing",
                  "harvesting honey"):  # fmt: skip
        record_feedback(searcher.db, query, searcher.search(query, k=1)[0].doc_id, True)
    app = _app(own_home, monkeypatch, page="🎓 Train")
    assert any("**12** 👍" in m.value for m in app.markdown)
    next(n for n in app.number_input if n.label == "Epochs").set_value(1)
    # A dozen 👍 are too few for the gate to tell: it says so, and the served version stays.
    next(b for b in app.button if b.label == "Train").click()
    app.run()
    assert not app.exception, app.exception
    _after_jobs(app, own_home)
    warning = next(w.value for w in app.warning if "not promoted" in w.value)
    assert "too few held-out queries about documents it trained on to decide" in warning
    assert "100 judged queries, some of them about the same documents" in warning
    statuses = {row["status"] for row in app.dataframe[0].value.to_dict("records")}
    assert statuses == {"active", "candidate"}
    # The user may serve it anyway.
    next(c for c in app.checkbox if "even if it is not better" in c.label).check()
    next(r for r in app.radio if r.label.startswith("Gate")).set_value("by-document")
    next(b for b in app.button if b.label == "Train").click()
    app.run()
    assert not app.exception, app.exception
    _after_jobs(app, own_home)
    success = next(s.value for s in app.success if "promoted" in s.value)
    assert "forced" in success and "held-out queries (95% interval" in success
    assert "documents it trained on" not in success  # the by-document gate, as chosen
    assert any("the gate alone would not have served it" in c.value for c in app.caption)
    assert app.table  # before / after metrics
    # The same pairs trained the same weights: the kept candidate is the version now served.
    statuses = [row["status"] for row in app.dataframe[0].value.to_dict("records")]
    assert sorted(statuses) == ["active", "retired"]


def test_index_page_switch_watches_a_folder_until_switched_off(
    own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(own_home, monkeypatch, page="📁 Index")
    db = Database(Settings.load(own_home).database_url)
    switch = next(t for t in app.toggle if t.label == "Watch")
    switch.set_value(True).run()
    watcher = next(view for view in list_jobs(db) if view.kind == "watch")
    assert watcher.active and watcher.options["paths"] == [str(DATA)]
    deadline = time.monotonic() + 300
    while list_jobs(db)[0].kind == "watch" or list_jobs(db)[0].active:  # its first run ends
        assert time.monotonic() < deadline, "the watcher's first run did not end"
        time.sleep(0.5)
    app.run()
    switch = next(t for t in app.toggle if t.label == "Watch")
    assert switch.value is True  # every session sees the folder watched
    switch.set_value(False).run()
    _after_jobs(app, own_home)
    assert [view.state for view in list_jobs(db) if view.kind == "watch"] == ["cancelled"]


def test_train_page_switches_the_model_as_a_job_and_status_names_it(
    own_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_models import save_model

    model = save_model(tmp_path / "minilm-cls", window=512, pooling="cls")
    app = _app(own_home, monkeypatch, page="🎓 Train")
    switch = next(b for b in app.button if b.label == "Switch")
    switch.click()
    app.run()
    assert any("Name a model" in e.value for e in app.error)
    next(t for t in app.text_input if t.label.startswith("Model:")).input(str(tmp_path / "nope"))
    next(b for b in app.button if b.label == "Switch").click()
    app.run()
    assert any("There is no model folder" in e.value for e in app.error)
    assert not list_jobs(Database(Settings.load(own_home).database_url))

    next(t for t in app.text_input if t.label.startswith("Model:")).input(str(model))
    next(b for b in app.button if b.label == "Switch").click()
    app.run()
    assert not app.exception, app.exception
    _after_jobs(app, own_home)
    said = next(s.value for s in app.success if "Model version" in s.value)
    assert str(model) in said and "384 dimensions" in said and "no evaluation set" in said
    rows = app.dataframe[0].value.to_dict("records")
    (served,) = [row for row in rows if row["status"] == "active"]
    assert served["base model"] == str(model) and served["pooling"] == "cls"

    status = _app(own_home, monkeypatch, page="🩺 Status")
    assert any(f"base model `{model}`, 384 dimensions" in m.value for m in status.markdown)
