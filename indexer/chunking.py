"""Splitting text into chunks that fit the model, counted in the model's own tokens, with overlap.

The bi-encoder silently cuts input past its maximum length, so chunk sizes are measured with its
tokenizer. ``semantic-text-splitter`` packs each chunk as full as it can while splitting at the
highest semantic boundary that fits: paragraphs, then lines, sentences, words.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer

from searchapp.errors import InvalidOptionError


@dataclass(frozen=True)
class TextChunk:
    """A chunk's text and its [start, end) character offsets in the document's text."""

    text: str
    start: int
    end: int


class Chunker:
    """Token-aware splitting: chunks of at most ``max_tokens`` tokens, overlapping by ``overlap``.

    ``tokenizer`` is a Hugging Face fast tokenizer (the encoder's); special tokens are not
    counted, so pass the model's maximum length less the two it adds.
    """

    def __init__(self, tokenizer, max_tokens: int, overlap_tokens: int = 32) -> None:  # type: ignore[no-untyped-def]
        if max_tokens < 8:
            raise InvalidOptionError(f"Chunks need at least 8 tokens, got {max_tokens}.")
        if not 0 <= overlap_tokens < max_tokens // 2:
            raise InvalidOptionError(
                f"Overlap must be between 0 and half the chunk size ({max_tokens // 2}), "
                f"got {overlap_tokens}."
            )
        fast = getattr(tokenizer, "backend_tokenizer", tokenizer)  # transformers' or tokenizers'
        counting = Tokenizer.from_str(fast.to_str())
        counting.no_truncation()  # the shipped tokenizer.json truncates at 128, which hides length
        counting.no_padding()
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self._splitter = TextSplitter.from_huggingface_tokenizer(
            counting, max_tokens, overlap=overlap_tokens, trim=True
        )

    def split(self, text: str) -> list[TextChunk]:
        """The chunks of ``text`` in order, each with its offsets into ``text``."""
        chunks = []
        for start, chunk in self._splitter.chunk_indices(text):  # character offsets
            chunks.append(TextChunk(text=chunk, start=start, end=start + len(chunk)))
        return chunks

    def split_sections(self, text: str, starts: Sequence[int]) -> list[TextChunk]:
        """Chunks that never cross a section (a page, a slide, a sheet) starting at ``starts``:
        each passage then lies on one page, the page a result names."""
        bounds = [*sorted({0, *(s for s in starts if 0 < s < len(text))}), len(text)]
        chunks = []
        for begin, end in itertools.pairwise(bounds):
            chunks += [TextChunk(c.text, c.start + begin, c.end + begin)
                       for c in self.split(text[begin:end])]  # fmt: skip
        return chunks
