"""Everyday files of every format searchapp reads, built from scratch, each holding one fact that a
paraphrased question asks for. Tests and ``bench/formats.py`` use them.

Each builder writes real files the way the format's own tools do: python-docx, python-pptx and
openpyxl for Office, the OpenDocument and EPUB containers by their specifications, the standard
library's ``email`` for mail, Pillow for images and image-only ("scanned") PDFs.
"""

from __future__ import annotations

import bz2
import gzip
import io
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    name: str  # the file's name
    fact: str  # a sentence the file holds
    question: str  # a paraphrase of it, sharing few words
    build: Callable[[Path, str], None]  # (path, fact) -> writes the file
    title: str = ""  # the title the file's metadata gives, when it has one


# -- pictures of text -----------------------------------------------------------------------------


def render_page(text: str, *, width: int = 2480, height: int = 3508, size: int = 44):
    """A white A4 page at 300 dpi with ``text`` typeset on it in black (Pillow's own font)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y = 200
    columns = max(20, int((width - 400) / (size * 0.52)))
    for paragraph in text.split("\n"):
        for line in textwrap.wrap(paragraph, columns) or [""]:
            draw.text((200, y), line, fill=0, font=font)
            y += int(size * 1.5)
    return page


def write_png(path: Path, text: str) -> None:
    render_page(text, width=1600, height=600, size=44).save(path, format="PNG")


def write_scanned_pdf(path: Path, text: str) -> None:
    """A PDF whose one page is only a picture of text: no text layer, as a scanner makes."""
    render_page(text).save(path, format="PDF", resolution=300)


def write_text_pdf(path: Path, text: str) -> None:
    """A PDF with a text layer (a real font, the text selectable), written by hand: one page."""
    lines = textwrap.wrap(text, 80)
    body = "BT /F1 12 Tf 72 760 Td 14 TL " + " ".join(
        "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '"
        for line in lines
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(body), body.encode("latin-1")),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, obj))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))  # fmt: skip
    path.write_bytes(out.getvalue())


def write_mixed_pdf(path: Path, typed: str, scanned: str) -> None:
    """Page 1 has a text layer; page 2 is a scan."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for text, write in ((typed, write_text_pdf), (scanned, write_scanned_pdf)):
        part = path.with_suffix(".part.pdf")
        write(part, text)
        writer.append(PdfReader(io.BytesIO(part.read_bytes())))
        part.unlink()
    with path.open("wb") as handle:
        writer.write(handle)


# -- Office and OpenDocument ----------------------------------------------------------------------


def write_docx(path: Path, text: str, title: str = "") -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.core_properties.author = "Mira Okafor"
    document.add_heading("Workshop notes", level=1)
    document.add_paragraph(text)
    document.save(path)


def write_pptx(path: Path, text: str, title: str = "Colony behaviour") -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = title
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = title
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Field observations"
    box = second.shapes.add_textbox(Inches(1), Inches(2), Inches(8), Inches(3))
    box.text_frame.text = text
    deck.save(path)


def write_xlsx(path: Path, text: str) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Imports"
    sheet.append(["Quarter", "Note"])
    sheet.append(["Q3", text])
    book.create_sheet("Empty")
    book.save(path)


_ODF_MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
 manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="{mime}"/>
<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>
</manifest:manifest>"""
_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" office:version="1.2"'
)


def _write_odf(path: Path, mime: str, body: str, title: str) -> None:
    """An OpenDocument package: ``mimetype`` first and stored, then content, meta, manifest."""
    content = f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS}>' \
              f"<office:body>{body}</office:body></office:document-content>"  # fmt: skip
    meta = f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {_ODF_NS}><office:meta>' \
           f"<dc:title>{title}</dc:title><dc:creator>Jonas Berg</dc:creator>" \
           "<meta:creation-date>2026-03-14T09:30:00</meta:creation-date>" \
           "</office:meta></office:document-meta>"  # fmt: skip
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), mime, compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("meta.xml", meta, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", _ODF_MANIFEST.format(mime=mime))


def write_odt(path: Path, text: str, title: str = "Campus plans") -> None:
    body = ('<office:text><text:h text:outline-level="1">Buildings</text:h>'
            f"<text:p>{text}</text:p></office:text>")  # fmt: skip
    _write_odf(path, "application/vnd.oasis.opendocument.text", body, title)


def write_ods(path: Path, text: str, title: str = "Field census") -> None:
    def cell(value: str) -> str:
        paragraph = f"<text:p>{value}</text:p>"
        return f'<table:table-cell office:value-type="string">{paragraph}</table:table-cell>'

    rows = "".join(f"<table:table-row>{cell(a)}{cell(b)}</table:table-row>"
                   for a, b in (("Survey", "Finding"), ("2026", text)))  # fmt: skip
    table = f'<table:table table:name="Census">{rows}</table:table>'
    body = f"<office:spreadsheet>{table}</office:spreadsheet>"
    _write_odf(path, "application/vnd.oasis.opendocument.spreadsheet", body, title)


def write_odp(path: Path, text: str, title: str = "Travel disruption") -> None:
    slides = "".join(
        f'<draw:page draw:name="page{n}"><draw:frame><draw:text-box><text:p>{line}</text:p>'
        "</draw:text-box></draw:frame></draw:page>"
        for n, line in enumerate((title, text), start=1)
    )
    body = f"<office:presentation>{slides}</office:presentation>"
    _write_odf(path, "application/vnd.oasis.opendocument.presentation", body, title)


# -- e-books, rich text, mail, compressed, web ----------------------------------------------------


def write_epub(path: Path, text: str, title: str = "The Baker's Year") -> None:
    container = (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="OEBPS/content.opf" '
        'media-type="application/oebps-package+xml"/></rootfiles></container>'
    )
    package = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:identifier id="id">urn:uuid:1</dc:identifier><dc:title>{title}</dc:title>'
        "<dc:creator>Ines Duarte</dc:creator><dc:date>2025-09-01</dc:date>"
        "<dc:language>en</dc:language></metadata><manifest>"
        '<item id="c1" href="one.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="c2" href="two.xhtml" media-type="application/xhtml+xml"/>'
        '</manifest><spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>'
    )

    def chapter(heading: str, paragraph: str) -> str:
        return ('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head>'
                f"<title>{heading}</title></head><body><h1>{heading}</h1><p>{paragraph}</p>"
                "</body></html>")  # fmt: skip

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", package)
        archive.writestr("OEBPS/one.xhtml", chapter("Spring", "The ovens are cleaned in March."))
        archive.writestr("OEBPS/two.xhtml", chapter("Starter", text))


def write_rtf(path: Path, text: str, title: str = "Climate memo") -> None:
    path.write_text(
        "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times New Roman;}}"
        f"{{\\info{{\\title {title}}}{{\\author Lena Fischer}}}}"
        f"\\f0\\fs24 {{\\b Summary}}\\par {text}\\par}}",
        encoding="ascii",
    )


def mail_message(subject: str, text: str, *, sender: str = "Anna Lind <anna@example.org>",
                 html: bool = False) -> EmailMessage:  # fmt: skip
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = "Sam Berg <sam@example.org>"
    message["Date"] = "Tue, 03 Nov 2026 08:15:00 +0100"
    if html:  # an HTML-only message, as some mail clients send
        message.set_content(f"<html><body><p>{text}</p></body></html>", subtype="html")
    else:
        message.set_content(text)
    return message


def write_eml(path: Path, text: str, title: str = "Dentist appointment moved") -> None:
    path.write_bytes(bytes(mail_message(title, text)))


def write_eml_with_attachment(path: Path, text: str, attached: str) -> None:
    message = mail_message("Roof repair", text, sender="Piet Bos <piet@example.org>")
    docx_path = path.with_suffix(".tmp.docx")
    write_docx(docx_path, attached, title="Invoice 2291")
    message.add_attachment(docx_path.read_bytes(), maintype="application",
                           subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                           filename="invoice.docx")  # fmt: skip
    docx_path.unlink()
    path.write_bytes(bytes(message))


def write_mbox(path: Path, messages: list[tuple[str, str]]) -> None:
    """An mbox file (mboxrd) of (subject, text) messages."""
    import mailbox

    box = mailbox.mbox(path, create=True)
    try:
        for subject, text in messages:
            box.add(mail_message(subject, text))
        box.flush()
    finally:
        box.close()


def write_gz(path: Path, text: str) -> None:
    path.write_bytes(gzip.compress(f"Race notes\n\n{text}\n".encode()))


def write_bz2(path: Path, text: str) -> None:
    path.write_bytes(bz2.compress(f"# Archive\n\n{text}\n".encode()))


def write_html(path: Path, text: str, title: str = "Night birds") -> None:
    path.write_text(f"<html><head><title>{title}</title></head><body><h1>Owls</h1>"
                    f"<p>{text}</p></body></html>", encoding="utf-8")  # fmt: skip


SAMPLES = [
    Sample("baking.epub", "A sourdough starter must be fed with rye flour every twelve hours.",
           "how often should the bread yeast culture be nourished", write_epub, "The Baker's Year"),
    Sample("campus.odt", "The bicycle shed behind the library will be demolished next spring.",
           "when will the bike storage building be torn down", write_odt, "Campus plans"),
    Sample("census.ods", "Volunteers counted 4200 emperor penguins on the ice shelf.",
           "how many antarctic birds were tallied", write_ods, "Field census"),
    Sample("travel.odp", "Volcanic ash grounded every flight from the northern airport.",
           "eruption dust stopped the planes", write_odp, "Travel disruption"),
    Sample("bees.pptx", "Honeybees tell their hive mates where flowers are with a waggle dance.",
           "how do insects show the colony where nectar is", write_pptx, "Colony behaviour"),
    Sample("imports.xlsx", "Coffee bean imports from Colombia rose by eighteen percent.",
           "growth in shipments of arabica from south america", write_xlsx),
    Sample("violin.docx", "The violin was restored by replacing its cracked spruce top.",
           "repair of a broken string instrument", write_docx),
    Sample("glaciers.rtf", "Glaciers in the Alps lost a tenth of their ice in two summers.",
           "melting of mountain ice in europe", write_rtf, "Climate memo"),
    Sample("dentist.eml", "Your dental checkup is now on Thursday at nine in the morning.",
           "when is my teeth cleaning visit", write_eml, "Dentist appointment moved"),
    Sample("scan.pdf", "The submarine cable between the islands was repaired by divers.",
           "fixing the undersea line that connects the isles", write_scanned_pdf),
    Sample("note.png", "Water the orchids with rain water every Sunday morning.",
           "which day do the orchids need watering", write_png),
    Sample("race.txt.gz", "The marathon route passes the old cathedral at kilometre thirty.",
           "the running course goes by the church", write_gz),
    Sample("owls.html", "Owls can turn their heads through two hundred and seventy degrees.",
           "how far can these night birds rotate their necks", write_html, "Night birds"),
]  # fmt: skip


def write_samples(folder: Path, samples: list[Sample] = SAMPLES) -> dict[str, Sample]:
    """Write every sample into ``folder``; returns them by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    for sample in samples:
        sample.build(folder / sample.name, sample.fact)
    return {sample.name: sample for sample in samples}
