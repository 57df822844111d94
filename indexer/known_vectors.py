"""Each chunk text embedded once: the vectors an index run already has, by the hash of the text.

A folder repeats itself. Every Debian package ships the same licence texts, a project keeps the
same README in three places, and an edited file keeps most of its paragraphs. Embedding a text the
run has already embedded (or that the replaced version of a document already had in this
generation) gives the same vector, so ``IndexWriter`` asks ``KnownVectors`` first and the encoder
only sees what is new. The memory is bounded: the most recently used ``capacity`` vectors.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

TextKey = bytes


def text_key(text: str) -> TextKey:
    """A chunk text's key: 16 bytes of BLAKE2b, so that a run's memory holds keys, not texts."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class KnownVectors:
    """The last ``capacity`` vectors seen, by text key (least recently used forgotten first)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"KnownVectors needs a capacity of at least 1, not {capacity}.")
        self.capacity = capacity
        self._vectors: OrderedDict[TextKey, np.ndarray] = OrderedDict()

    def get(self, key: TextKey) -> np.ndarray | None:
        vector = self._vectors.get(key)
        if vector is not None:
            self._vectors.move_to_end(key)
        return vector

    def remember(self, pairs: Iterable[tuple[TextKey, np.ndarray]]) -> None:
        """Keep these vectors (copied: a row must not hold its whole batch in memory)."""
        for key, vector in pairs:
            self._vectors[key] = np.array(vector, dtype=np.float32, copy=True)
            self._vectors.move_to_end(key)
        while len(self._vectors) > self.capacity:
            self._vectors.popitem(last=False)
