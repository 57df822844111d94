"""Reading files into text: plain text, Markdown, HTML, PDF, DOCX, and other text found by sniffing.

Each loader gets the file's bytes and returns its text and title, or raises ``UnreadableFileError``
with a reason a person can act on.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from charset_normalizer import from_bytes

from searchapp.errors import NotADocument, UnreadableFileError


@dataclass(frozen=True)
class LoadedText:
    text: str
    title: str
    file_type: str


TEXT_SUFFIXES = frozenset({".txt", ".text", ".rst", ".log", ".csv", ".tsv", ".json", ".org"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
KNOWN_BINARY_SUFFIXES = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".tif", ".tiff", ".mp3", ".mp4",
        ".wav", ".flac", ".ogg", ".avi", ".mov", ".mkv", ".zip", ".gz", ".tgz", ".bz2", ".xz",
        ".7z", ".rar", ".tar", ".exe", ".dll", ".so", ".dylib", ".o", ".a", ".class", ".jar",
        ".pyc", ".whl", ".db", ".sqlite", ".faiss", ".bin", ".safetensors", ".pt", ".npy", ".iso",
        ".doc", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".woff", ".woff2", ".ttf", ".otf",
    }
)  # fmt: skip
_SNIFF_BYTES = 8192


PLUGIN_GROUP = "searchapp.loaders"


def plugin_loaders() -> dict[str, EntryPoint]:
    """Loaders other packages add for a suffix, as entry points in the ``searchapp.loaders``
    group (name: the suffix, such as ``.epub``; value: ``module:function`` taking the file's
    bytes and path and returning ``LoadedText``). A plugin's suffix overrides the built-in one."""
    return {ep.name.lower(): ep for ep in entry_points(group=PLUGIN_GROUP)}


def is_candidate(path: Path, plugin_suffixes: Collection[str] = ()) -> bool:
    """Worth opening: a known document type, or an unknown suffix that may be text."""
    suffix = path.suffix.lower()
    return suffix in plugin_suffixes or suffix not in KNOWN_BINARY_SUFFIXES


def looks_binary(data: bytes) -> bool:
    """NUL bytes (outside UTF-16) or many control characters mean this is not text."""
    head = data[:_SNIFF_BYTES]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for byte in head if byte < 32 and byte not in (9, 10, 12, 13, 27))
    return controls > len(head) * 0.05


def decode_text(data: bytes) -> str:
    """Decode bytes as UTF-8 (with or without BOM), UTF-16 with a BOM, or the detected charset."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if looks_binary(data):
        raise UnreadableFileError("binary content, not text")
    best = from_bytes(data).best()
    if best is None:
        raise UnreadableFileError("not text in any encoding that could be detected")
    return str(best)


def _first_line_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return fallback


def load_plain_text(data: bytes, path: Path) -> LoadedText:
    if looks_binary(data):
        raise UnreadableFileError("binary content, not text")
    text = decode_text(data)
    first_line = _first_line_title(text, path.stem)
    title = first_line if len(first_line) <= 120 else path.stem
    return LoadedText(text=text, title=title, file_type="text")


_MD_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def load_markdown(data: bytes, path: Path) -> LoadedText:
    if looks_binary(data):
        raise UnreadableFileError("binary content, not Markdown")
    text = decode_text(data)
    heading = _MD_HEADING.search(text)
    title = heading.group(1) if heading else _first_line_title(text, path.stem)
    return LoadedText(text=text, title=title, file_type="markdown")


def load_html(data: bytes, path: Path) -> LoadedText:
    from selectolax.lexbor import LexborHTMLParser

    if looks_binary(data):
        raise UnreadableFileError("binary content, not HTML")
    tree = LexborHTMLParser(decode_text(data))
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    tree.strip_tags(["script", "style", "noscript", "template", "svg", "head"])
    root = tree.body or tree.root
    text = root.text(separator="\n") if root else ""
    text = re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()
    if not title:
        heading = tree.css_first("h1")
        title = heading.text(strip=True) if heading else path.stem
    return LoadedText(text=text, title=title, file_type="html")


def load_pdf(data: bytes, path: Path) -> LoadedText:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        reason = str(error)
        if "password" in reason.lower():
            raise UnreadableFileError("PDF is encrypted (password protected)") from None
        raise UnreadableFileError(f"PDF cannot be opened ({reason})") from None
    try:
        pages = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            pages.append(textpage.get_text_range())
            textpage.close()
            page.close()
        title = (pdf.get_metadata_dict().get("Title") or "").strip()
    except pdfium.PdfiumError as error:
        raise UnreadableFileError(f"PDF is damaged ({error})") from None
    finally:
        pdf.close()
    text = "\n\n".join(page.replace("\r\n", "\n").replace("\r", "\n") for page in pages)
    return LoadedText(text=text, title=title or _first_line_title(text, path.stem), file_type="pdf")


MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200


def _refuse_zip_bomb(data: bytes) -> None:
    """Check a DOCX's declared unpacked size before any XML is parsed."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile as error:
        raise UnreadableFileError(f"not a valid DOCX file ({error})") from None
    if unpacked > MAX_UNZIPPED_BYTES or unpacked > max(len(data), 1) * MAX_COMPRESSION_RATIO:
        raise UnreadableFileError(
            f"DOCX would unpack to {unpacked / 2**20:.0f} MiB from {len(data) / 2**20:.1f} MiB: "
            "refused as a possible zip bomb"
        )


def load_docx(data: bytes, path: Path) -> LoadedText:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    _refuse_zip_bomb(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as error:
        raise UnreadableFileError(f"not a valid DOCX file ({error})") from None
    paragraphs = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            paragraphs.append(" | ".join(cell.text for cell in row.cells))
    text = "\n\n".join(p for p in paragraphs if p.strip())
    title = (document.core_properties.title or "").strip()
    return LoadedText(
        text=text, title=title or _first_line_title(text, path.stem), file_type="docx"
    )


LOADERS: dict[str, Callable[[bytes, Path], LoadedText]] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    **dict.fromkeys(HTML_SUFFIXES, load_html),
    **dict.fromkeys(MARKDOWN_SUFFIXES, load_markdown),
}


@cache
def _plugin(suffix: str) -> Callable[[bytes, Path], LoadedText] | None:
    entry_point = plugin_loaders().get(suffix)
    return entry_point.load() if entry_point is not None else None


def load_file(path: Path, data: bytes) -> LoadedText:
    """Turn a file's bytes into text, choosing the loader by suffix (a plugin's first), else by
    sniffing. Runs untrusted parsers in this process: the indexer calls it through
    ``indexer.parse_worker.ParseWorker``, which adds time and memory limits."""
    suffix = path.suffix.lower()
    loader = _plugin(suffix) or LOADERS.get(suffix)
    if loader is not None:
        return loader(data, path)
    if suffix not in TEXT_SUFFIXES and looks_binary(data):
        raise NotADocument("binary file of unknown type")
    return load_plain_text(data, path)
