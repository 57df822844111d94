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
def _highlight_pattern(query: str, ignore_case: bool = False) -> re.Pattern[str] | None:
    """Words starting with one of the query's stems. Matched against lower-cased text: Python's
    regular expressions run faster without ``IGNORECASE``, which is kept for the rare text whose
    lower-casing changes its length (so that positions would not carry over)."""
    stems = []
    for term in content_terms(query):
        if len(term) >= 2:
            stems.append(re.escape(_stem(term)))
    if not stems:
        return None
    stems.sort(key=len, reverse=True)
    flags = re.UNICODE | (re.IGNORECASE if ignore_case else 0)
    return re.compile(r"\b(?:" + "|".join(stems) + r")\w*", flags)


def _matches(text: str, query: str) -> list[tuple[int, int]]:
    """(start, end) of every highlighted word of ``text``, in order."""
    folded = text.lower()
    same_length = len(folded) == len(text)
    pattern = _highlight_pattern(query, ignore_case=not same_length)
    if pattern is None:
        return []
    return [match.span() for match in pattern.finditer(folded if same_length else text)]


def make_snippet(text: str, query: str, width: int = 280) -> str:
    """The ``width``-character window of ``text`` with the most query terms, highlighted."""
    text = _MARKDOWN_HEADING.sub(" ", " " + " ".join(text.split())).strip()
    matches = _matches(text, query)
    start = 0
    if matches and len(text) > width:
        best, best_count = matches[0][0], 0
        last = 0  # past the last match that ends within the window starting at match i
        for i, (match_start, _) in enumerate(matches):
            last = max(last, i)
            while last < len(matches) and matches[last][1] <= match_start + width:
                last += 1  # the ends rise: the matches do not overlap
            if last - i > best_count:
                best, best_count = match_start, last - i
        start = max(0, best - width // 4)
        # Start on a word boundary.
        if start > 0:
            space = text.find(" ", start)
            start = space + 1 if 0 <= space < best else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    parts, at = [], start
    for match_start, match_end in matches:  # those in the window, cut at its end
        if start <= match_start < end:
            match_end = min(match_end, end)
            parts += [text[at:match_start], "**", text[match_start:match_end], "**"]
            at = match_end
    parts.append(text[at:end])
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return prefix + "".join(parts) + suffix
