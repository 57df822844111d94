"""The search page: query, mode, filters, ranked documents, feedback, more like this."""

from __future__ import annotations

from datetime import datetime, time

import streamlit as st

from searchapp.choices import DEFAULT_RESULTS, MAX_RESULTS, SEARCH_MODE
from searchapp.errors import NoIndexError, SearchappError
from searchapp.feedback import feedback_for, record_feedback, undo_feedback
from searchapp.search import SearchFilters, SearchResult
from searchapp.status import indexed_file_types, list_sources
from ui.resources import database, markdown_text, searcher

PAGE_SIZE = DEFAULT_RESULTS


def _filters() -> SearchFilters:
    with st.expander("Filters"):
        sources = list_sources(database())
        folders = st.multiselect("Folders", [s.location for s in sources], key="filter_folders")
        types = st.multiselect("File types", indexed_file_types(database()), key="filter_types")
        left, right = st.columns(2)
        after = left.date_input("Modified after", value=None, key="filter_after")
        before = right.date_input("Modified before", value=None, key="filter_before")
        author = st.text_input("Author or sender contains", key="filter_author")
    return SearchFilters(
        folders=tuple(folders),
        file_types=tuple(types),
        author=author.strip(),
        modified_after=datetime.combine(after, time.min) if after else None,
        modified_before=datetime.combine(before, time.max) if before else None,
    )


def _feedback_buttons(query: str, result: SearchResult, given: dict[int, bool]) -> None:
    db = database()
    key = f"{result.doc_id}-{result.rank}"
    if result.doc_id in given:
        verdict = "👍 relevant" if given[result.doc_id] else "👎 not relevant"
        left, right = st.columns([3, 1])
        left.success(f"Recorded: {verdict} for this query.")
        if right.button("Undo", key=f"undo-{key}"):
            undo_feedback(db, query, result.doc_id)
            st.rerun()
        return
    up, down, more, _ = st.columns([1, 1, 2, 4])
    for column, relevant, label, meaning in (
        (up, True, "👍", "This result is relevant to the query"),
        (down, False, "👎", "This result is not relevant"),
    ):
        if column.button(label, key=f"{'up' if relevant else 'down'}-{key}", help=meaning):
            try:
                record_feedback(db, query, result.doc_id, relevant=relevant)
            except SearchappError as error:  # the document was removed meanwhile, say
                st.error(str(error))
                return
            st.rerun()
    if more.button("More like this", key=f"like-{key}"):
        st.session_state["more_like"] = (result.doc_id, result.title)
        st.rerun()


def _show(results: list[SearchResult], query: str | None) -> None:
    given = feedback_for(database(), query) if query else {}
    passages = searcher().matching_chunks([r.doc_id for r in results], query, n=4) if query else {}
    for result in results:
        st.markdown(f"#### {result.rank}. {markdown_text(result.title)}")
        relevance = f"score {result.score:.4f}"
        if result.similarity is not None:
            relevance += f" · similarity {result.similarity:.2f}"
        place = "  ·  ".join(
            piece for piece in (result.path, result.location, result.author, result.date[:10])
            if piece
        )  # fmt: skip
        st.caption(f"{place}  ·  {relevance}")
        st.markdown(markdown_text(result.snippet))
        with st.expander("Whole passage and other matching passages"):
            st.text(result.chunk_text)
            others = [p for p in passages.get(result.doc_id, []) if p[0] != result.chunk_text]
            for text, score in others[:3]:
                st.caption(f"similarity {score:.2f}")
                st.text(text)
        if query:
            _feedback_buttons(query, result, given)
        st.divider()


def render() -> None:
    st.header("Search")
    if "more_like" in st.session_state:
        doc_id, title = st.session_state["more_like"]
        st.subheader(f"More like “{title}”")
        if st.button("Back to search"):
            del st.session_state["more_like"]
            st.rerun()
        _show(searcher().more_like_this(doc_id, k=PAGE_SIZE), None)
        return

    with st.form("search"):
        query = st.text_input("Query", placeholder="Ask a question or type keywords…", key="q")
        left, right = st.columns([3, 1])
        mode = left.radio(
            "Mode",
            SEARCH_MODE.values,
            index=SEARCH_MODE.values.index(SEARCH_MODE.default),
            horizontal=True,
            key="mode",
        )
        page = right.number_input("Results", min_value=1, max_value=MAX_RESULTS, value=PAGE_SIZE)
        filters = _filters()
        submitted = st.form_submit_button("Search")
    if submitted:
        st.session_state["shown"] = int(page)
    if not query.strip():
        if submitted:
            st.info("Type a query to search your documents.")
        return
    shown = st.session_state.get("shown", int(page))
    try:
        results = searcher().search(query, k=shown + 1, mode=mode, filters=filters)
    except NoIndexError as error:
        st.warning(str(error))
        return
    except SearchappError as error:
        st.error(str(error))
        return
    if not results:
        st.info(f"No documents match “{query}”. Try other words, another mode or fewer filters.")
        return
    if mode != "keyword" and not results[0].confident:
        st.info(
            "No confident match: these are the closest documents, but none is very similar "
            "to the query."
        )
    _show(results[:shown], query)
    if len(results) > shown and st.button("More results"):
        st.session_state["shown"] = shown + PAGE_SIZE
        st.rerun()
