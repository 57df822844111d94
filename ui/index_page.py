"""The index page: add a folder on this machine, watch it being indexed (a job), re-index or
remove it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from searchapp.jobs import WATCH, cancel, list_jobs
from searchapp.operations import IndexOptions, RemoveOptions, WatchOptions
from searchapp.status import list_sources
from ui import jobs_panel
from ui.resources import database


def render() -> None:
    st.header("Index")
    with st.form("add-folder"):
        folder = st.text_input("Folder on this machine", placeholder="/home/me/Documents")
        ocr = st.checkbox(
            "Read scanned pages and pictures of text (OCR)",
            value=True,
            help="Slower the first time: each page takes a few seconds, once.",
        )
        start = st.form_submit_button("Index folder")
    if start:
        path = Path(folder.strip()).expanduser()
        if not folder.strip():
            st.warning("Enter the path of a folder to index.")
        elif not path.exists():
            st.error(f"{path} does not exist: enter the path of a folder on this machine.")
        else:
            options = IndexOptions(paths=(str(path.resolve()),))
            jobs_panel.start("index", options, {} if ocr else {"ocr": False})
    jobs_panel.panel(kinds=("index", "import", WATCH, "remove"), title="Indexing jobs")

    st.subheader("Indexed folders")
    sources = [s for s in list_sources(database()) if s.kind == "folder"]
    if not sources:
        st.info("No folder indexed yet.")
    watchers = {path: view for view in list_jobs(database())
                if view.kind == WATCH and view.active
                for path in view.options["paths"]}  # fmt: skip
    for source in sources:
        left, watch, reindex, remove = st.columns([6, 1, 1, 1])
        when = source.indexed_at.strftime("%Y-%m-%d %H:%M") if source.indexed_at else "never"
        left.markdown(f"`{source.location}` · {source.documents} documents · indexed {when}")
        watcher = watchers.get(source.location)
        wanted = watch.toggle("Watch", value=watcher is not None, key=f"watch-{source.id}",
                              help="re-index this folder within seconds of any change")  # fmt: skip
        if wanted and watcher is None:
            jobs_panel.start(WATCH, WatchOptions(paths=(source.location,)))
        elif not wanted and watcher is not None:
            cancel(database(), watcher.id)
        if reindex.button("Re-index", key=f"reindex-{source.id}"):
            jobs_panel.start("index", IndexOptions(paths=(source.location,)))
        if remove.button("Remove", key=f"remove-{source.id}"):
            jobs_panel.start("remove", RemoveOptions(folder=source.location))
