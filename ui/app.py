"""The search page: a query box, a mode, and ranked documents with highlighted snippets.

Started by ``searchapp ui``. It holds no search logic: it calls ``searchapp.search.Searcher``,
loaded once per process and shared by every browser session.
"""

from __future__ import annotations

import os
import re

import streamlit as st

from searchapp.search import SEARCH_MODES, Searcher
from searchapp.settings import Settings
from searchapp.versions import NoIndexError

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#<>$~|+\-])")


def snippet_markdown(snippet: str) -> str:
    """Escape document text for Markdown, keeping the ``**highlight**`` markers."""
    return "**".join(_MARKDOWN_SPECIAL.sub(r"\\\1", part) for part in snippet.split("**"))


@st.cache_resource(show_spinner="Loading the model…")
def get_searcher(home: str | None) -> Searcher:
    return Searcher(Settings.load(home))


def main() -> None:
    st.set_page_config(page_title="searchapp", page_icon="🔎", layout="wide")
    st.title("🔎 searchapp")
    searcher = get_searcher(os.environ.get("SEARCHAPP_HOME"))
    st.caption(f"Home: `{searcher.settings.home}`")

    with st.form("search"):
        query = st.text_input("Query", placeholder="Ask a question or type keywords…")
        left, right = st.columns([3, 1])
        mode = left.radio("Mode", SEARCH_MODES, index=SEARCH_MODES.index("hybrid"), horizontal=True)
        k = right.number_input("Results", min_value=1, max_value=100, value=10)
        submitted = st.form_submit_button("Search")
    if not (submitted or query):
        return
    if not query.strip():
        st.info("Type a query to search your documents.")
        return
    try:
        results = searcher.search(query, k=int(k), mode=mode)
    except NoIndexError as error:
        st.warning(str(error))
        return
    if not results:
        st.info(f"No documents match “{query}”.")
        return
    for result in results:
        st.markdown(f"**{result.rank}. {result.title}**  ·  score {result.score:.4f}")
        st.caption(result.path)
        st.markdown(snippet_markdown(result.snippet))
        st.divider()


main()
