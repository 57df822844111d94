"""The index page: add a folder on this machine, watch it being indexed, re-index or remove it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from indexer.folders import index_folders, remove_source
from indexer.pipeline import IndexSummary
from searchapp.errors import SearchappError
from searchapp.progress import CallbackProgress, Update
from searchapp.status import list_sources
from ui.resources import database, settings


def _run(folders: list[str]) -> IndexSummary | None:
    bar = st.progress(0.0, text="Starting…")

    def show(update: Update) -> None:
        now = f" · {Path(update.detail).name}" if update.detail else ""
        bar.progress(update.fraction, text=f"{update.done} / {update.total} files{now}")

    try:
        summary = index_folders(settings(), folders, progress=CallbackProgress(show))
    except SearchappError as error:
        bar.empty()
        st.error(str(error))
        return None
    bar.progress(1.0, text="Done")
    return summary


def _show_summary(summary: IndexSummary) -> None:
    columns = st.columns(6)
    for column, (label, value) in zip(
        columns,
        [
            ("Added", summary.added),
            ("Updated", summary.updated),
            ("Removed", summary.removed),
            ("Unchanged", summary.unchanged),
            ("Failed", len(summary.failed)),
            ("Chunks embedded", summary.chunks),
        ],
        strict=True,
    ):
        column.metric(label, value)
    st.caption(f"{summary.seconds:.1f} s")
    if summary.failed:
        st.error(f"{len(summary.failed)} files could not be indexed:")
        st.dataframe(
            [{"file": path, "reason": reason} for path, reason in summary.failed],
            hide_index=True,
            use_container_width=True,
        )
    if summary.skipped:
        with st.expander(f"{len(summary.skipped)} skipped"):
            st.dataframe(
                [{"path": path, "reason": reason} for path, reason in summary.skipped],
                hide_index=True,
                use_container_width=True,
            )


def render() -> None:
    st.header("Index")
    with st.form("add-folder"):
        folder = st.text_input("Folder on this machine", placeholder="/home/me/Documents")
        start = st.form_submit_button("Index folder")
    if start:
        if not folder.strip():
            st.warning("Enter the path of a folder to index.")
        else:
            summary = _run([folder.strip()])
            if summary is not None:
                st.session_state["last_summary"] = summary
    if "last_summary" in st.session_state:
        _show_summary(st.session_state["last_summary"])

    st.subheader("Indexed folders")
    sources = [s for s in list_sources(database()) if s.kind == "folder"]
    if not sources:
        st.info("No folder indexed yet.")
    for source in sources:
        left, reindex, remove = st.columns([6, 1, 1])
        when = source.indexed_at.strftime("%Y-%m-%d %H:%M") if source.indexed_at else "never"
        left.markdown(f"`{source.location}` · {source.documents} documents · indexed {when}")
        if reindex.button("Re-index", key=f"reindex-{source.id}"):
            summary = _run([source.location])
            if summary is not None:
                st.session_state["last_summary"] = summary
                st.rerun()
        if remove.button("Remove", key=f"remove-{source.id}"):
            try:
                removed = remove_source(settings(), source.id)
            except SearchappError as error:
                st.error(str(error))
            else:
                st.session_state.pop("last_summary", None)
                st.toast(f"Removed {source.location} ({removed} documents) from the index.")
                st.rerun()
