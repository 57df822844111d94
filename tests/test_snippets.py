"""Snippets show the part of a passage that matches the query, with the query's words in bold."""

from __future__ import annotations

from searchapp.snippets import make_snippet, query_terms


def test_query_terms_are_distinct_lowercase_words_in_order() -> None:
    assert query_terms("Varroa MITES, varroa? (mites) & bees!") == ["varroa", "mites", "bees"]
    assert query_terms("  ?! ") == []


def test_matching_words_and_their_forms_are_highlighted_but_not_stopwords() -> None:
    snippet = make_snippet(
        "The mite count rose after brewed honey was stored.", "the mites brewing"
    )
    assert "**mite**" in snippet and "**brewed**" in snippet
    assert "**The**" not in snippet and "The" in snippet


def test_a_long_passage_is_cut_around_the_densest_run_of_matches() -> None:
    filler = " ".join(f"word{i}" for i in range(200))
    text = f"{filler} varroa mites weaken the colony, so treat varroa in autumn. {filler}"
    snippet = make_snippet(text, "varroa treatment autumn", width=120)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet.replace("**", "")) <= 120 + 2  # the window and two ellipses
    assert snippet.count("**varroa**") == 2 and "**autumn**" in snippet
    assert "  " not in snippet and not snippet[1].isspace()  # starts on a word


def test_highlights_ignore_case_even_where_lower_casing_changes_the_text_length() -> None:
    assert make_snippet("Varroa MITES are bad", "mites") == "Varroa **MITES** are bad"
    # "İ" lower-cases to two characters: positions in the lower-cased text would be off by one.
    snippet = make_snippet("İstanbul keeps Mites and MITES", "mites istanbul")
    assert snippet == "**İstanbul** keeps **Mites** and **MITES**"


def test_no_match_gives_the_start_of_the_passage_and_markdown_headings_are_dropped() -> None:
    snippet = make_snippet("## Cold brew\n\nSteep coarse grounds for a day.", "espresso")
    assert snippet == "Cold brew Steep coarse grounds for a day."
    assert make_snippet("short text", "") == "short text"


def test_keyword_queries_leave_stopwords_out_unless_nothing_else_is_left(sample_searcher) -> None:  # type: ignore[no-untyped-def]
    from searchapp.store.keywords.sqlite import fts_query

    assert fts_query("How do I treat the varroa?") == '"treat" OR "varroa"'
    assert fts_query("what is it") == '"what" OR "is" OR "it"'
    assert sample_searcher.search("what is it", mode="keyword")  # still answered
    top = sample_searcher.search("how do you treat varroa in the winter", k=1, mode="keyword")
    assert top[0].path.endswith("varroa-mites.md")
