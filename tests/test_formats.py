"""Every file a real folder holds: each format is read, found by a paraphrased question, titled
from its own metadata, and located (page, slide, sheet, message); scans are read by OCR, once;
every file is accounted for; hostile files are refused within the parse limits."""

from __future__ import annotations

import difflib
import json
import os
import random
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from indexer.folders import index_folders
from indexer.loaders import load_file
from indexer.ocr import OcrOptions
from indexer.parse_worker import ParseWorker
from searchapp.errors import UnreadableFileError
from searchapp.search import Searcher, SearchFilters
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Document
from tests.format_samples import (
    SAMPLES,
    render_page,
    write_eml_with_attachment,
    write_mbox,
    write_mixed_pdf,
    write_samples,
    write_scanned_pdf,
)
from tests.fuzzing import fuzz, mutate, seed_files

MAILBOX = [
    ("Chess club", "The chess club meets in room 12 on Tuesday evenings."),
    ("Seedlings", "Tomato seedlings must be hardened off before they are planted outside."),
]


def word_accuracy(reference: str, read: str) -> float:
    """The share of the reference's words that OCR read, in order."""
    expected, got = reference.lower().split(), read.lower().split()
    matcher = difflib.SequenceMatcher(None, expected, got, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(expected)


@pytest.fixture(scope="module")
def everyday_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 13 everyday files, a mailbox, a mail with an attachment, a mixed PDF, and files that
    are no documents or that rules leave out."""
    folder = tmp_path_factory.mktemp("everyday")
    write_samples(folder)
    write_mbox(folder / "club.mbox", MAILBOX)
    invoice = "The invoice for the roof repair comes to three thousand euros."
    write_eml_with_attachment(folder / "roof.eml", "The invoice is attached.", invoice)
    write_mixed_pdf(folder / "harbour.pdf", "The museum by the quay opens at ten.",
                    "The harbour gates close at dusk in winter.")  # fmt: skip
    (folder / "song.mp3").write_bytes(b"ID3" + bytes(64))
    (folder / ".draft.txt").write_text("a hidden draft")
    (folder / "build").mkdir()
    (folder / "build" / "out.txt").write_text("generated")
    (folder / ".searchappignore").write_text("build\n")
    return folder


@pytest.fixture(scope="module")
def everyday_home(everyday_folder: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = Settings.load(tmp_path_factory.mktemp("everyday-home"))
    summary = index_folders(home, [everyday_folder])
    return home, summary


def test_every_file_is_accounted_for(everyday_home, everyday_folder: Path) -> None:  # type: ignore[no-untyped-def]
    _, summary = everyday_home
    on_disk = [p for p in everyday_folder.iterdir() if p.name != ".searchappignore"]
    assert summary.files == len(on_disk)  # the 'build' folder counts once, as ignored
    assert summary.added == len(on_disk) - 3 and not summary.failed
    assert summary.skipped == [(str(everyday_folder / "song.mp3"), "audio file")]
    assert sorted(reason for _, reason in summary.ignored) == [
        "ignored (hidden name)", "ignored (ignore pattern 'build')",
    ]  # fmt: skip
    assert summary.to_json()["files"] == summary.files
    # the mailbox is one file and two documents; the attachment is a document of its own
    assert summary.documents == summary.added + 1 + 1


def test_each_format_is_found_by_a_paraphrase(everyday_home, everyday_folder: Path) -> None:  # type: ignore[no-untyped-def]
    home, _ = everyday_home
    searcher = Searcher(home)
    questions = [(s.question, s.name) for s in SAMPLES] + [
        ("where does the board game society get together", "club.mbox"),
        ("what does mending the roof cost", "roof.eml"),
        ("when do the port's gates shut", "harbour.pdf"),
    ]
    missed = []
    for question, name in questions:
        top = searcher.search(question, k=1, mode="dense")[0]
        if Path(top.path).name != name:
            missed.append((question, name, top.path))
    assert missed == []


def test_titles_authors_and_locations(everyday_home, everyday_folder: Path, cli) -> None:  # type: ignore[no-untyped-def]
    home, _ = everyday_home
    with Database(home.database_url).read() as session:
        documents = {(Path(d.path).name, d.part): d for d in session.query(Document)}
    for sample in SAMPLES:
        if sample.title:
            assert documents[(sample.name, "")].title == sample.title, sample.name
    assert documents[("campus.odt", "")].author == "Jonas Berg"
    assert documents[("baking.epub", "")].doc_date == "2025-09-01"
    first = documents[("club.mbox", "message 1")]
    assert (first.title, first.author) == ("Chess club", "Anna Lind <anna@example.org>")
    assert json.loads(first.meta)["to"] == "Sam Berg <sam@example.org>"
    assert documents[("club.mbox", "message 2")].title == "Seedlings"
    invoice = documents[("roof.eml", "invoice.docx")]
    assert json.loads(invoice.meta)["message"] == "Roof repair"

    run = cli("--home", home.home, "search", "how do bees show where nectar is", "--json",
              "--mode", "dense", "--k", "1")  # fmt: skip
    (result,) = json.loads(run.out)["results"]
    assert (Path(result["path"]).name, result["location"]) == ("bees.pptx", "slide 2")
    run = cli("--home", home.home, "search", "board game society", "--json", "--mode", "dense",
              "--k", "1", "--type", "email")  # fmt: skip
    (result,) = json.loads(run.out)["results"]
    assert result["location"] == "message 1" and result["metadata"]["from"].startswith("Anna")

    searcher = Searcher(home)
    by_sam = searcher.search("club", k=10, mode="dense", filters=SearchFilters(author="piet@"))
    assert {Path(r.path).name for r in by_sam} == {"roof.eml"}


def test_the_search_page_says_where_a_passage_is(
    everyday_home, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from tests.test_ui import _app, _search

    home, _ = everyday_home
    app = _search(_app(home.home, monkeypatch), "when do the port's gates shut")
    first = next(c.value for c in app.caption if "harbour.pdf" in c.value)
    assert "page 2" in first  # the scanned page, read by OCR
    app = _search(app, "where does the board game society get together")
    first = next(c.value for c in app.caption if "club.mbox" in c.value)
    assert "message 1" in first and "Anna Lind" in first and "2026-11-03" in first


def test_a_mailbox_is_a_document_per_message_and_kept_in_step(
    home: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mail"
    folder.mkdir()
    box = folder / "club.mbox"
    write_mbox(box, MAILBOX)
    first = index_folders(home, [folder])
    assert (first.added, first.documents) == (1, 2)
    assert index_folders(home, [folder]).unchanged == 1

    box.unlink()
    write_mbox(box, [*MAILBOX[1:], ("Bake sale", "The bake sale raised ninety pounds.")])
    second = index_folders(home, [folder])
    assert (second.updated, second.documents) == (1, 2)
    with Database(home.database_url).read() as session:
        titles = sorted(d.title for d in session.query(Document))
    assert titles == ["Bake sale", "Seedlings"]  # the chess club's message is gone


def test_ocr_reads_a_rendered_page_word_for_word(tmp_path: Path) -> None:
    text = (
        "Minutes of the harbour committee. The committee met on the third of March to review "
        "the budget for dredging the northern channel. Costs rose by twelve percent because "
        "the contractor replaced two pumps and a crane. The treasurer asked for three quotes "
        "before any further work, and the chair agreed to publish the report in April. The "
        "ferry timetable will change in May, when the evening crossing moves to half past six. "
        "Members thanked the volunteers who repainted the lighthouse and cleared the beach."
    )
    scan = tmp_path / "minutes.pdf"
    write_scanned_pdf(scan, text)
    (document,) = load_file(scan, scan.read_bytes())
    assert word_accuracy(text, document.text) >= 0.95, document.text
    assert document.metadata["ocr_pages"] == "1"


def test_a_mixed_pdf_is_ocred_only_where_it_has_no_text(tmp_path: Path) -> None:
    pdf = tmp_path / "mixed.pdf"
    write_mixed_pdf(
        pdf, "The typed page lists the opening hours.", "The scanned page names the ferry."
    )
    (document,) = load_file(pdf, pdf.read_bytes())
    assert [s.label for s in document.sections] == ["page 1", "page 2"]
    page_two = document.text[document.sections[1].start :]
    assert "typed page lists the opening hours" in document.text[: document.sections[1].start]
    assert word_accuracy("The scanned page names the ferry.", page_two) >= 0.95
    assert document.metadata["ocr_pages"] == "1"


def test_ocr_is_cached_by_content_so_a_renamed_file_is_not_read_again(
    home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    write_scanned_pdf(folder / "scan.pdf", "The boiler was serviced by a certified engineer.")
    first = index_folders(home, [folder])
    assert first.added == 1 and list(home.ocr_cache_dir.rglob("*.txt"))

    (folder / "scan.pdf").rename(folder / "boiler.pdf")
    no_tesseract = tmp_path / "bin"  # a PATH without Tesseract: only the cache can read it
    no_tesseract.mkdir()
    monkeypatch.setenv("PATH", str(no_tesseract))
    second = index_folders(home, [folder])
    assert (second.added, second.removed, second.skipped) == (1, 1, [])
    top = Searcher(home).search("heating maintenance", k=1, mode="dense")[0]
    assert top.path.endswith("boiler.pdf")


def test_without_ocr_scans_and_images_are_skipped_with_what_to_do(
    home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    write_scanned_pdf(folder / "scan.pdf", "A scanned letter.")
    render_page("A photo of a note.", width=800, height=300).save(folder / "note.png")
    (folder / "typed.txt").write_text("A typed note about the garden gate.")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    run = index_folders(home, [folder])
    assert run.added == 1
    reasons = dict(run.skipped)
    assert "apt install tesseract-ocr" in reasons[str(folder / "scan.pdf")]
    assert "apt install tesseract-ocr" in reasons[str(folder / "note.png")]

    monkeypatch.undo()
    off = index_folders(dataclasses_replace(home, ocr=False), [folder])
    assert {reason for _, reason in off.skipped} == {
        "scanned PDF: it needs OCR, and OCR is off (--no-ocr)",
        "needs OCR, and OCR is off (--no-ocr)",
    }


def dataclasses_replace(settings: Settings, **changes: object) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, **changes)


# -- hostile files ---------------------------------------------------------------------------------


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` × ``height``: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))  # fmt: skip


def _entity_bomb_epub(path: Path) -> None:
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    package = (
        f'<?xml version="1.0"?><!DOCTYPE package [<!ENTITY lol0 "lol">{lol}]>'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>&lol9;</dc:title></metadata>'
        '<manifest><item id="c" href="c.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c"/></spine></package>'
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        container = (
            '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="p.opf"/></rootfiles></container>'
        )
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("p.opf", package)
        archive.writestr("c.xhtml", "<html><body><p>&lol9; the chapter</p></body></html>")


def _gzip_of_zeros(path: Path, gigabytes: int) -> None:
    """``gigabytes`` GB of zeros, gzipped: one 100 MB member, repeated (gzip allows several)."""
    import gzip

    member = gzip.compress(bytes(100 * 2**20), compresslevel=9)
    with path.open("wb") as handle:
        for _ in range(gigabytes * 10):
            handle.write(member)


def test_hostile_files_are_refused_with_reasons_and_the_run_goes_on(
    home: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "hostile"
    folder.mkdir()
    good = folder / "good.txt"
    good.write_text("The allotment committee meets on the first Sunday of the month.")
    for name in ("broken.docx", "broken.epub", "broken.odt", "broken.pptx", "broken.xlsx"):
        (folder / name).write_bytes(b"PK\x03\x04" + os.urandom(300))  # a zip's start, then junk
    _entity_bomb_epub(folder / "laughs.epub")
    _gzip_of_zeros(folder / "zeros.txt.gz", gigabytes=10)
    (folder / "huge.png").write_bytes(_png_header_claiming(30_000, 30_000))
    (folder / "empty.mbox").write_bytes(b"From nobody Thu Jan  1 00:00:00 1970\n\n" * 1_000_000)

    summary = index_folders(dataclasses_replace(home, parse_timeout_s=30.0), [folder])
    assert summary.added == 1  # the good file
    reasons = dict(summary.failed)
    for name in ("broken.docx", "broken.epub", "broken.odt", "broken.pptx", "broken.xlsx"):
        assert (
            "damaged" in reasons[str(folder / name)] or "not a valid" in reasons[str(folder / name)]
        )
    assert "decompresses to more than 64 MiB" in reasons[str(folder / "zeros.txt.gz")]
    assert "30,000 × 30,000 pixels" in reasons[str(folder / "huge.png")]
    assert "1,000,000 messages" in reasons[str(folder / "empty.mbox")]
    assert "entities that would expand without bound" in reasons[str(folder / "laughs.epub")]
    assert len(summary.failed) == 9 and summary.files == 10
    assert Searcher(home).search("allotment meeting day", k=1, mode="dense")[0].path == str(good)


def test_the_parse_worker_still_answers_after_a_bomb(tmp_path: Path) -> None:
    bomb = tmp_path / "zeros.txt.gz"
    _gzip_of_zeros(bomb, gigabytes=1)
    with ParseWorker(timeout=30, memory_mb=1024, ocr=OcrOptions(enabled=False)) as worker:
        with pytest.raises(Exception, match="refused"):
            worker.parse(bomb, bomb.read_bytes())
        (document,) = worker.parse(tmp_path / "a.md", b"# Still here\n\nText.")
    assert document.title == "Still here"


def test_legacy_office_files_say_what_to_do(tmp_path: Path) -> None:
    from searchapp.errors import NotADocument

    with pytest.raises(NotADocument, match=r"save it as \.docx"):
        load_file(tmp_path / "old.doc", b"\xd0\xcf\x11\xe0" + bytes(100))


def test_postscript_is_not_indexed_as_its_program_text(tmp_path: Path) -> None:
    """A manual.ps.gz is PostScript drawing code, text bytes that are not the page's words."""
    import gzip

    from searchapp.errors import NotADocument

    program = b"%!PS-Adobe-3.0\n/pdfSetupPaper { pop } def\nshowpage\n"
    for name, data in (("manual.ps", program), ("manual.ps.gz", gzip.compress(program))):
        with pytest.raises(NotADocument, match=r"PostScript.*ps2pdf"):
            load_file(tmp_path / name, data)


def test_mangled_files_of_every_format_are_read_or_fail_with_their_reason(tmp_path: Path) -> None:
    # Three havoc-mutated copies of each format's seed file (tests/fuzzing.py), parsed as an
    # index run parses them: nothing escapes the parse process but a failure with its reason.
    seeds = seed_files(tmp_path / "seeds")
    *_, (report, _) = fuzz(seeds, tmp_path / "cases", cases=3 * len(seeds), seed=0, timeout=30)
    assert report.crashes == [], report.crashes
    assert report.cases == report.read + report.failed == 3 * len(seeds)
    assert report.read and report.failed  # it did break files, and some still read
    # The same kind of folder through the whole indexer: the run finishes and names each failure.
    folder = tmp_path / "mangled"
    folder.mkdir()
    rng = random.Random(1)
    for name, data in seeds.items():
        (folder / name).write_bytes(mutate(data, rng))
    home = Settings.load(tmp_path / "home")
    summary = index_folders(home, [folder])
    accounted = summary.added + len(summary.failed) + len(summary.skipped)
    assert accounted == len(seeds), summary.to_json()
    assert all(reason for _, reason in [*summary.failed, *summary.skipped])


FUZZ_REGRESSIONS = Path(__file__).parent / "data" / "fuzz-regressions"


@pytest.mark.parametrize("name", sorted(p.name for p in FUZZ_REGRESSIONS.iterdir()), ids=str)
def test_what_the_fuzzing_found_fails_with_a_reason_or_reads(name: str) -> None:
    # Files the fuzzing made that once escaped their loaders: a zlib error inside a gzip stream
    # or an ODF zip, a zip "version" Python cannot read, an address header the standard library's
    # parser chokes on. Now: a failure that names the damage, or the document without the header.
    path = FUZZ_REGRESSIONS / name
    cause = name.split("-", 1)[0]
    if cause == "attributeerror":  # the e-mail is read; only its broken header is left out
        [message] = load_file(path, path.read_bytes())
        assert message.file_type == "email" and message.author == ""
        return
    with pytest.raises(UnreadableFileError, match=r"damaged"):
        load_file(path, path.read_bytes())
