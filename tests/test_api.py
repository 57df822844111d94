"""``searchapp serve``: the HTTP API, run as a real server process over a copy of the sample."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from searchapp.feedback import feedback_for
from searchapp.settings import Settings
from searchapp.store.database import Database

TOKEN = "test-token-5b2f"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A ``searchapp serve`` process and a small client for it."""

    def __init__(
        self,
        home: Path,
        host: str = "127.0.0.1",
        token: str | None = None,
        database_url: str | None = None,
    ) -> None:
        self.home, self.port = home, _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if database_url:
            env["SEARCHAPP_DATABASE_URL"] = database_url
        env.pop("SEARCHAPP_API_TOKEN", None)
        if token:
            env["SEARCHAPP_API_TOKEN"] = token
        self.process = subprocess.Popen(
            [sys.executable, "-m", "searchapp.cli", "--home", str(home), "serve",
             "--host", host, "--port", str(self.port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                assert self.process.poll() is None, self.process.stdout.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)

    def request(
        self, path: str, body: dict | None = None, token: str | None = None
    ) -> tuple[int, object]:
        """(status, decoded JSON) of GET ``path``, or POST of ``body``."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def served_home(tmp_path_factory: pytest.TempPathFactory, sample_home: Settings) -> Path:
    home = tmp_path_factory.mktemp("api") / "home"
    shutil.copytree(sample_home.home, home)
    return home


@pytest.fixture(scope="module")
def server(served_home: Path) -> Iterator[Server]:
    server = Server(served_home)
    yield server
    server.stop()


def test_search_answers_exactly_as_the_command_line(server: Server, served_home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    for query, mode, k in (("varroa mites", "hybrid", 5), ("espresso tastes sour", "dense", 3),
                           ("sourdough starter", "keyword", 10)):  # fmt: skip
        run = cli("--home", served_home, "search", query, "--mode", mode, "--k", k, "--json")
        params = urllib.parse.urlencode({"q": query, "mode": mode, "k": k})
        status, answer = server.request(f"/search?{params}")
        assert status == 200 and answer == json.loads(run.out)
        assert answer["results"]  # type: ignore[index]


def test_bad_parameters_get_422_with_the_reason(server: Server) -> None:
    cases = {
        "/search?q=bees&k=0": "greater than or equal to 1",
        "/search?q=bees&k=many": "valid integer",
        "/search?q=bees&mode=fuzzy": "'dense', 'keyword' or 'hybrid'",
        "/search": "Field required",
        "/search?q=%20%20": "blank",
        "/jobs?limit=-1": "greater than or equal to 1",
    }
    for path, reason in cases.items():
        status, answer = server.request(path)
        assert status == 422, (path, answer)
        assert reason in json.dumps(answer), (path, answer)
    status, answer = server.request("/feedback", {"query": "bees", "document_id": 99999,
                                                  "relevant": True})  # fmt: skip
    assert status == 404 and "no longer indexed" in answer["detail"]  # type: ignore[index]
    status, answer = server.request("/feedback", {"query": "bees"})
    assert status == 422 and "document_id" in json.dumps(answer)


def test_feedback_is_stored_and_health_and_jobs_answer(server: Server, served_home: Path) -> None:
    _, answer = server.request("/search?q=varroa&k=1")
    doc_id = answer["results"][0]["doc_id"]  # type: ignore[index]
    status, stored = server.request(
        "/feedback", {"query": "varroa", "document_id": doc_id, "relevant": True}
    )
    assert status == 200 and stored["stored"] is True  # type: ignore[index]
    assert feedback_for(Database(Settings.load(served_home).database_url), "varroa") == {
        doc_id: True
    }
    status, health = server.request("/health")
    assert status == 200
    assert health == {"status": "ok", "documents": 30, "chunks": health["chunks"],  # type: ignore[index]
                      "model_version": 1, "generation": 1}  # fmt: skip
    status, jobs = server.request("/jobs")
    assert status == 200 and jobs == []
    status, spec = server.request("/openapi.json")
    assert status == 200
    assert {"/search", "/feedback", "/jobs", "/health"} <= set(spec["paths"])  # type: ignore[index]


def test_the_api_keeps_to_its_openapi_description_under_fuzzing(
    tmp_path: Path, sample_home: Settings
) -> None:
    """schemathesis, every check (no server error; only documented status codes and bodies;
    invalid input refused, valid accepted; with a token, none accepted without it), against a
    server on loopback without a token and one with, for a fixed, seeded budget."""
    home = tmp_path / "home"
    shutil.copytree(sample_home.home, home)
    schemathesis = Path(sys.executable).with_name("schemathesis")
    for token in (None, "fuzzing-token"):
        server = Server(home, token=token)
        try:
            run = subprocess.run(
                [str(schemathesis), "run", f"{server.base}/openapi.json", "--checks", "all",
                 "--max-examples", "60", "--generation-deterministic", "--no-color",
                 *(["--header", f"Authorization: Bearer {token}"] if token else [])],
                capture_output=True, text=True, timeout=600, cwd=tmp_path,  # its caches there
            )  # fmt: skip
        finally:
            server.stop()
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "No issues found" in run.stdout and " passed" in run.stdout, run.stdout[-2000:]


def test_the_ui_beyond_loopback_refuses_to_start_without_a_token(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SEARCHAPP_UI_TOKEN", raising=False)
    monkeypatch.delenv("SEARCHAPP_API_TOKEN", raising=False)
    for flag in ("--address", "--host"):
        refused = cli("--home", tmp_path / "home", "ui", flag, "0.0.0.0")
        assert refused.code == 2, refused.err
        assert "SEARCHAPP_UI_TOKEN" in refused.err and "0.0.0.0" in refused.err
        assert not (tmp_path / "home").exists()  # nothing created


def test_beyond_loopback_a_token_is_required(served_home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    refused = cli("--home", served_home, "serve", "--host", "0.0.0.0")
    assert refused.code == 2 and "SEARCHAPP_API_TOKEN" in refused.err

    server = Server(served_home, host="0.0.0.0", token=TOKEN)
    try:
        for token in (None, "wrong"):
            status, answer = server.request("/search?q=varroa", token=token)
            assert status == 401 and "bearer token" in answer["detail"]  # type: ignore[index]
            assert "results" not in answer  # type: ignore[operator]
        assert server.request("/health")[0] == 401
        status, answer = server.request("/search?q=varroa", token=TOKEN)
        assert status == 200 and answer["results"]  # type: ignore[index]
    finally:
        server.stop()
