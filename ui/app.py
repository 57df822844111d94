"""searchapp's web UI: search, index, train and status pages over the searchapp library.

Started by ``searchapp ui`` (Streamlit, bound to 127.0.0.1; elsewhere only with a token that
every browser session gives, ``ui/access.py``). The pages hold no search, storage or
training logic: they call ``searchapp`` and ``indexer``.
"""

from __future__ import annotations

import streamlit as st

from searchapp.jobs import list_jobs
from ui import access, index_page, jobs_panel, search_page, status_page, train_page
from ui.resources import database, searcher

PAGES = {
    "🔎 Search": search_page.render,
    "📁 Index": index_page.render,
    "🎓 Train": train_page.render,
    "🩺 Status": status_page.render,
}


@st.fragment(run_every=jobs_panel.REFRESH_SECONDS)
def running_jobs() -> None:
    """Every browser session sees the work in progress, whichever page or tab started it."""
    running = [view for view in list_jobs(database(), limit=20) if view.active]
    for view in running:
        st.caption(f"⏳ job {view.id} ({view.kind}): {view.progress_line()}")


def main() -> None:
    st.set_page_config(page_title="searchapp", page_icon="🔎", layout="wide")
    access.require_token()  # beyond loopback: nothing is shown before the token
    with st.sidebar:
        st.title("searchapp")
        page = st.radio("Page", list(PAGES), key="page", label_visibility="collapsed")
        st.caption(f"Home: `{searcher().settings.home}`")
        running_jobs()
    PAGES[page]()


main()
