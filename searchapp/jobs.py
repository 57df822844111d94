"""Long work as jobs: a row in the database and a ``searchapp`` process of its own.

``start`` records a job (state ``queued``) and launches ``searchapp jobs run ID``, a detached
process, so the work outlives the page, the browser session and the UI server that asked for it.
A job is one of ``searchapp.operations``: its row holds the operation's name (the job's kind) and
its options as JSON. The process waits its turn for the home's single writer (first come, first
served; searches never wait), calls the operation's ``run`` with a ``JobProgress`` that writes
progress into the row, heartbeats, and ends ``succeeded``, ``failed`` or ``cancelled`` with the
operation's typed result stored as JSON.

A job whose process died (kill -9, a reboot) is found by ``reap`` (its process is gone, or its
heartbeat is old) and marked ``interrupted``; ``resume`` runs it again. Index, import, promotion,
rollback and repair are incremental, so running them again is a Resume that finishes the work
without redoing it; training starts over (a Restart).

Example::

    job_id = start(settings, db, "index", IndexOptions(paths=("/home/me/Documents",)))
    while get_job(db, job_id).active:
        time.sleep(1)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
from sqlalchemy import select, update

from searchapp import operations
from searchapp.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    InvalidOptionError,
    SearchappError,
    UnknownJobError,
    WriterBusyError,
)
from searchapp.progress import Progress, Update
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Job

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
# A watcher runs until stopped and writes nothing itself: each re-index it starts is a job of its
# own, so the queue of writers does not wait for it.
WATCH = "watch"
HEARTBEAT_SECONDS = 2.0
# A job that has not heartbeaten for this long is taken for dead, wherever its process ran.
STALE_SECONDS = 30.0
# How often a job writes its progress into its row, at most.
PROGRESS_SECONDS = 0.5
WAIT_SECONDS = 0.5


class JobCancelled(SearchappError):
    """The job was cancelled; what it committed stays."""

    exit_code = EXIT_INTERRUPTED


def _now() -> datetime:
    return datetime.now(UTC)


def _age(moment: datetime | None) -> float:
    """Seconds since ``moment`` (SQLite hands datetimes back without their UTC zone)."""
    if moment is None:
        return float("inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (_now() - moment).total_seconds()


@dataclass(frozen=True)
class JobView:
    """A job as people and scripts see it."""

    id: int
    kind: str  # the operation's name
    options: dict  # the operation's options as JSON (empty for a job of an older searchapp)
    settings: dict  # the settings it runs with, where they differ from the home's
    state: str
    stage: str
    done: int
    total: int | None
    unit: str
    rate: float | None
    detail: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    heartbeat_at: datetime | None
    pid: int | None
    cancel_requested: bool
    result: dict | list | None
    error: str | None
    legacy: list[str] | None = None  # the command line of a job recorded before operations

    @classmethod
    def of(cls, job: Job) -> JobView:
        stored = json.loads(job.arguments)
        if not isinstance(stored, dict):  # a command line, as searchapp stored jobs before 0.8
            stored = {"options": {}, "settings": {}, "legacy": stored}
        return cls(
            id=job.id, kind=job.kind, options=stored["options"], settings=stored["settings"],
            legacy=stored.get("legacy"), state=job.state,
            stage=job.stage, done=job.done, total=job.total, unit=job.unit, rate=job.rate,
            detail=job.detail, created_at=job.created_at, started_at=job.started_at,
            ended_at=job.ended_at, heartbeat_at=job.heartbeat_at, pid=job.pid,
            cancel_requested=job.cancel_requested,
            result=json.loads(job.result_json) if job.result_json else None, error=job.error,
        )  # fmt: skip

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def command(self) -> str:
        """What it does, in a line: 'index /home/me/Documents · ocr=False'."""
        if self.legacy is not None:
            return "searchapp " + " ".join(self.legacy)
        return " · ".join([f"{self.kind} {_values(self.options)}".strip(),
                           *(f"{k}={v}" for k, v in self.settings.items())])  # fmt: skip

    @property
    def operation(self) -> operations.Operation:
        return operations.get(self.kind)

    def typed_options(self):  # type: ignore[no-untyped-def]
        """The options object the job runs with."""
        return self.operation.options_from_json(self.options)

    def typed_result(self):  # type: ignore[no-untyped-def]
        """The operation's result (``IndexSummary``, ``TrainingReport``…), or None: not ended
        well, or stored by an older searchapp in another shape."""
        if self.state != "succeeded" or self.result is None or self.legacy is not None:
            return None
        return self.operation.result_from_json(self.result)

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    @property
    def seconds_left(self) -> float | None:
        """At the current rate, until the current stage ends (None when not known)."""
        if not self.rate or self.total is None or self.state != "running":
            return None
        return max(self.total - self.done, 0) / self.rate

    @property
    def again(self) -> str | None:
        """What running an ended job again is called: Resume (incremental work) or Restart."""
        if self.state not in ("interrupted", "failed", "cancelled") or self.legacy is not None:
            return None
        return "Resume" if self.operation.resumable else "Restart"

    def progress_line(self) -> str:
        """'embed chunks: 120 / 9711 chunks · 86/s · 1 min 51 s left'."""
        if self.state == "queued":
            return self.stage or "queued"
        parts = [self.stage or self.state]
        if self.total:
            parts[0] += f": {self.done} / {self.total} {self.unit}s"
        elif self.done:
            parts[0] += f": {self.done} {self.unit}s"
        if self.rate:
            parts.append(f"{self.rate:.1f} {self.unit}s/s")
        if (left := self.seconds_left) is not None:
            parts.append(f"{_duration(left)} left")
        return " · ".join(parts)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id, "kind": self.kind, "options": self.options,
            "settings": self.settings, "command": self.command, "state": self.state,
            "stage": self.stage, "done": self.done, "total": self.total, "unit": self.unit,
            "rate": round(self.rate, 3) if self.rate else None,
            "seconds_left": round(s, 1) if (s := self.seconds_left) is not None else None,
            "created_at": _iso(self.created_at), "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at), "heartbeat_at": _iso(self.heartbeat_at),
            "pid": self.pid, "cancel_requested": self.cancel_requested, "again": self.again,
            "result": self.result, "error": self.error,
        }  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _values(options: Mapping[str, object]) -> str:
    """Options as 'VALUE … name=value', leaving out the empty ones."""
    parts = []
    for name, value in options.items():
        if isinstance(value, dict):
            parts.append(_values(value))
        elif isinstance(value, list) and value:
            parts.append(" ".join(map(str, value)) if name == "paths" else f"{name}={value}")
        elif value not in (None, [], {}, False, ""):
            parts.append(str(value) if name in ("folder", "beir", "version") else f"{name}={value}")
    return " ".join(part for part in parts if part)


def submit(
    db: Database,
    operation: str,
    options: object,
    settings: Mapping[str, object] | None = None,
    cwd: str | None = None,
) -> int:
    """Record a job for ``operation`` with ``options`` (and ``settings``, the fields of
    ``Settings`` that differ from the home's, such as ``{"ocr": False}``); returns its id."""
    known = {f.name for f in dataclasses.fields(Settings) if "help" in f.metadata}
    if unknown := set(settings or {}) - known:
        raise InvalidOptionError(
            f"A job cannot set {', '.join(sorted(unknown))}: it sets {', '.join(sorted(known))}."
        )
    stored = {"options": operations.get(operation).options_to_json(options),
              "settings": dict(settings or {})}  # fmt: skip
    with db.write() as session:
        job = Job(kind=operation, arguments=json.dumps(stored), cwd=cwd or os.getcwd(),
                  stage="waiting to start", heartbeat_at=_now())  # fmt: skip
        session.add(job)
        session.flush()
        return job.id


def launch(settings: Settings, db: Database, job_id: int) -> subprocess.Popen[bytes]:
    """Start the process that runs job ``job_id``, detached from this one (its own session, its
    output in the home's jobs folder)."""
    with db.read() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise UnknownJobError(f"There is no job {job_id}: see `searchapp jobs list`.")
        cwd = job.cwd if Path(job.cwd).is_dir() else str(settings.home)
    logs = settings.home / "jobs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "searchapp.cli", "--home", str(settings.home),
               "jobs", "run", str(job_id)]  # fmt: skip
    with (logs / f"{job_id}.log").open("ab") as output:
        process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    # Collect its exit status when it ends, so that it never lingers as a zombie of this process.
    threading.Thread(target=process.wait, daemon=True, name=f"job-{job_id}-reaper").start()
    return process


def start(
    settings: Settings,
    db: Database,
    operation: str,
    options: object,
    overrides: Mapping[str, object] | None = None,
) -> int:
    """Record a job and launch its process; returns its id at once."""
    job_id = submit(db, operation, options, overrides)
    launch(settings, db, job_id)
    return job_id


def get_job(db: Database, job_id: int) -> JobView:
    reap(db)
    with db.read() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise UnknownJobError(f"There is no job {job_id}: see `searchapp jobs list`.")
        return JobView.of(job)


def list_jobs(db: Database, limit: int = 50) -> list[JobView]:
    """The most recent jobs, newest first (running and queued ones included)."""
    reap(db)
    with db.read() as session:
        jobs = session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)).all()
        return [JobView.of(job) for job in jobs]


def cancel(db: Database, job_id: int) -> JobView:
    """Stop a job: a queued one never starts; a running one stops at its next step, keeping what
    it committed (the same as Ctrl-C on the command line)."""
    job = get_job(db, job_id)
    if not job.active:
        raise InvalidOptionError(f"Job {job_id} has already ended ({job.state}).")
    with db.write() as session:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "queued", Job.started_at.is_(None),
                   Job.pid.is_(None))
            .values(state="cancelled", ended_at=_now(), stage="cancelled before it started")
        )  # fmt: skip
        pid, host = session.execute(select(Job.pid, Job.host).where(Job.id == job_id)).one()
    if pid and host == socket.gethostname():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGINT)  # interrupts a long step that reports no progress
    return get_job(db, job_id)


def resume(settings: Settings, db: Database, job_id: int) -> JobView:
    """Run an interrupted, failed or cancelled job again (Resume or Restart, see the module)."""
    job = get_job(db, job_id)
    if job.legacy is not None:
        raise InvalidOptionError(
            f"Job {job_id} was recorded by an older searchapp: run its command again instead, "
            f"`{job.command}`."
        )
    if job.again is None:
        raise InvalidOptionError(
            f"Job {job_id} is {job.state}: only an interrupted, failed or cancelled job can be "
            "run again."
        )
    with db.write() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(
                state="queued", stage="waiting to start", done=0, total=None, rate=None,
                detail="", started_at=None, ended_at=None, heartbeat_at=_now(), pid=None,
                host=None, cancel_requested=False, result_json=None, error=None,
            )
        )  # fmt: skip
    launch(settings, db, job_id)
    return get_job(db, job_id)


def reap(db: Database) -> list[int]:
    """Mark interrupted the active jobs whose process is gone; returns their ids."""
    host = socket.gethostname()
    dead = []
    with db.read() as session:
        for job in session.scalars(select(Job).where(Job.state.in_(ACTIVE))):
            if job.pid is None:  # recorded (or resumed) when its heartbeat was set
                gone = _age(job.heartbeat_at) > STALE_SECONDS  # its process never started
            elif job.host == host:
                gone = not _alive(job.pid) or _age(job.heartbeat_at) > STALE_SECONDS
            else:
                gone = _age(job.heartbeat_at) > STALE_SECONDS
            if gone:
                dead.append(job.id)
    if dead:
        with db.write() as session:
            session.execute(
                update(Job).where(Job.id.in_(dead), Job.state.in_(ACTIVE)).values(
                    state="interrupted", ended_at=_now(),
                    error="Its process stopped without finishing (killed, or the machine "
                    "restarted). What it committed is kept; run it again to finish.",
                )
            )  # fmt: skip
    return dead


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class JobProgress(Progress):
    """Writes a job's progress into its row (at most every ``PROGRESS_SECONDS``, and at every
    change of stage), with the rate of the current stage; raises ``JobCancelled`` at the next
    update once the job is cancelled."""

    def __init__(self, db: Database, job_id: int) -> None:
        self.db = db
        self.job_id = job_id
        self._stage: str | None = None
        self._stage_began = (0.0, 0)  # when the stage began, and its count then
        self._written = 0.0
        self._last: Update | None = None

    def update(self, update: Update) -> None:
        now = time.monotonic()
        if update.stage != self._stage:
            self._stage, self._stage_began, self._written = update.stage, (now, update.done), 0.0
        self._last = update
        finished = update.total is not None and update.done >= update.total
        if now - self._written >= PROGRESS_SECONDS or finished:
            self._write(update, now)

    def _write(self, update: Update, now: float) -> None:
        began, done_then = self._stage_began
        rate = (update.done - done_then) / (now - began) if now - began > 1.0 else None
        with self.db.write() as session:
            session.execute(
                update_job(self.job_id).values(
                    stage=update.stage, done=update.done, total=update.total, unit=update.unit,
                    detail=update.detail[-200:], rate=rate, heartbeat_at=_now(),
                )
            )  # fmt: skip
            cancelled = session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id))
        self._written = now
        if cancelled:
            raise JobCancelled(f"Job {self.job_id} was cancelled; what it committed is kept.")

    def close(self) -> None:
        if self._last is not None:
            self._write(self._last, time.monotonic())


def update_job(job_id: int):  # type: ignore[no-untyped-def]
    return update(Job).where(Job.id == job_id)


class _Heartbeat:
    """Marks the job alive every ``HEARTBEAT_SECONDS`` from a thread, also through long steps
    that report no progress (loading a model, exporting it)."""

    def __init__(self, db: Database, job_id: int) -> None:
        self.db, self.job_id = db, job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="job-heartbeat")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                with self.db.write() as session:
                    session.execute(update_job(self.job_id).values(heartbeat_at=_now()))
            except Exception as error:  # a busy or full disk: the next beat tries again
                log.warning("Job %s could not record its heartbeat: %s", self.job_id, error)


def run(settings: Settings, job_id: int, *, own_process: bool = True) -> int:
    """Run job ``job_id`` in this process (``searchapp jobs run ID``); returns its exit code.

    ``own_process=False`` (a watcher running its re-index jobs): the process is not the job's, so
    its id is not recorded; a cancel then stops the job at its next step but never signals the
    process, and a dead process is found by the job's heartbeat alone. A Ctrl-C there is the
    user's to the whole process: the job is recorded as cancelled and the interrupt goes on.
    """
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    with db.write() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise UnknownJobError(f"There is no job {job_id}: see `searchapp jobs list`.")
        if job.state != "queued":
            raise InvalidOptionError(f"Job {job_id} is {job.state}, not queued.")
        if own_process:
            job.pid, job.host = os.getpid(), socket.gethostname()
        job.heartbeat_at = _now()
    view = get_job(db, job_id)
    try:
        options = view.typed_options()
        settings = dataclasses.replace(settings, **view.settings)
    except (InvalidOptionError, TypeError) as error:
        with db.write() as session:
            session.execute(
                update_job(job_id).values(state="failed", ended_at=_now(), error=str(error))
            )
        raise
    state, error, code, result = "failed", None, EXIT_INTERNAL, None
    interrupted = False
    with _Heartbeat(db, job_id):
        try:
            _wait_for_turn(db, job_id)
            with JobProgress(db, job_id) as progress:
                while True:
                    try:
                        result = view.operation.function()(settings, options, progress)
                        break
                    except WriterBusyError:  # a command outside the jobs took the writer first
                        _wait(db, job_id, "waiting for another process that is writing")
            state, code = "succeeded", 0
        except (JobCancelled, KeyboardInterrupt) as stopped:
            state, code = "cancelled", EXIT_INTERRUPTED
            interrupted = isinstance(stopped, KeyboardInterrupt)
        except SearchappError as failure:
            error, code = str(failure), failure.exit_code
        except Exception:
            error = traceback.format_exc()
            print(error, file=sys.stderr)
    values: dict[str, object] = {
        "state": state,
        "ended_at": _now(),
        "error": error,
        "result_json": json.dumps(result.to_json()) if result is not None else None,
    }
    if state == "cancelled":
        values["stage"] = "cancelled"
    with db.write() as session:
        session.execute(update_job(job_id).values(**values))
    if interrupted and not own_process:
        raise KeyboardInterrupt  # it stops the watcher too, not only this run
    return code


def _wait_for_turn(db: Database, job_id: int) -> None:
    """Wait while an earlier job is queued or running: write jobs run one at a time, in order."""
    while True:
        reap(db)
        with db.read() as session:
            earlier = session.scalar(
                select(Job.id)
                .where(Job.id < job_id, Job.state.in_(ACTIVE), Job.kind != WATCH)
                .order_by(Job.id)
                .limit(1)
            )
        if earlier is None:
            break
        _wait(db, job_id, f"queued behind job {earlier}")
    with db.write() as session:
        session.execute(
            update_job(job_id).values(state="running", started_at=_now(), stage="starting")
        )


def _wait(db: Database, job_id: int, why: str) -> None:
    with db.write() as session:
        session.execute(update_job(job_id).values(stage=why, heartbeat_at=_now()))
        cancelled = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    if cancelled:
        raise JobCancelled(f"Job {job_id} was cancelled before it started.")
    time.sleep(WAIT_SECONDS)
