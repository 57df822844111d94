"""PDF by pdfium: each page's text layer, and OCR for the pages that have none (a scan, or the
scanned pages of a mixed file)."""

from __future__ import annotations

import threading
from pathlib import Path

from indexer.loaders.base import LoadedText, first_line_title, join_sections
from indexer.ocr import OCR_DPI, page_key, read_pages
from searchapp.errors import NotADocument, UnreadableFileError

MAX_OCR_PAGES = 2000


def load_pdf(data: bytes, path: Path) -> LoadedText:
    import pypdfium2 as pdfium

    from indexer.loaders.images import to_png

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
            pages.append(textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n"))
            textpage.close()
            page.close()
        metadata = pdf.get_metadata_dict()
        scanned = [index for index, text in enumerate(pages) if not text.strip()]
        ocr_note = ""
        if scanned:
            if len(scanned) > MAX_OCR_PAGES:
                raise UnreadableFileError(
                    f"PDF has {len(scanned)} pages without text (OCR reads at most {MAX_OCR_PAGES})"
                )

            pdfium_lock = threading.Lock()  # pdfium is not thread-safe; OCR runs in parallel

            def render(index: int) -> bytes:
                with pdfium_lock:
                    page = pdf[index]
                    try:
                        image = page.render(scale=OCR_DPI / 72, grayscale=True).to_pil()
                    finally:
                        page.close()
                return to_png(image)

            try:
                texts = read_pages([(page_key(data, i), lambda i=i: render(i)) for i in scanned])
            except NotADocument as why:  # no OCR here: the pages with text are still worth having
                if len(scanned) == len(pages):
                    raise NotADocument(f"scanned PDF: it {why}") from None
                ocr_note = f"{len(scanned)} pages without text not read: {why}"
            else:
                for index, text in zip(scanned, texts, strict=True):
                    pages[index] = text
    except pdfium.PdfiumError as error:
        raise UnreadableFileError(f"PDF is damaged ({error})") from None
    finally:
        pdf.close()
    text, sections = join_sections((f"page {n}", t) for n, t in enumerate(pages, start=1))
    extra = {"ocr_pages": str(len(scanned))} if scanned and not ocr_note else {}
    if ocr_note:
        extra["note"] = ocr_note
    return LoadedText(
        text=text,
        title=(metadata.get("Title") or "").strip() or first_line_title(text, path.stem),
        file_type="pdf",
        author=(metadata.get("Author") or "").strip(),
        date=_pdf_date(metadata.get("CreationDate") or ""),
        sections=sections,
        metadata=extra,
    )


def _pdf_date(value: str) -> str:
    """``D:20240131120000+01'00'`` as ``2024-01-31T12:00:00``; "" when it is not a date."""
    digits = value.removeprefix("D:")[:14]
    if len(digits) < 8 or not digits.isdigit():
        return ""
    date = f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"
    if len(digits) >= 12:
        date += f"T{digits[8:10]}:{digits[10:12]}:{digits[12:14] or '00'}"
    return date
