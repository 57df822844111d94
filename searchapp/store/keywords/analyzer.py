"""The words of a text, as every keyword backend makes them: FTS5's ``porter unicode61
remove_diacritics 2`` (split on what is not a letter or a digit, lower-cased, accents dropped,
Porter's stemmer). FTS5 makes them itself; the Tantivy index and PostgreSQL's postings are made
from ``words``, so that a query ranks the same on every backend (docs/benchmarks.md).

A query's words are its content terms (``searchapp.snippets.content_terms``: stopwords dropped
unless nothing else is left), at most ``MAX_QUERY_TERMS`` of them, each searched as a word, never
as query syntax.
"""

from __future__ import annotations

import re
import threading
import unicodedata

import Stemmer

from searchapp.snippets import content_terms

MAX_QUERY_TERMS = 64

_WORD = re.compile(r"[^\W_]+")
_LONGEST_WORD = 200  # longer "words" (a base64 blob) are nobody's search, and Tantivy's limit
_stemmers = threading.local()  # a Stemmer is not safe to share between threads


def words(text: str) -> list[str]:
    """``text``'s terms as FTS5's ``porter unicode61 remove_diacritics 2`` makes them."""
    text = text.lower()
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    found = [word for word in _WORD.findall(text) if len(word) <= _LONGEST_WORD]
    if not hasattr(_stemmers, "porter"):
        _stemmers.porter = Stemmer.Stemmer("porter")
    return _stemmers.porter.stemWords(found)


def query_terms(query: str) -> list[str]:
    """The terms a keyword search looks for, before stemming (FTS5 stems them itself)."""
    return content_terms(query)[:MAX_QUERY_TERMS]


def query_words(query: str) -> list[str]:
    """The words of ``query_terms``, stemmed. Not deduplicated: "mite" and "mites" are two terms
    of FTS5's query, one word twice, and count twice there."""
    return words(" ".join(query_terms(query)))


def chunk_words(title: str | None, text: str) -> list[str]:
    """The words a chunk is found by: its document's title and its own text."""
    return words(f"{title or ''}\n{text}")
