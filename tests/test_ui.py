"""The search page, driven by Streamlit's AppTest against a real home."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from searchapp.settings import Settings
from tests.conftest import REPO

APP = str(REPO / "ui" / "app.py")


@pytest.fixture
def app(sample_home: Settings, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SEARCHAPP_HOME", str(sample_home.home))
    return AppTest.from_file(APP, default_timeout=120).run()


def _search(app: AppTest, query: str) -> AppTest:
    app.text_input[0].input(query)
    app.button[0].click()
    return app.run()


def test_search_page_shows_ranked_documents_with_snippets(app: AppTest) -> None:
    _search(app, "how to get rid of varroa mites")
    assert not app.exception
    captions = [c.value for c in app.caption]
    assert any(c.endswith("varroa-mites.md") for c in captions)
    markdown = " ".join(m.value for m in app.markdown)
    assert "1. " in markdown and "**mites**" in markdown.lower()


def test_empty_query_asks_for_one(app: AppTest) -> None:
    _search(app, "   ")
    assert not app.exception
    assert "Type a query" in app.info[0].value


def test_unmatched_query_says_so(app: AppTest) -> None:
    app.radio[0].set_value("keyword")
    _search(app, "zzzyqx")
    assert not app.exception
    assert "No documents match" in app.info[0].value


def test_empty_home_explains_what_to_do(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEARCHAPP_HOME", str(tmp_path))
    app = AppTest.from_file(APP, default_timeout=120).run()
    _search(app, "bees")
    assert not app.exception
    assert "Nothing is indexed" in app.warning[0].value
