"""Chunks fit the model: counted in its own tokens, overlapping, with offsets into the text."""

from __future__ import annotations

import itertools

import pytest
from transformers import AutoTokenizer

from indexer.chunking import Chunker
from searchapp.encoder import bundled_model_path
from searchapp.errors import InvalidOptionError

PARAGRAPH = (
    "Varroa mites feed on developing bees and spread viruses through the colony. "
    "Beekeepers count mites with a sugar roll or an alcohol wash in late summer. "
    "Treatment with oxalic acid works best when the colony has no brood. "
)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(str(bundled_model_path()))  # the tokenizer, no weights


def _tokens(tokenizer, text: str) -> int:  # type: ignore[no-untyped-def]
    return len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])


def test_every_chunk_fits_and_points_back_into_the_text(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "\n\n".join(PARAGRAPH * 3 for _ in range(6))
    chunks = Chunker(tokenizer, max_tokens=64, overlap_tokens=8).split(text)
    assert len(chunks) > 5
    for chunk in chunks:
        assert _tokens(tokenizer, chunk.text) <= 64
        assert text[chunk.start : chunk.end] == chunk.text
    assert chunks[0].start == 0 and chunks[-1].end == len(text.rstrip())


def test_chunks_overlap_when_asked_and_leave_no_gap(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = PARAGRAPH * 8
    chunks = Chunker(tokenizer, max_tokens=48, overlap_tokens=16).split(text)
    pairs = list(itertools.pairwise(chunks))
    assert any(b.start < a.end for a, b in pairs)  # overlap where a sentence boundary allows
    assert all(text[a.end : b.start].strip() == "" for a, b in pairs)  # never a gap
    apart = Chunker(tokenizer, max_tokens=48, overlap_tokens=0).split(PARAGRAPH * 8)
    assert all(b.start >= a.end for a, b in itertools.pairwise(apart))


def test_short_text_is_one_chunk_and_empty_text_none(tokenizer) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(tokenizer, max_tokens=254)
    (only,) = chunker.split("  A short note about cold brew.  ")
    assert only.text == "A short note about cold brew."
    assert chunker.split("   \n  ") == []


def test_sizes_that_cannot_work_are_refused(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOptionError, match="at least 8 tokens"):
        Chunker(tokenizer, max_tokens=4)
    with pytest.raises(InvalidOptionError, match="Overlap must be between 0 and half"):
        Chunker(tokenizer, max_tokens=64, overlap_tokens=40)
