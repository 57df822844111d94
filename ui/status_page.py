"""The status page: served model and generation, counts, last indexing, and the health check."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from searchapp.health import check_store
from searchapp.operations import RepairOptions
from searchapp.status import store_status
from searchapp.store.checks import Check
from ui import jobs_panel
from ui.resources import database, settings


def render() -> None:
    st.header("Status")
    status = store_status(database())
    left, middle, right = st.columns(3)
    left.metric("Documents", status.documents)
    middle.metric("Chunks", status.chunks)
    right.metric("Index generation", status.generation_id or "-")
    st.markdown(
        f"**Model version** {status.version_id or '-'}: {status.version_name}  \n"
        f"base model `{status.base_model or '-'}`, {status.dimension or '-'} dimensions, "
        f"pooling `{status.pooling or '-'}`, layer `{status.layer or 'final'}`, "
        f"backend `{status.backend or '-'}`  \n"
        f"fingerprint `{status.fingerprint or '-'}`"
    )
    last = status.last_indexed.strftime("%Y-%m-%d %H:%M UTC") if status.last_indexed else "never"
    st.markdown(f"**Last indexed** {last} · **home** `{settings().home}`")

    jobs_panel.panel(title="All jobs")

    st.subheader("Health check")
    with database().read() as session:
        revision = database().revision(session)
    if st.button("Check again", help="The check runs again by itself when the store or its "
                 "files change"):  # fmt: skip
        _health.clear()
    checks = _health(str(settings().home), revision, _files(settings().index_dir))
    for check in checks:
        (st.success if check.ok else st.error)(f"{check.name}: {check.detail}")
    if all(check.ok for check in checks):
        st.caption("Everything agrees: SQL, the vector index file and the keyword index.")
    elif st.button("Repair"):
        jobs_panel.start("repair", RepairOptions())


def _files(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """The index folder's files as (name, size, modification time): what a check depends on
    besides SQL, read without opening any of them."""
    found = []
    for path in folder.rglob("*") if folder.is_dir() else ():
        try:
            stat = path.stat()
        except OSError:  # removed while listed
            continue
        found.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


@st.cache_data(max_entries=4, show_spinner="Checking the store…")
def _health(home: str, revision: int, files: tuple[tuple[str, int, int], ...]) -> list[Check]:
    """The health check of ``home`` at store ``revision`` with these index ``files``: it reads
    and hashes the whole index file, so it runs when one of them has changed (or on "Check
    again"), not on every render of the page."""
    return check_store(settings(), database()).checks
