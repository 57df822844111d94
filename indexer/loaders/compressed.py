"""Single compressed files (``notes.txt.gz``, ``CHANGELOG.md.bz2``): decompressed with a cap, then
read by the loader for the name inside (the file name without its compression suffix)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from searchapp.errors import NotADocument, UnreadableFileError

if TYPE_CHECKING:
    from indexer.loaders.base import LoadedText

MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024  # as large as a file the indexer reads at all
_OPENERS = {
    ".gz": lambda data: gzip.GzipFile(fileobj=data),
    ".bz2": bz2.BZ2File,
    ".xz": lzma.LZMAFile,
}
COMPRESSED_SUFFIXES = frozenset(_OPENERS)
_ERRORS = (OSError, EOFError, lzma.LZMAError, ValueError, gzip.BadGzipFile, zlib.error)


def decompress(data: bytes, suffix: str) -> bytes:
    """The decompressed bytes, refused past ``MAX_DECOMPRESSED_BYTES`` without inflating the
    rest: a gzip bomb costs a bounded read."""
    try:
        with _OPENERS[suffix](io.BytesIO(data)) as stream:
            inner = stream.read(MAX_DECOMPRESSED_BYTES + 1)
    except _ERRORS as error:
        raise UnreadableFileError(f"{suffix} file is damaged ({error})") from None
    if len(inner) > MAX_DECOMPRESSED_BYTES:
        raise UnreadableFileError(
            f"decompresses to more than {MAX_DECOMPRESSED_BYTES / 2**20:.0f} MiB "
            f"(from {len(data) / 2**20:.1f} MiB): refused"
        )
    return inner


def load_compressed(data: bytes, path: Path) -> list[LoadedText]:
    from indexer.loaders import load_file

    inner_path = path.with_suffix("")  # notes.txt.gz -> notes.txt
    inner_suffix = inner_path.suffix.lower()
    if inner_suffix == ".tar":
        raise NotADocument("archive of several files (unpack it to index what it holds)")
    if inner_suffix in COMPRESSED_SUFFIXES:
        raise NotADocument("compressed twice: decompress it once to index it")
    return load_file(inner_path, decompress(data, path.suffix.lower()))
