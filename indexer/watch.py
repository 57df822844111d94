"""A watched folder: its index kept current while the watcher runs (``searchapp index --watch``).

File events (watchdog: inotify on Linux, FSEvents, ReadDirectoryChangesW) mark the folders changed;
once they have been quiet for a moment, an index job runs in this process with the same incremental
rules as ``searchapp index`` (only what changed is read, parsed and embedded; what is gone is
removed). A periodic rescan is the safety net for events that were missed (network drives, a full
event queue). Each run is a job, shown with the others and queued behind them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from searchapp import jobs
from searchapp.errors import PathNotFoundError
from searchapp.operations import IndexOptions, WatchOptions, WatchResult
from searchapp.progress import Progress
from searchapp.settings import Settings
from searchapp.store.database import Database

# Events closer together than this are one change (an editor's save is several events).
QUIET_SECONDS = 0.5
# A burst of events (a folder copied in) is indexed at least this often while it lasts.
MAX_DELAY_SECONDS = 5.0
RESCAN_SECONDS = 300.0


class _Changes(FileSystemEventHandler):
    """Notes when something under the folders changed, ignoring the home's own files."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.changed = threading.Event()
        self.last_event = 0.0

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads, not changes
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if all(not p or Path(str(p)).is_relative_to(self.home) for p in paths):
            return  # the index's own writes, when the home lies inside a watched folder
        self.last_event = time.monotonic()
        self.changed.set()


def watch(
    settings: Settings,
    folders: Sequence[str | Path],
    *,
    ignore: Sequence[str] = (),
    stop: threading.Event | None = None,
    on_run: Callable[[jobs.JobView], None] = lambda view: None,
    rescan_seconds: float = RESCAN_SECONDS,
) -> None:
    """Index ``folders`` now, then again after every change, until ``stop`` is set (or Ctrl-C)."""
    paths = [Path(folder).expanduser().resolve() for folder in folders]
    for path in paths:
        if not path.is_dir():
            raise PathNotFoundError(f"{path} is not a folder: --watch needs folders to watch.")
    stop = stop or threading.Event()
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    options = IndexOptions(paths=tuple(map(str, paths)), ignore=tuple(ignore))
    changes = _Changes(settings.home)
    observer = Observer()
    for path in paths:
        observer.schedule(changes, str(path), recursive=True)
    observer.start()
    try:
        changes.changed.set()  # the first run brings the index up to date
        while not stop.is_set():
            if not changes.changed.wait(timeout=min(rescan_seconds, 1.0)):
                if time.monotonic() - changes.last_event < rescan_seconds:
                    continue
                changes.changed.set()  # the periodic rescan
            _settle(changes, stop)
            changes.changed.clear()
            changes.last_event = time.monotonic()
            job_id = jobs.submit(db, "index", options)
            jobs.run(settings, job_id, own_process=False)
            on_run(jobs.get_job(db, job_id))
    finally:
        observer.stop()
        observer.join()


def _settle(changes: _Changes, stop: threading.Event) -> None:
    """Wait until the events have been quiet for ``QUIET_SECONDS`` (at most ``MAX_DELAY``)."""
    began = time.monotonic()
    while not stop.is_set() and time.monotonic() - began < MAX_DELAY_SECONDS:
        quiet = time.monotonic() - changes.last_event
        if quiet >= QUIET_SECONDS:
            return
        time.sleep(QUIET_SECONDS - quiet)


def run_line(view: jobs.JobView) -> str:
    """What one re-index of a watcher did: 'job 7 succeeded: 1 added, 0 updated, …'."""
    result = view.result or {}
    return (f"job {view.id} {view.state}: {result.get('added', 0)} added, "
            f"{result.get('updated', 0)} updated, {result.get('removed', 0)} removed, "
            f"{len(result.get('failed', []))} failed")  # fmt: skip


def run_watch(settings: Settings, options: WatchOptions, progress: Progress) -> WatchResult:
    """The ``watch`` operation: until stopped (a cancel, Ctrl-C), each re-index a job of its own,
    reported as one step of progress."""
    runs = 0

    def ran(view: jobs.JobView) -> None:
        nonlocal runs
        runs += 1
        progress.report("watching", runs, None, unit="run", detail=run_line(view))

    watch(settings, options.paths, ignore=options.ignore, on_run=ran)
    return WatchResult(runs=runs)
