"""Snippets: the part of a chunk that best matches the query, with the query's terms highlighted.

Highlights are marked ``**like this**`` (Markdown bold), which the UI renders and the command line
turns into bold text on a terminal.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)
_MARKDOWN_HEADING = re.compile(r"\s#{1,6}\s")  # "## Heading" markers, noise in a snippet
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
    ]
)


def query_terms(query: str) -> list[str]:
    """The distinct words of a query, lower-cased, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
    return list(seen)


def content_terms(query: str) -> list[str]:
    """The query's words that carry its meaning: stopwords dropped, unless nothing else is left
    ("what is it" is still searched for)."""
    terms = query_terms(query)
    return [term for term in terms if term not in _STOPWORDS] or terms


def _stem(term: str) -> str:
    """A light stem, so that "mites" also lights up "mite" and "brewing" lights up "brewed"."""
    for suffix in ("ing", "ed", "s"):
        if term.endswith(suffix) and len(term) - len(suffix) >= 3 and not term.endswith("ss"):
            return term[: -len(suffix)]
    return term


@lru_cache(maxsize=64)  # the same query highlights every result of its page
def _highlight_pattern(query: str) -> re.Pattern[str] | None:
    stems = []
    for term in content_terms(query):
        if len(term) >= 2:
            stems.append(re.escape(_stem(term)))
    if not stems:
        return None
    stems.sort(key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(stems) + r")\w*", re.IGNORECASE | re.UNICODE)


def make_snippet(text: str, query: str, width: int = 280) -> str:
    """The ``width``-character window of ``text`` with the most query terms, highlighted."""
    text = _MARKDOWN_HEADING.sub(" ", " " + " ".join(text.split())).strip()
    pattern = _highlight_pattern(query)
    matches = list(pattern.finditer(text)) if pattern else []
    start = 0
    if matches and len(text) > width:
        best, best_count = matches[0].start(), 0
        ends = [match.end() for match in matches]  # rising: the matches do not overlap
        last = 0  # past the last match that ends within the window starting at match i
        for i, match in enumerate(matches):
            last = max(last, i)
            while last < len(ends) and ends[last] <= match.start() + width:
                last += 1
            if last - i > best_count:
                best, best_count = match.start(), last - i
        start = max(0, best - width // 4)
        # Start on a word boundary.
        if start > 0:
            space = text.find(" ", start)
            start = space + 1 if 0 <= space < best else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    window = text[start:end]
    if pattern:
        window = pattern.sub(lambda m: f"**{m.group(0)}**", window)
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return f"{prefix}{window}{suffix}"
