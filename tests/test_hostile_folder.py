"""A folder full of trouble is indexed without a crash: bad files named, good ones found."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA

LATIN1_TEXT = (
    "Crème brûlée à la française: the custard is flavoured with vanilla, baked slowly in a "
    "bain-marie, chilled, then topped with caramelised sugar. Café owners serve it über-cold."
)


def _make_hostile_folder(root: Path) -> None:
    root.mkdir()
    shutil.copy(DATA / "docs" / "bees" / "varroa-mites.md", root / "good.md")
    shutil.copy(DATA / "docs" / "firstaid" / "choking.pdf", root / "good.pdf")
    pdf = (DATA / "docs" / "firstaid" / "choking.pdf").read_bytes()
    (root / "truncated.pdf").write_bytes(pdf[: len(pdf) // 3])
    (root / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (root / "latin1.txt").write_bytes(LATIN1_TEXT.encode("latin-1"))
    (root / "empty.txt").write_bytes(b"")
    (root / "sub").mkdir()
    (root / "sub" / "loop").symlink_to("..")  # a folder symlink back up the tree
    (root / "a-link").symlink_to("b-link")  # two symlinks pointing at each other
    (root / "b-link").symlink_to("a-link")
    os.mkfifo(root / "pipe.txt")
    (root / "utf16.txt").write_bytes("Ünïcödé honey ferments into mead.".encode("utf-16"))
    (
        root / "caf\xe9-latin1-name.txt".encode("latin-1").decode("utf-8", "surrogateescape")
    ).write_text("A file whose name is not UTF-8 still gets indexed: sourdough discard pancakes.")
    _encrypted_pdf(root / "encrypted.pdf")
    _zip_bomb(root / "bomb.docx")
    secret = root / "unreadable.txt"
    secret.write_text("nobody may read this")
    secret.chmod(0o000)


HOSTILE_PARSERS = """
import os


def loop_forever(data, path):
    while True:
        pass


def eat_memory(data, path):
    hoard = []
    while True:
        hoard.append(bytearray(64 * 2**20))


def crash(data, path):
    os.abort()
"""


def _install_hostile_parsers(plugins: Path) -> None:
    """Loader plugins, installed the way any package adds one (an entry point), that loop forever,
    eat memory without bound, or crash the process: stand-ins for a parser meeting its nemesis."""
    plugins.mkdir()
    (plugins / "hostile_parsers.py").write_text(HOSTILE_PARSERS)
    info = plugins / "hostile_parsers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-parsers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[searchapp.loaders]\n.loop = hostile_parsers:loop_forever\n"
        ".hog = hostile_parsers:eat_memory\n.boom = hostile_parsers:crash\n"
    )


def _encrypted_pdf(path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(DATA / "docs" / "firstaid" / "choking.pdf"))
    writer.encrypt(user_password="secret", owner_password="owner")
    with path.open("wb") as handle:
        writer.write(handle)


def _zip_bomb(path: Path) -> None:
    """A DOCX-shaped zip whose one member unpacks 1000-fold."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (32 * 1024 * 1024))


def _searchapp(home: Path, *args: str, plugins: Path | None = None) -> subprocess.CompletedProcess:
    # Root reads any file; without the capabilities that allow it, root is refused as people are.
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    prefix = drop if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "searchapp.cli", "--home", str(home), *args],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PYTHONPATH": str(plugins)} if plugins else None,
    )  # fmt: skip


def test_hostile_folder_is_indexed_and_every_bad_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    home = tmp_path / "home"
    _make_hostile_folder(folder)
    _install_hostile_parsers(tmp_path / "plugins")
    for name in ("stuck.loop", "greedy.hog", "fatal.boom"):
        (folder / name).write_text("whatever this is, its parser cannot cope with it")

    run = _searchapp(
        home, "index", str(folder), "--json", "--quiet", "--parse-timeout", "5",
        "--parse-memory", "1024", plugins=tmp_path / "plugins",
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # 1: some files failed
    assert "Traceback" not in run.stderr
    summary = json.loads(run.stdout)
    failed = {Path(item["path"]).name: item["reason"] for item in summary["failed"]}
    skipped = {Path(item["path"]).name: item["reason"] for item in summary["skipped"]}
    assert set(failed) == {
        "truncated.pdf",
        "binary.txt",
        "unreadable.txt",
        "encrypted.pdf",
        "bomb.docx",
        "stuck.loop",
        "greedy.hog",
        "fatal.boom",
    }
    assert "did not finish within 5 s" in failed["stuck.loop"]
    assert "out of memory" in failed["greedy.hog"] and "1024 MiB" in failed["greedy.hog"]
    assert "crashed (SIGABRT)" in failed["fatal.boom"]
    assert "encrypted" in failed["encrypted.pdf"]
    assert "zip bomb" in failed["bomb.docx"]
    assert "PDF" in failed["truncated.pdf"]
    assert "binary" in failed["binary.txt"]
    assert "ermission denied" in failed["unreadable.txt"]
    assert "no text" in skipped["empty.txt"]
    assert "FIFO" in skipped["pipe.txt"]
    assert "loop" in skipped["loop"]
    assert "loop" in skipped["a-link"] and "loop" in skipped["b-link"]
    assert summary["added"] == 5  # good.md, good.pdf, latin1.txt, utf16.txt, the odd name

    search = _searchapp(home, "search", "creme brulee custard", "--json", "--mode", "keyword")
    assert search.returncode == 0, search.stderr
    top = json.loads(search.stdout)["results"][0]
    assert top["path"].endswith("latin1.txt")
    assert "Crème brûlée" in top["snippet"].replace("**", "")

    search = _searchapp(home, "search", "mead from honey", "--json", "--k", "1")
    assert json.loads(search.stdout)["results"][0]["path"].endswith("utf16.txt")
    search = _searchapp(home, "search", "sourdough discard pancakes", "--json", "--k", "1")
    assert json.loads(search.stdout)["results"][0]["path"].endswith("caf\\xe9-latin1-name.txt")

    search = _searchapp(home, "search", "how to treat varroa mites", "--json", "--k", "1")
    assert json.loads(search.stdout)["results"][0]["path"].endswith("good.md")
    search = _searchapp(home, "search", "someone is choking", "--json", "--k", "1")
    assert json.loads(search.stdout)["results"][0]["path"].endswith("good.pdf")


def test_oversized_file_is_refused_without_being_read(docs_copy: Path, home) -> None:  # type: ignore[no-untyped-def]
    from indexer.folders import MAX_FILE_BYTES, index_folders

    huge = docs_copy / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: the size is there, the disk is not used
    summary = index_folders(home, [docs_copy])
    assert [(Path(p).name, r) for p, r in summary.failed] == [
        ("huge.txt", "file too large (64 MiB; the limit is 64 MiB)")
    ]
    assert summary.added == 12


def test_file_vanishing_mid_run_is_reported_and_forgotten(docs_copy: Path, home) -> None:  # type: ignore[no-untyped-def]
    from indexer.folders import index_folders
    from searchapp.progress import CallbackProgress, Update
    from searchapp.search import Searcher

    victim = docs_copy / "coffee" / "espresso-dialing-in.md"
    assert victim.exists()

    def delete_victim_midway(update: Update) -> None:
        if update.detail == str(victim):
            victim.unlink()  # the walk listed it; the indexer is about to read it

    index_folders(home, [docs_copy])
    victim.write_text(victim.read_text() + "\nEdited: a new line about crema.")
    summary = index_folders(home, [docs_copy], progress=CallbackProgress(delete_victim_midway))
    assert not victim.exists()
    assert (str(victim), "vanished during the run") in summary.skipped
    assert summary.removed == 1 and not summary.failed
    paths = {r.path for r in Searcher(home).search("espresso crema", k=20, mode="keyword")}
    assert str(victim) not in paths
