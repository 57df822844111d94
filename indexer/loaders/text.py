"""Text formats: plain text (any encoding), Markdown, HTML and RTF."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from charset_normalizer import from_bytes

from indexer.loaders.base import LoadedText, first_line_title
from searchapp.errors import UnreadableFileError

TEXT_SUFFIXES = frozenset({".txt", ".text", ".rst", ".log", ".csv", ".tsv", ".json", ".org"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
_SNIFF_BYTES = 8192


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


def load_plain_text(data: bytes, path: Path) -> LoadedText:
    if looks_binary(data):
        raise UnreadableFileError("binary content, not text")
    text = decode_text(data)
    first_line = first_line_title(text, path.stem)
    title = first_line if len(first_line) <= 120 else path.stem
    return LoadedText(text=text, title=title, file_type="text")


_MD_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def load_markdown(data: bytes, path: Path) -> LoadedText:
    if looks_binary(data):
        raise UnreadableFileError("binary content, not Markdown")
    text = decode_text(data)
    heading = _MD_HEADING.search(text)
    title = heading.group(1) if heading else first_line_title(text, path.stem)
    return LoadedText(text=text, title=title, file_type="markdown")


def html_to_text(markup: str) -> tuple[str, str, str]:
    """The visible text of an HTML page, its ``<title>`` and its first ``<h1>`` ("" if none)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    heading_node = tree.css_first("h1")
    heading = heading_node.text(strip=True) if heading_node else ""
    tree.strip_tags(["script", "style", "noscript", "template", "svg", "head"])
    root = tree.body or tree.root
    text = root.text(separator="\n") if root else ""
    text = re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()
    return text, title, heading


def load_html(data: bytes, path: Path) -> LoadedText:
    if looks_binary(data):
        raise UnreadableFileError("binary content, not HTML")
    text, title, heading = html_to_text(decode_text(data))
    return LoadedText(text=text, title=title or heading or path.stem, file_type="html")


def load_rtf(data: bytes, path: Path) -> LoadedText:
    """RTF as text, its control words removed (striprtf); title and author from its info group."""
    from striprtf.striprtf import rtf_to_text

    if not data.lstrip().startswith(b"{\\rtf"):
        raise UnreadableFileError("not an RTF file (it does not start with {\\rtf)")
    markup = data.decode("latin-1")  # RTF is 7-bit; escapes name the code page of the rest
    try:
        text = rtf_to_text(markup, errors="replace")
    except (ValueError, IndexError, UnicodeError) as error:
        raise UnreadableFileError(f"RTF is damaged ({error})") from None
    info = {m.group(1).decode(): m.group(2).decode("latin-1").strip()
            for m in re.finditer(rb"\{\\(title|author)\s+([^{}]*)\}", data[:65536])}  # fmt: skip
    text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
    return LoadedText(
        text=text,
        title=info.get("title") or first_line_title(text, path.stem),
        file_type="rtf",
        author=info.get("author", ""),
    )
