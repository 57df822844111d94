"""Office documents: Word (DOCX), PowerPoint (PPTX), spreadsheets (XLSX, XLS, ODS, by calamine)
and OpenDocument text and presentations (ODT, ODP).

Every one of them is a zip of XML files: the container is checked before anything in it is
parsed (``limits.open_zip``), and XML is parsed with entities off.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from indexer.loaders.base import LoadedText, first_line_title, join_sections
from indexer.loaders.limits import open_zip, parse_xml, read_member
from searchapp.errors import NotADocument, UnreadableFileError

SPREADSHEET_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"})
MAX_SHEET_CELLS = 2_000_000


def _iso(moment: object) -> str:
    return moment.isoformat() if hasattr(moment, "isoformat") else ""


def load_docx(data: bytes, path: Path) -> LoadedText:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    open_zip(data, "DOCX").close()
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as error:
        raise UnreadableFileError(f"not a valid DOCX file ({error})") from None
    parts: list[tuple[str, str]] = []
    heading = ""
    body: list[str] = []
    for paragraph in document.paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        if style.startswith(("Heading", "Title")) and paragraph.text.strip():
            parts.append((heading, "\n\n".join(body)))
            heading, body = paragraph.text.strip(), []
        body.append(paragraph.text)
    for table in document.tables:
        for row in table.rows:
            body.append(" | ".join(cell.text for cell in row.cells))
    parts.append((heading, "\n\n".join(p for p in body if p.strip())))
    text, sections = join_sections(parts)
    properties = document.core_properties
    return LoadedText(
        text=text,
        title=(properties.title or "").strip() or first_line_title(text, path.stem),
        file_type="docx",
        author=(properties.author or "").strip(),
        date=_iso(properties.created),
        sections=tuple(s for s in sections if s.label),
    )


def load_pptx(data: bytes, path: Path) -> LoadedText:
    """Each slide's text (its shapes, tables and speaker notes), a section per slide."""
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    open_zip(data, "PPTX").close()
    try:
        presentation = Presentation(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as error:
        raise UnreadableFileError(f"not a valid PPTX file ({error})") from None
    slides = []
    first_title = ""
    for number, slide in enumerate(presentation.slides, start=1):
        lines = []
        for shape in slide.shapes:
            if shape.has_text_frame:
                lines.append(shape.text_frame.text)
            if getattr(shape, "has_table", False):
                lines.extend(" | ".join(cell.text for cell in row.cells)
                             for row in shape.table.rows)  # fmt: skip
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            lines.append(slide.notes_slide.notes_text_frame.text)
        title = slide.shapes.title.text.strip() if slide.shapes.title is not None else ""
        first_title = first_title or title
        slides.append((f"slide {number}", "\n".join(line for line in lines if line.strip())))
    text, sections = join_sections(slides)
    properties = presentation.core_properties
    return LoadedText(
        text=text,
        title=(properties.title or "").strip() or first_title or first_line_title(text, path.stem),
        file_type="pptx",
        author=(properties.author or "").strip(),
        date=_iso(properties.created),
        sections=sections,
    )


def load_spreadsheet(data: bytes, path: Path) -> LoadedText:
    """Every sheet's rows as lines of cells joined by " | ", a section per sheet (calamine)."""
    from python_calamine import CalamineError, CalamineWorkbook, PasswordError

    suffix = path.suffix.lower()
    kind = suffix.lstrip(".").upper()
    properties: dict[str, str] = {}
    if suffix != ".xls":  # the others are zips: check the container first
        with open_zip(data, kind) as archive:
            properties = _odf_meta(archive) if suffix == ".ods" else _ooxml_core(archive)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheets = []
        cells = 0
        for name in workbook.sheet_names:
            rows = workbook.get_sheet_by_name(name).to_python(skip_empty_area=True)
            lines = []
            for row in rows:
                cells += len(row)
                if cells > MAX_SHEET_CELLS:
                    raise UnreadableFileError(
                        f"spreadsheet has more than {MAX_SHEET_CELLS:,} cells: refused"
                    )
                values = [_cell(value) for value in row]
                if any(values):
                    lines.append(" | ".join(values).strip(" |"))
            sheets.append((f"sheet {name}", "\n".join(lines)))
    except PasswordError:
        raise UnreadableFileError(f"{kind} is encrypted (password protected)") from None
    except (CalamineError, ValueError, OSError) as error:
        raise UnreadableFileError(
            f"{kind} cannot be read ({type(error).__name__}: {error})"
        ) from None
    text, sections = join_sections(sheets, separator="\n\n")
    return LoadedText(
        text=text,
        title=properties.get("title") or path.stem,
        file_type=suffix.lstrip("."),
        author=properties.get("author", ""),
        date=properties.get("date", ""),
        sections=sections,
    )


def _cell(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


_ODF = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
}
_TEXT = f"{{{_ODF['text']}}}"


def load_odf_text(data: bytes, path: Path) -> LoadedText:
    """OpenDocument text (a section per heading) or presentation (a section per slide)."""
    suffix = path.suffix.lower()
    kind = suffix.lstrip(".").upper()
    with open_zip(data, kind) as archive:
        mimetype = read_member(archive, "mimetype", kind).decode("ascii", "replace").strip()
        if not mimetype.startswith("application/vnd.oasis.opendocument"):
            raise UnreadableFileError(f"not a valid {kind} file (its mimetype is {mimetype!r})")
        content = parse_xml(read_member(archive, "content.xml", kind), kind)
        properties = _odf_meta(archive)
    body = content.find("office:body", _ODF)
    if body is None:
        raise UnreadableFileError(f"not a valid {kind} file: content.xml has no body")
    slides = body.findall("office:presentation/draw:page", _ODF)
    if slides:
        parts = [(f"slide {number}", "\n".join(_odf_paragraphs(slide)))
                 for number, slide in enumerate(slides, start=1)]  # fmt: skip
        file_type = "odp"
    else:
        parts = _odf_by_heading(body)
        file_type = "odt" if suffix == ".odt" else suffix.lstrip(".")
    text, sections = join_sections(parts)
    if not text and not slides and body.find("office:text", _ODF) is None:
        raise NotADocument(f"OpenDocument of type {mimetype} holds no text this reads")
    return LoadedText(
        text=text,
        title=properties.get("title") or first_line_title(text, path.stem),
        file_type=file_type,
        author=properties.get("author", ""),
        date=properties.get("date", ""),
        sections=tuple(s for s in sections if s.label),
    )


def _odf_paragraphs(element) -> list[str]:  # type: ignore[no-untyped-def]
    return [_odf_text(p) for p in element.iter(f"{_TEXT}p", f"{_TEXT}h")]


def _odf_by_heading(body) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    parts: list[tuple[str, str]] = []
    heading, lines = "", []
    for element in body.iter(f"{_TEXT}p", f"{_TEXT}h"):
        line = _odf_text(element)
        if element.tag == f"{_TEXT}h" and line.strip():
            parts.append((heading, "\n".join(lines)))
            heading, lines = line.strip(), []
        lines.append(line)
    parts.append((heading, "\n".join(lines)))
    return parts


def _odf_text(paragraph) -> str:  # type: ignore[no-untyped-def]
    """A paragraph's text with ODF's space, tab and line-break elements; nested paragraphs (in
    frames and notes) are read on their own."""
    pieces = [paragraph.text or ""]
    for child in paragraph:
        tag = child.tag
        if tag == f"{_TEXT}s":
            pieces.append(" " * min(int(child.get(f"{_TEXT}c", "1") or 1), 100))
        elif tag == f"{_TEXT}tab":
            pieces.append("\t")
        elif tag == f"{_TEXT}line-break":
            pieces.append("\n")
        elif tag not in (f"{_TEXT}p", f"{_TEXT}h", f"{_TEXT}note"):
            pieces.append(_odf_text(child))
        pieces.append(child.tail or "")
    return "".join(pieces)


def _odf_meta(archive: zipfile.ZipFile) -> dict[str, str]:
    if "meta.xml" not in archive.namelist():
        return {}
    meta = parse_xml(read_member(archive, "meta.xml", "OpenDocument"), "OpenDocument")
    found = {
        "title": meta.findtext(".//dc:title", "", _ODF),
        "author": meta.findtext(".//dc:creator", "", _ODF)
        or meta.findtext(".//meta:initial-creator", "", _ODF),
        "date": meta.findtext(".//meta:creation-date", "", _ODF)
        or meta.findtext(".//dc:date", "", _ODF),
    }
    return {key: value.strip() for key, value in found.items() if value and value.strip()}


_CORE = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
}


def _ooxml_core(archive: zipfile.ZipFile) -> dict[str, str]:
    """Title, author and date from an Office Open XML file's ``docProps/core.xml``."""
    if "docProps/core.xml" not in archive.namelist():
        return {}
    core = parse_xml(read_member(archive, "docProps/core.xml", "Office file"), "Office file")
    found = {
        "title": core.findtext("dc:title", "", _CORE),
        "author": core.findtext("dc:creator", "", _CORE),
        "date": core.findtext("dcterms:created", "", _CORE),
    }
    return {key: value.strip() for key, value in found.items() if value and value.strip()}


_LEGACY = {".doc": ("Word 97-2003 (.doc)", ".docx"), ".ppt": ("PowerPoint 97-2003 (.ppt)", ".pptx")}


def refuse_legacy_office(data: bytes, path: Path) -> LoadedText:
    """DOC and PPT: no library kept today reads them (XLS is read by calamine)."""
    name, modern = _LEGACY[path.suffix.lower()]
    raise NotADocument(f"legacy {name} format: no library here reads it; save it as {modern}")
