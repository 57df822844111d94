"""End to end in a real browser: Debian's Chromium, driven by Playwright, against `searchapp ui`.

Index the sample folder from the Index page, search, find the expected document among the first
three, give it a 👍, and check the pair is stored. A screenshot goes to tests/output/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Document, Feedback
from tests.conftest import DATA, REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage",
]  # fmt: skip
OUTPUT = REPO / "tests" / "output"
QUERY = "how to get rid of varroa mites"
EXPECTED = "varroa-mites.md"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`searchapp ui` on a free port with a fresh home; yields (url, home)."""
    home = tmp_path / "home"
    port = _free_port()
    log = (tmp_path / "ui.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home), "ui", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("searchapp ui did not start: " + (tmp_path / "ui.log").read_text()[-2000:])
    yield url, home
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: the README's test command installs it (apt).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def _idle(page: Page) -> None:
    """Wait until Streamlit has finished running the page (its "Running…" widget is gone)."""
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=300_000)


def test_index_search_and_thumbs_up_in_a_real_browser(server: tuple[str, Path], page: Page) -> None:
    url, home = server
    page.goto(url)
    expect(page.get_by_text("searchapp").first).to_be_visible(timeout=120_000)

    _idle(page)
    page.get_by_text("📁 Index").click()
    _idle(page)
    page.get_by_label("Folder on this machine").fill(str(DATA))
    page.get_by_role("button", name="Index folder").click()
    expect(page.get_by_text("Chunks embedded")).to_be_visible(timeout=300_000)
    expect(page.get_by_text(str(DATA), exact=False).first).to_be_visible()

    _idle(page)
    page.get_by_text("🔎 Search").click()
    _idle(page)
    query = page.get_by_label("Query")
    query.fill(QUERY)
    expect(query).to_have_value(QUERY)
    query.press("Enter")  # Enter searches
    # The page is complete when the button after the last result is there.
    expect(page.get_by_role("button", name="More results")).to_be_visible(timeout=180_000)
    captions = page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
    ranked = [c for c in captions if "score" in c]
    assert any(EXPECTED in c for c in ranked[:3]), ranked[:5]

    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "browser-search-results.png"), full_page=False)

    position = next(i for i, c in enumerate(ranked) if EXPECTED in c)
    _idle(page)
    page.get_by_role("button", name="👍").nth(position).click()
    expect(page.get_by_text("Recorded: 👍 relevant")).to_be_visible(timeout=60_000)

    db = Database(Settings.load(home).database_url)
    with db.read() as session:
        stored = (
            session.query(Feedback.query, Document.path, Feedback.label)
            .join(Document, Document.id == Feedback.document_id)
            .all()
        )
    assert len(stored) == 1
    assert stored[0][0] == QUERY and stored[0][1].endswith(EXPECTED) and stored[0][2] == 1
