"""Reading files into text: one module per family of formats, chosen by the file's suffix.

Each loader gets the file's bytes and its path and returns a ``LoadedText`` (or, for a file that
holds several documents, such as a mailbox, a list of them), or raises ``UnreadableFileError``
(the file is damaged or refused: it fails) or ``NotADocument`` (nothing here to index: it is
skipped), each with a reason a person can act on. The indexer runs them in a separate, limited
process (``indexer.parse_worker``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from indexer.loaders.base import LoadedText, Section, first_line_title
from indexer.loaders.compressed import COMPRESSED_SUFFIXES, load_compressed
from indexer.loaders.epub import load_epub
from indexer.loaders.images import IMAGE_SUFFIXES, load_image
from indexer.loaders.mail import load_eml, load_mbox
from indexer.loaders.office import (
    SPREADSHEET_SUFFIXES,
    load_docx,
    load_odf_text,
    load_pptx,
    load_spreadsheet,
    refuse_legacy_office,
)
from indexer.loaders.pdf import load_pdf
from indexer.loaders.text import (
    HTML_SUFFIXES,
    MARKDOWN_SUFFIXES,
    TEXT_SUFFIXES,
    decode_text,
    load_html,
    load_markdown,
    load_plain_text,
    load_rtf,
    looks_binary,
)
from searchapp.errors import NotADocument, UnreadableFileError

__all__ = [
    "LOADERS",
    "LoadedText",
    "Section",
    "decode_text",
    "first_line_title",
    "load_file",
    "looks_binary",
    "not_a_document_type",
    "plugin_loaders",
]

Loader = Callable[[bytes, Path], "LoadedText | list[LoadedText]"]

LOADERS: dict[str, Loader] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".docm": load_docx,
    ".pptx": load_pptx,
    ".pptm": load_pptx,
    ".odt": load_odf_text,
    ".odp": load_odf_text,
    ".epub": load_epub,
    ".rtf": load_rtf,
    ".eml": load_eml,
    ".mbox": load_mbox,
    ".doc": refuse_legacy_office,
    ".ppt": refuse_legacy_office,
    **dict.fromkeys(SPREADSHEET_SUFFIXES, load_spreadsheet),
    **dict.fromkeys(HTML_SUFFIXES, load_html),
    **dict.fromkeys(MARKDOWN_SUFFIXES, load_markdown),
    **dict.fromkeys(COMPRESSED_SUFFIXES, load_compressed),
    **dict.fromkeys(IMAGE_SUFFIXES, load_image),
}

# Suffixes of files that hold no document text: they are counted as skipped, with this reason,
# without being read.
NOT_DOCUMENTS: dict[str, str] = {
    **dict.fromkeys((".gif", ".bmp", ".ico", ".svgz", ".heic"),
                    "image of a kind OCR does not read"),
    **dict.fromkeys((".mp3", ".wav", ".flac", ".ogg", ".m4a", ".opus"), "audio file"),
    **dict.fromkeys((".mp4", ".avi", ".mov", ".mkv", ".webm"), "video file"),
    **dict.fromkeys(
        (".zip", ".tgz", ".7z", ".rar", ".tar", ".jar", ".whl", ".iso", ".deb", ".rpm"),
        "archive of several files (unpack it to index what it holds)",
    ),
    **dict.fromkeys(
        (".exe", ".dll", ".so", ".dylib", ".o", ".a", ".class", ".pyc", ".bin"), "program file"
    ),
    **dict.fromkeys(
        (".db", ".sqlite", ".faiss", ".safetensors", ".pt", ".npy", ".onnx"), "data file"
    ),
    **dict.fromkeys((".woff", ".woff2", ".ttf", ".otf"), "font file"),
    # A program that draws pages: its bytes are text, but not the words on its pages.
    **dict.fromkeys((".ps", ".eps"), "PostScript (convert it to PDF, with ps2pdf, to index it)"),
}  # fmt: skip


PLUGIN_GROUP = "searchapp.loaders"


def plugin_loaders() -> dict[str, EntryPoint]:
    """Loaders other packages add for a suffix, as entry points in the ``searchapp.loaders``
    group (name: the suffix, such as ``.epub``; value: ``module:function`` taking the file's
    bytes and path and returning ``LoadedText``). A plugin's suffix overrides the built-in one."""
    return {ep.name.lower(): ep for ep in entry_points(group=PLUGIN_GROUP)}


def not_a_document_type(path: Path, plugin_suffixes: Collection[str] = ()) -> str | None:
    """Why a file of this name is not read at all (a video, an archive), or None: worth reading."""
    suffix = path.suffix.lower()
    if suffix in plugin_suffixes or suffix in LOADERS:
        return None
    return NOT_DOCUMENTS.get(suffix)


@cache
def _plugin(suffix: str) -> Loader | None:
    entry_point = plugin_loaders().get(suffix)
    return entry_point.load() if entry_point is not None else None


def load_file(path: Path, data: bytes) -> list[LoadedText]:
    """Turn a file's bytes into its documents (one for most files; a mailbox's messages and
    their attachments), choosing the loader by suffix (a plugin's first), else by sniffing.

    Runs untrusted parsers in this process: the indexer calls it through
    ``indexer.parse_worker.ParseWorker``, which adds time and memory limits.
    """
    suffix = path.suffix.lower()
    loader = _plugin(suffix) or LOADERS.get(suffix)
    if loader is not None:
        try:
            loaded = loader(data, path)
        except (zlib.error, NotImplementedError) as error:  # inside a zip or a gzip stream
            kind = suffix.lstrip(".").upper()
            raise UnreadableFileError(
                f"{kind} file is damaged or compressed in a way no reader here supports "
                f"({type(error).__name__}: {error})"
            ) from None
        return loaded if isinstance(loaded, list) else [loaded]
    if reason := NOT_DOCUMENTS.get(suffix):
        raise NotADocument(reason)
    if suffix not in TEXT_SUFFIXES and looks_binary(data):
        raise NotADocument("binary file of unknown type")
    return [load_plain_text(data, path)]
