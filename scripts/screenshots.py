"""Screenshots of each UI page for the docs: starts `searchapp ui` on a home with data/ indexed.

python scripts/screenshots.py            # writes docs/screenshots/*.png
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage"]  # fmt: skip


def main() -> None:
    out = REPO / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="searchapp-shots-"))
    cli = [sys.executable, "-m", "searchapp.cli", "--home", str(home)]
    subprocess.run([*cli, "index", str(REPO / "data"), "--quiet"], check=True)
    with socket.socket() as probe:  # a free port: never talk to a server left from another run
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([*cli, "ui", "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            query = page.get_by_label("Query")
            query.fill("how do I keep my sourdough starter alive")
            query.press("Enter")
            page.get_by_role("button", name="More results").wait_for(timeout=300_000)
            page.screenshot(path=str(out / "search.png"), full_page=True)
            for label, name in (("📁 Index", "index"), ("🎓 Train", "train"),
                                ("🩺 Status", "status")):  # fmt: skip
                page.get_by_text(label).click()
                page.get_by_role("heading", name=label.split()[1], exact=True).wait_for(
                    timeout=300_000
                )
                time.sleep(5)  # let the page finish (the status page runs its health check)
                page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
