"""The UI's first answer after start: `searchapp ui` launched, a real browser asks one query.

Starts `searchapp --home HOME ui` on a free port, waits for the server, opens the Search page in
Debian's Chromium (Playwright), types the query and presses Enter, and stops the clock when the
results are on the page (the "More results" button after the last result). Each round is a new
server process. Prints one JSON object: per round the seconds until the server answered its
health check and until the first results were shown, and the best of each.

    python bench/ui_first_answer.py --home /tmp/scifact [--query "..."] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_round(home: Path, query: str) -> dict[str, float]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        started = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "searchapp.cli", "--home", str(home), "ui", "--port",
             str(port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                        break
                except OSError:
                    if server.poll() is not None or time.perf_counter() - started > 120:
                        log.seek(0)
                        raise SystemExit("ui did not start:\n" + log.read()[-2000:]) from None
                    time.sleep(0.05)
            serving = time.perf_counter() - started
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_text("🔎 Search").click()
            box = page.get_by_label("Query")
            box.fill(query)
            box.press("Enter")
            expect(page.get_by_role("button", name="More results")).to_be_visible(timeout=120_000)
            answered = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
            browser.close()
    return {"server_ready_seconds": round(serving, 2), "first_answer_seconds": round(answered, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--query", default="vitamin D deficiency and bone fractures")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rounds = [one_round(args.home, args.query) for _ in range(args.rounds)]
    print(json.dumps({
        "home": str(args.home), "query": args.query, "rounds": rounds,
        "best_first_answer_seconds": min(r["first_answer_seconds"] for r in rounds),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
