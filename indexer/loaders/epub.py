"""EPUB e-books: the standard library's zipfile, lxml for the package file (entities off) and the
HTML parser the indexer already uses for each chapter. (ebooklib is AGPL, so it is not used.)"""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import unquote

from indexer.loaders.base import LoadedText, first_line_title, join_sections
from indexer.loaders.limits import open_zip, parse_xml, read_member
from indexer.loaders.text import decode_text, html_to_text
from searchapp.errors import UnreadableFileError

_NS = {
    "container": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_CHAPTER_TYPES = ("application/xhtml+xml", "text/html", "application/x-dtbook+xml")


def load_epub(data: bytes, path: Path) -> LoadedText:
    """The chapters in reading order (the spine), a section per chapter; title, author and date
    from the package's Dublin Core metadata."""
    with open_zip(data, "EPUB") as archive:
        container = parse_xml(read_member(archive, "META-INF/container.xml", "EPUB"), "EPUB")
        rootfile = container.find(".//container:rootfile", _NS)
        package_path = rootfile.get("full-path", "") if rootfile is not None else ""
        if not package_path:
            raise UnreadableFileError("not a valid EPUB file: container.xml names no package")
        package = parse_xml(read_member(archive, package_path, "EPUB"), "EPUB")
        base = posixpath.dirname(package_path)
        manifest = {
            item.get("id"): (item.get("href", ""), item.get("media-type", ""))
            for item in package.iterfind("opf:manifest/opf:item", _NS)
        }
        chapters = []
        names = set(archive.namelist())
        for number, ref in enumerate(package.iterfind("opf:spine/opf:itemref", _NS), start=1):
            href, media_type = manifest.get(ref.get("idref"), ("", ""))
            member = posixpath.normpath(posixpath.join(base, unquote(href.split("#")[0])))
            if media_type not in _CHAPTER_TYPES or member not in names:
                continue
            text, title, heading = html_to_text(decode_text(read_member(archive, member, "EPUB")))
            chapters.append((heading or title or f"chapter {number}", text))
    metadata = package.find("opf:metadata", _NS)

    def dublin_core(name: str) -> str:
        value = metadata.findtext(f"dc:{name}", "", _NS) if metadata is not None else ""
        return " ".join(value.split())

    text, sections = join_sections(chapters)
    return LoadedText(
        text=text,
        title=dublin_core("title") or first_line_title(text, path.stem),
        file_type="epub",
        author=dublin_core("creator"),
        date=dublin_core("date"),
        sections=sections,
    )
