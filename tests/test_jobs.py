"""Long work as jobs: a row and a process that outlive whoever started them, one writer at a time
in order, cancellable, and found out when their process dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from indexer.pipeline import IndexSummary
from indexer.training.options import TrainingOptions
from searchapp import jobs
from searchapp.errors import InvalidOptionError
from searchapp.operations import IndexOptions, RemoveOptions, RemoveResult
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Chunk, Document, Job
from tests.format_samples import write_png

TIMEOUT = 240.0


def wait_for(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def job(cli, home: Path, job_id: int) -> dict:  # type: ignore[no-untyped-def]
    run = cli("--home", home, "jobs", "show", job_id, "--json")
    assert run.code == 0, run.err
    return json.loads(run.out)


def many_notes(folder: Path, count: int) -> Path:
    """A folder big enough that indexing it takes a while: ``count`` notes of about six chunks."""
    words = ["hive", "colony", "queen", "brood", "nectar", "pollen", "comb", "frame", "smoker"]
    for i in range(count):
        body = " ".join(words[(i + j) % len(words)] for j in range(1200))
        (folder / f"note-{i:04}.md").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"note-{i:04}.md").write_text(f"# Note {i}\n\n{body} number{i}\n")
    return folder


def stored(home: Path) -> tuple[int, int, int]:
    """(documents, distinct document URIs, chunks) in the home."""
    db = Database(Settings.load(home).database_url)
    with db.read() as session:
        documents = session.scalar(select(func.count(Document.id)))
        uris = session.scalar(select(func.count(func.distinct(Document.uri))))
        chunks = session.scalar(select(func.count(Chunk.id)))
    return documents or 0, uris or 0, chunks or 0


def test_background_jobs_run_in_turn_and_report_their_result(cli, docs_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    first = cli("--home", home, "index", docs_copy, "--background", "--json")
    assert first.code == 0, first.err
    first_id = json.loads(first.out)["job"]
    second = cli("--home", home, "check", "--repair", "--background")
    assert second.code == 0 and "job 2 started" in second.out
    # The second write job waits for the first instead of failing with "writer busy".
    queued = wait_for(lambda: (j := job(cli, home, 2))["stage"] == "queued behind job 1" and j,
                      "the second job to queue")  # fmt: skip
    assert queued["state"] == "queued" and queued["started_at"] is None
    done = wait_for(lambda: (j := job(cli, home, first_id))["state"] == "succeeded" and j,
                    "the index job")  # fmt: skip
    assert done["kind"] == "index" and done["result"]["added"] == len(list(docs_copy.rglob("*.*")))
    assert done["error"] is None and done["pid"] > 0
    repair = wait_for(lambda: (j := job(cli, home, 2))["state"] == "succeeded" and j, "the repair")
    assert repair["kind"] == "repair" and repair["result"]["ok"] is True
    assert repair["started_at"] >= done["ended_at"]  # one writer at a time, in order
    listed = cli("--home", home, "jobs", "list")
    assert listed.code == 0 and "succeeded" in listed.out
    assert f"index {docs_copy}" in listed.out and "repair" in listed.out
    # Searching works while and after jobs ran; the job's output is the command's JSON.
    found = cli("--home", home, "search", "varroa mites", "--json", "--mode", "keyword")
    assert json.loads(found.out)["results"][0]["path"].endswith("varroa-mites.md")


def test_a_cancelled_index_keeps_a_sound_store_and_resume_finishes_it(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    home, folder = tmp_path / "home", many_notes(tmp_path / "notes", 200)
    job_id = json.loads(cli("--home", home, "index", folder, "--background", "--json").out)["job"]
    wait_for(lambda: home.exists() and stored(home)[0] > 0, "the first documents to be committed")
    cancelled = cli("--home", home, "jobs", "cancel", job_id)
    assert cancelled.code == 0, cancelled.err
    ended = wait_for(lambda: (j := job(cli, home, job_id))["state"] != "running" and j, "cancel")
    assert ended["state"] == "cancelled" and ended["again"] == "Resume"
    check = cli("--home", home, "check")
    assert check.code == 0, check.out
    documents, uris, _ = stored(home)
    assert 0 < documents < 200 and uris == documents  # the finished part, searchable
    assert cli("--home", home, "search", "hive", "--mode", "dense", "--json").code == 0
    again = cli("--home", home, "jobs", "resume", job_id)
    assert again.code == 0, again.err
    wait_for(lambda: job(cli, home, job_id)["state"] == "succeeded", "the resumed job")
    documents, uris, chunks = stored(home)
    assert documents == uris == 200 and chunks >= 200  # nothing lost, nothing twice
    assert cli("--home", home, "check").code == 0


def test_a_killed_job_is_shown_interrupted_and_resume_finishes_it(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    home, folder = tmp_path / "home", many_notes(tmp_path / "notes", 200)
    job_id = json.loads(cli("--home", home, "index", folder, "--background", "--json").out)["job"]
    running = wait_for(lambda: (j := job(cli, home, job_id))["done"] >= 100 and j, "progress")
    os.kill(running["pid"], signal.SIGKILL)
    interrupted = wait_for(
        lambda: (j := job(cli, home, job_id))["state"] == "interrupted" and j, "the reaper"
    )
    assert "run it again" in interrupted["error"]
    shown = cli("--home", home, "jobs", "show", job_id)
    assert f"Resume it: searchapp jobs resume {job_id}" in shown.out
    assert cli("--home", home, "jobs", "resume", job_id).code == 0
    wait_for(lambda: job(cli, home, job_id)["state"] == "succeeded", "the resumed job")
    documents, uris, _ = stored(home)
    assert documents == uris == 200
    assert cli("--home", home, "check").code == 0


def test_job_commands_say_what_is_wrong(cli, home: Settings, docs_copy) -> None:  # type: ignore[no-untyped-def]
    assert cli("--home", home.home, "index", docs_copy, "--quiet").code == 0
    missing = cli("--home", home.home, "jobs", "show", "42")
    assert missing.code == 2 and "There is no job 42" in missing.err
    not_a_job = cli("--home", home.home, "check", "--background")
    assert not_a_job.code == 2 and "only `check --repair` runs as a job" in not_a_job.err
    db = Database(home.database_url, lock_path=home.write_lock_path)
    queued = jobs.submit(db, "index", IndexOptions(paths=(str(docs_copy),)))  # not started
    assert jobs.cancel(db, queued).state == "cancelled"
    ended = cli("--home", home.home, "jobs", "cancel", queued)
    assert ended.code == 2 and "already ended (cancelled)" in ended.err
    # Refused before anything is recorded: an unknown operation, options of another one, a
    # setting no command sets, options that cannot be.
    with pytest.raises(InvalidOptionError, match="Unknown operation 'search'"):
        jobs.submit(db, "search", IndexOptions(paths=("bees",)))
    with pytest.raises(InvalidOptionError, match="index takes IndexOptions, not RemoveOptions"):
        jobs.submit(db, "index", RemoveOptions(folder=str(docs_copy)))
    with pytest.raises(InvalidOptionError, match="A job cannot set home"):
        jobs.submit(db, "index", IndexOptions(paths=(str(docs_copy),)), {"home": "/tmp"})
    with pytest.raises(InvalidOptionError, match="Unknown loss 'sideways'"):
        TrainingOptions(loss="sideways")
    assert [view.id for view in jobs.list_jobs(db)] == [queued]


def test_a_job_stores_its_operation_and_options_and_runs_them_as_given(  # type: ignore[no-untyped-def]
    cli, docs_copy: Path, tmp_path: Path
) -> None:
    """What the UI does: an options object and a setting in, a typed result out; and a job an
    older searchapp recorded as a command line is shown but not run again."""
    home = Settings.load(tmp_path / "home")
    db = Database(home.database_url, lock_path=home.write_lock_path)
    write_png(docs_copy / "scan.png", "Feed the bees sugar syrup in early spring.")
    job_id = jobs.submit(db, "index", IndexOptions(paths=(str(docs_copy),)), {"ocr": False})
    assert jobs.run(home, job_id) == 0
    view = jobs.get_job(db, job_id)
    assert view.options == {"paths": [str(docs_copy)], "ignore": [], "pooling": None,
                            "layer": None, "model": None, "query_prompt": None,
                            "document_prompt": None}  # fmt: skip
    assert view.settings == {"ocr": False}
    summary = view.typed_result()
    assert isinstance(summary, IndexSummary) and summary.to_json() == view.result
    assert summary.added == len(list(docs_copy.rglob("*.*"))) - 1  # all but the scan
    assert [path for path, _ in summary.skipped] == [str(docs_copy / "scan.png")]
    assert "OCR is off" in summary.skipped[0][1]  # the setting reached the job's process
    assert view.command == f"index {docs_copy} · ocr=False"

    removed = jobs.submit(db, "remove", RemoveOptions(folder=str(docs_copy)))
    assert jobs.run(home, removed) == 0
    result = jobs.get_job(db, removed).typed_result()
    assert result == RemoveResult(folder=str(docs_copy), documents=summary.documents)
    gone = cli("--home", home.home, "search", "varroa mites", "--json", "--mode", "keyword")
    assert json.loads(gone.out)["results"] == []
    again = cli("--home", home.home, "remove", docs_copy)
    assert again.code == 2 and "is not an indexed folder" in again.err

    with db.write() as session:
        old = Job(kind="index", arguments=json.dumps(["index", "notes"]), cwd="/",
                  state="interrupted")  # fmt: skip
        session.add(old)
        session.flush()
        old_id = old.id
    shown = jobs.get_job(db, old_id)
    assert shown.command == "searchapp index notes" and shown.again is None
    with pytest.raises(InvalidOptionError, match="recorded by an older searchapp"):
        jobs.resume(home, db, old_id)


def test_ctrl_c_while_a_watcher_indexes_stops_the_watcher(  # type: ignore[no-untyped-def]
    home: Settings, docs_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import indexer.folders
    from indexer.watch import watch

    def interrupted(settings, options, progress) -> int:  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # the user's Ctrl-C, while the run indexes

    monkeypatch.setattr(indexer.folders, "run_index", interrupted)
    after_one_run = threading.Event()  # without the interrupt going on, the watcher would stay
    with pytest.raises(KeyboardInterrupt):
        watch(home, [docs_copy], stop=after_one_run, on_run=lambda view: after_one_run.set())
    db = Database(home.database_url)
    assert [view.state for view in jobs.list_jobs(db)] == ["cancelled"]


def test_a_watched_folder_follows_new_changed_renamed_and_deleted_files(
    docs_copy: Path, tmp_path: Path
) -> None:
    from searchapp.search import Searcher

    home = tmp_path / "home"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "searchapp.cli", "--home", str(home), "index", str(docs_copy),
         "--watch"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # as `searchapp index --watch &` in a script starts it: with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        db_ready = lambda: (home / "searchapp.db").exists() and stored(home)[0] > 0  # noqa: E731
        wait_for(db_ready, "the first index run")
        searcher = Searcher(Settings.load(home))

        def top(query: str) -> str | None:
            results = searcher.search(query, k=1, mode="keyword")
            return results[0].path if results else None

        def reflected(query: str, expected: str | None, what: str) -> float:
            started = time.monotonic()
            wait_for(lambda: (top(query) or "").endswith(expected or "\0") or
                     (expected is None and top(query) is None), what, timeout=60)  # fmt: skip
            return time.monotonic() - started

        note = docs_copy / "bees" / "swarm-traps.md"
        note.write_text(
            "# Swarm traps\n\nA bait hive with lemongrass oil catches zanzibarite swarms."
        )
        took = [reflected("zanzibarite", "swarm-traps.md", "a new file")]
        note.write_text("# Swarm traps\n\nOld comb in a bait hive attracts quokkalite scouts.")
        took.append(reflected("quokkalite", "swarm-traps.md", "a changed file"))
        renamed = note.with_name("bait-hives.md")
        note.rename(renamed)
        took.append(reflected("quokkalite", "bait-hives.md", "a renamed file"))
        renamed.unlink()
        took.append(reflected("quokkalite", None, "a deleted file"))
        assert max(took) < 10, took  # each change searchable within 10 s
        assert watcher.poll() is None  # still watching
    finally:
        watcher.send_signal(signal.SIGINT)
        output, _ = watcher.communicate(timeout=60)
    assert "Watching" in output and "succeeded" in output
    assert watcher.returncode in (0, 130), output
