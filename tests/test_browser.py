"""End to end in a real browser: Debian's Chromium, driven by Playwright, against `searchapp ui`.

Index the sample folder from the Index page, search, find the expected document among the first
three, give it a 👍, and check the pair is stored. Long work runs as jobs: training goes on while
the user clicks other pages, reloads the tab or opens a second one, and the UI's own memory stays
flat; an index job cancelled half-way leaves a sound, searchable store. Screenshots go to
tests/output/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from searchapp.settings import UI_TOKEN_ENV, Settings
from searchapp.store.database import Database
from searchapp.store.schema import Document, Feedback
from tests.conftest import DATA, REPO
from tests.test_jobs import many_notes, stored

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage",
]  # fmt: skip
OUTPUT = REPO / "tests" / "output"
QUERY = "how to get rid of varroa mites"
UI_TOKEN = "correct-horse-battery-staple"
EXPECTED = "varroa-mites.md"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`searchapp ui` on a free port with a fresh home; yields (url, home)."""
    yield from _serve(tmp_path, tmp_path / "home")


@pytest.fixture
def postgres_server_ui(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """`searchapp --database-url URL ui` with a fresh home; yields (url, home, database url)."""
    for url, home in _serve(tmp_path, tmp_path / "home", "--database-url", postgres_url):
        yield url, home, postgres_url


@pytest.fixture
def sample_server(sample_home: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`searchapp ui` over a copy of the indexed sample home; yields (url, home)."""
    shutil.copytree(sample_home.home, tmp_path / "home")
    yield from _serve(tmp_path, tmp_path / "home")


@pytest.fixture
def guarded_server(sample_home: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`searchapp ui` over a copy of the sample home that asks for ``UI_TOKEN``."""
    shutil.copytree(sample_home.home, tmp_path / "home")
    yield from _serve(tmp_path, tmp_path / "home", env={UI_TOKEN_ENV: UI_TOKEN})


def _serve(
    tmp_path: Path, home: Path, *options: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    log = (tmp_path / "ui.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home), *options, "ui",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
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


def _ui_process(home: Path) -> psutil.Process:
    """The Streamlit server serving ``home`` (the `searchapp ui` process became it)."""
    for process in psutil.process_iter(["cmdline", "environ"]):
        with contextlib.suppress(psutil.Error, TypeError):
            if "streamlit" in " ".join(process.info["cmdline"] or []) and (
                process.info["environ"] or {}
            ).get("SEARCHAPP_HOME") == str(home):
                return process
    raise AssertionError("the UI's process was not found")


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: the README's test command installs it (apt).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Page:
    return browser.new_page(viewport={"width": 1400, "height": 1000})


def _open(page: Page, url: str, page_name: str) -> None:
    page.goto(url)
    expect(page.get_by_text("searchapp").first).to_be_visible(timeout=120_000)
    page.get_by_text(page_name).click()


def _idle(page: Page) -> None:
    """Wait until Streamlit has finished running the page: connected, its script not running
    (the attribute Streamlit's own browser tests wait on) and its "Running…" widget gone."""
    page.wait_for_timeout(500)
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=60_000)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=300_000)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=300_000)


def test_index_search_and_thumbs_up_in_a_real_browser(server: tuple[str, Path], page: Page) -> None:
    url, home = server
    _index_search_and_vote(page, url, Settings.load(home).database_url)


def test_the_ui_works_the_same_on_postgresql(
    postgres_server_ui: tuple[str, Path, str], page: Page
) -> None:
    url, home, database_url = postgres_server_ui
    _index_search_and_vote(page, url, database_url)
    assert not list(home.glob("*.db"))  # everything went to the server


def _index_search_and_vote(page: Page, url: str, database_url: str) -> None:
    """Index the sample from the Index page, search it, give the expected result a 👍, and
    find that 👍 in the store."""
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
    _idle(page)
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

    db = Database(database_url)
    with db.read() as session:
        stored = (
            session.query(Feedback.query, Document.path, Feedback.label)
            .join(Document, Document.id == Feedback.document_id)
            .all()
        )
    assert len(stored) == 1
    assert stored[0][0] == QUERY and stored[0][1].endswith(EXPECTED) and stored[0][2] == 1


def test_training_jobs_survive_clicks_reloads_and_a_second_tab(
    sample_server: tuple[str, Path], browser: Browser, page: Page
) -> None:
    url, home = sample_server
    _open(page, url, "🎓 Train")
    expect(page.get_by_text("Model versions")).to_be_visible(timeout=120_000)
    ui = _ui_process(home)
    memory_before = ui.memory_info().rss
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        str(DATA / "pairs.jsonl")
    )
    expect(page.get_by_text("pairs.jsonl:")).to_be_visible(timeout=60_000)
    page.get_by_label("Epochs").fill("1")
    page.get_by_text("Serve the new version even if it is not better").click()
    for _ in range(2):  # two trainings: they queue, one writer at a time
        page.get_by_role("button", name="Train").click()
        page.wait_for_timeout(1500)
    expect(page.get_by_text("Job 1 · train")).to_be_visible(timeout=60_000)

    # Click away and back, reload the tab, open a second one: the jobs go on, both tabs see them.
    page.get_by_text("🔎 Search").click()
    page.wait_for_timeout(2000)
    page.get_by_text("🩺 Status").click()
    expect(page.get_by_text("All jobs")).to_be_visible(timeout=60_000)
    page.reload()
    expect(page.get_by_text("searchapp").first).to_be_visible(timeout=120_000)
    page.get_by_text("🎓 Train").click()
    second = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(second, url, "🎓 Train")
    for tab in (page, second):
        expect(tab.get_by_text("Job 2 · train").first).to_be_visible(timeout=60_000)
    expect(second.get_by_text("queued behind job").first).to_be_visible(timeout=120_000)

    for tab in (page, second):  # each ends with the gate's decision shown
        expect(tab.get_by_text("Version 3: promoted")).to_be_visible(timeout=900_000)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    second.screenshot(path=str(OUTPUT / "browser-training-jobs.png"), full_page=True)
    for log in home.joinpath("jobs").glob("*.log"):
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    grown_mb = (ui.memory_info().rss - memory_before) / 2**20
    assert grown_mb < 100, f"the UI's process grew by {grown_mb:.0f} MB over two trainings"


def test_an_index_job_cancelled_half_way_leaves_a_sound_searchable_store(
    server: tuple[str, Path], page: Page, tmp_path: Path
) -> None:
    url, home = server
    folder = many_notes(tmp_path / "notes", 200)
    _open(page, url, "📁 Index")
    page.get_by_label("Folder on this machine").fill(str(folder))
    page.get_by_role("button", name="Index folder").click()
    progress = page.get_by_text(re.compile(r"index notes: \d+ / 200")).first
    expect(progress).to_be_visible(timeout=300_000)
    deadline = time.monotonic() + 300
    while not stored(home)[0]:  # the first batch of documents is committed: cancel now
        assert time.monotonic() < deadline, "nothing was committed"
        time.sleep(0.2)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("Job 1 · index · cancelled")).to_be_visible(timeout=120_000)
    expect(page.get_by_role("button", name="Resume")).to_be_visible()

    check = subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home), "check", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert check.returncode == 0 and json.loads(check.stdout)["ok"], check.stdout + check.stderr
    found = subprocess.run(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home), "search", "hive brood",
         "--json", "--mode", "dense", "--k", "3"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)["results"]) == 3
    assert stored(home)[0] < 200  # it did stop half-way


def test_a_ui_with_a_token_shows_nothing_until_it_is_given(
    guarded_server: tuple[str, Path], page: Page
) -> None:
    url, _ = guarded_server
    page.goto(url)
    token = page.get_by_label("Token", exact=True)
    expect(token).to_be_visible(timeout=120_000)
    expect(page.get_by_label("Query")).to_have_count(0)  # no page, no sidebar
    expect(page.get_by_text("🔎 Search")).to_have_count(0)
    token.fill("wrong-token")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_text("That is not the token")).to_be_visible(timeout=60_000)
    _idle(page)
    expect(page.get_by_label("Query")).to_have_count(0)
    page.screenshot(path=str(OUTPUT / "token-refused.png"))
    token.fill(UI_TOKEN)
    page.get_by_role("button", name="Open").click()
    query = page.get_by_label("Query")
    expect(query).to_be_visible(timeout=120_000)
    query.fill(QUERY)
    _idle(page)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("button", name="More results")).to_be_visible(timeout=180_000)
    expect(page.get_by_text(EXPECTED).first).to_be_visible()
    # A second browser session asks again.
    other = page.context.browser.new_page()  # type: ignore[union-attr]
    other.goto(url)
    expect(other.get_by_label("Token", exact=True)).to_be_visible(timeout=120_000)
    expect(other.get_by_label("Query")).to_have_count(0)
    other.close()
