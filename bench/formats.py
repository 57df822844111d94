"""Reading every format: files per second per format, OCR pages per second and word accuracy per
engine, and a real folder of package documentation indexed whole.

Three parts, one run (``--only`` picks some):

- ``formats``: ``--copies`` files of each format (the everyday samples of the tests, each padded
  with a few paragraphs), parsed through the product's own limited parse process
  (``ParseWorker``), OCR cache off; files per second per format.
- ``ocr``: a dense A4 page (about 460 words) and a short note rendered at 300 dpi, read by each
  engine: Tesseract as the product runs it (one process per page, ``OMP_THREAD_LIMIT=1``; then
  two pages at once, both cores) and, with ``--rapidocr-python`` (a Python where
  ``rapidocr_onnxruntime`` is installed, with its bundled ONNX models), RapidOCR. Seconds per
  page and word accuracy, each the median of ``--repeats``.
- ``folder``: ``searchapp index`` of a copy of ``/usr/share/doc`` cut to about ``--files``
  files (txt, rst, md, html, pdf, gz and more), whole command, fresh home, default backend,
  exports cached; then again, unchanged (no file parsed, no page OCRed).

Results: docs/formats.json and docs/formats.png; the tables are printed.

    python bench/formats.py [--copies 20] [--repeats 3] [--files 900] [--rapidocr-python PY]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from indexer.ocr import OcrOptions, ocr_pages  # noqa: E402
from indexer.parse_worker import ParseWorker  # noqa: E402
from tests.format_samples import (  # noqa: E402
    SAMPLES,
    render_page,
    write_mbox,
)
from tests.test_formats import word_accuracy  # noqa: E402

RESULTS = REPO / "docs" / "formats.json"
PLOT = REPO / "docs" / "formats.png"
FILLER = (
    "The committee reviewed the schedule for the coming season and agreed on the budget. "
    "Volunteers will repaint the hall, repair the fence and clear the drains before winter. "
)
DENSE_PARAGRAPH = (
    "the harbour committee met on the third of march to review the budget for dredging the "
    "northern channel costs rose by twelve percent because the contractor replaced two pumps "
    "and a crane the treasurer asked for three quotes before any further work and the chair "
    "agreed to publish the report in april the ferry timetable will change in may when the "
    "evening crossing moves to half past six members thanked the volunteers who repainted the "
    "lighthouse and cleared the beach after the storms of january"
)
NOTE = "Water the orchids with rain water every Sunday morning, and feed them once a month."

RAPIDOCR_SCRIPT = """
import sys, time, json
from rapidocr_onnxruntime import RapidOCR
engine = RapidOCR()
for path in sys.argv[1:]:
    started = time.perf_counter()
    result, _ = engine(path)
    lines = [item[1] for item in (result or [])]
    print(json.dumps({"path": path, "seconds": time.perf_counter() - started,
                      "text": " ".join(lines)}), flush=True)
"""


def dense_text() -> str:
    words = (DENSE_PARAGRAPH.split() * 8)[:460]
    return " ".join(words).capitalize() + "."


def bench_formats(work: Path, copies: int) -> dict[str, dict]:
    folder = work / "formats"
    folder.mkdir(parents=True)
    files: dict[str, list[Path]] = {}
    for sample in SAMPLES:
        for copy in range(copies):
            path = folder / f"{copy:03d}-{sample.name}"
            text = f"{sample.fact} {FILLER * (3 + copy % 3)}"
            if sample.name.endswith((".png", ".pdf")) and "scan" not in sample.name:
                text = sample.fact  # a photo of a note holds a line or two
            sample.build(path, text)
            files.setdefault(sample.name.split(".", 1)[1], []).append(path)
    for copy in range(copies):
        path = folder / f"{copy:03d}-club.mbox"
        write_mbox(path, [(f"Message {n}", f"{FILLER} {n}") for n in range(10)])
        files.setdefault("mbox (10 messages)", []).append(path)
    results = {}
    with ParseWorker(timeout=600, memory_mb=2048, ocr=OcrOptions(cache_dir=None)) as worker:
        worker.parse(folder / "warm.txt", b"warm up")
        for kind, paths in files.items():
            started = time.perf_counter()
            documents = sum(len(worker.parse(p, p.read_bytes())) for p in paths)
            seconds = time.perf_counter() - started
            results[kind] = {"files": len(paths), "documents": documents,
                             "seconds": round(seconds, 3),
                             "files_per_s": round(len(paths) / seconds, 2)}  # fmt: skip
            print(f"{kind:20} {results[kind]['files_per_s']:8.2f} files/s "
                  f"({len(paths)} files, {documents} documents)", flush=True)  # fmt: skip
    return results


def bench_ocr(work: Path, repeats: int, rapidocr_python: str | None) -> dict[str, dict]:
    pages = {"dense A4 page": dense_text(), "note": NOTE}
    images = {}
    for name, text in pages.items():
        page = render_page(text) if name != "note" else render_page(text, height=900)
        path = work / f"{name.replace(' ', '-')}.png"
        page.save(path)
        images[name] = path
    results: dict[str, dict] = {}
    options = OcrOptions(cache_dir=None)

    def tesseract_once(path: Path) -> tuple[float, str]:
        started = time.perf_counter()
        (text,) = ocr_pages([(str(time.time_ns()), path.read_bytes)], options)
        return time.perf_counter() - started, text

    for name, path in images.items():
        runs = [tesseract_once(path) for _ in range(repeats)]
        results[f"tesseract · {name}"] = _summary(runs, pages[name])
    dense = images["dense A4 page"]
    walls = []
    for _ in range(repeats):  # two pages at once: what a scanned PDF gets on two cores
        started = time.perf_counter()
        texts = ocr_pages([(f"{time.time_ns()}-{n}", dense.read_bytes) for n in range(2)], options)
        walls.append((time.perf_counter() - started, texts[0]))
    two = _summary(walls, pages["dense A4 page"])
    two["pages_per_s"] = round(2 / two["seconds_per_page"], 3)
    two["seconds_per_page"] = round(two["seconds_per_page"] / 2, 3)
    results["tesseract · dense A4 page, 2 at once"] = two
    if rapidocr_python:
        script = work / "rapid.py"
        script.write_text(RAPIDOCR_SCRIPT)
        for name, path in images.items():
            out = subprocess.run([rapidocr_python, str(script), *[str(path)] * (repeats + 1)],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            answers = [json.loads(line) for line in out.stdout.splitlines()][1:]  # 1st: warm-up
            runs = [(answer["seconds"], answer["text"]) for answer in answers]
            results[f"rapidocr · {name}"] = _summary(runs, pages[name])
    for name, figures in results.items():
        print(f"{name:40} {figures['seconds_per_page']:6.2f} s/page  "
              f"accuracy {figures['word_accuracy']:.3f}", flush=True)  # fmt: skip
    return results


def _summary(runs: list[tuple[float, str]], reference: str) -> dict:
    seconds = statistics.median(s for s, _ in runs)
    return {
        "seconds_per_page": round(seconds, 3),
        "pages_per_s": round(1 / seconds, 3),
        "word_accuracy": round(min(word_accuracy(reference, text) for _, text in runs), 4),
        "repeats": len(runs),
    }


def doc_folder(work: Path, files: int) -> Path:
    """Package documentation as a real machine has it: whole package folders of
    /usr/share/doc, in name order, until about ``files`` files."""
    target = work / "doc"
    target.mkdir()
    count = 0
    for package in sorted(Path("/usr/share/doc").iterdir()):
        if count >= files or not package.is_dir() or package.is_symlink():
            continue
        members = [p for p in package.rglob("*") if p.is_file() and not p.is_symlink()]
        if not members:
            continue
        shutil.copytree(package, target / package.name, symlinks=False,
                        ignore_dangling_symlinks=True, dirs_exist_ok=True)  # fmt: skip
        count += len(members)
    return target


def bench_folder(work: Path, files: int) -> dict:
    folder = doc_folder(work, files)
    paths = [p for p in folder.rglob("*") if p.is_file()]
    kinds: dict[str, int] = {}
    for path in paths:
        kinds[path.suffix.lower() or "(none)"] = kinds.get(path.suffix.lower() or "(none)", 0) + 1
    size = sum(p.stat().st_size for p in paths)
    home = work / "home"
    searchapp = str(Path(sys.executable).parent / "searchapp")
    command = [searchapp, "--home", str(home), "index", str(folder), "--json", "--quiet"]
    warm = work / "warm"  # the model's exports made and cached first, as on a user's machine
    warm.mkdir()
    (warm / "note.txt").write_text("A note to make the exports.")
    subprocess.run([searchapp, "--home", str(work / "warm-home"), "index", str(warm), "--quiet"],
                   check=True, capture_output=True)  # fmt: skip
    runs = {}
    for run in ("first", "unchanged"):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        seconds = time.perf_counter() - started
        summary = json.loads(done.stdout)
        runs[run] = {"seconds": round(seconds, 1), "added": summary["added"],
                     "unchanged": summary["unchanged"], "failed": len(summary["failed"]),
                     "skipped": len(summary["skipped"]), "files": summary["files"],
                     "chunks": summary["chunks"], "documents": summary["documents"]}  # fmt: skip
        print(f"folder, {run:9}: {seconds:6.1f} s  {runs[run]}", flush=True)
    common = sorted(kinds.items(), key=lambda item: -item[1])[:8]
    return {"files": len(paths), "megabytes": round(size / 2**20, 1),
            "kinds": dict(common), "runs": runs,
            "command": "searchapp --home HOME index FOLDER --json --quiet"}  # fmt: skip


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [key for key in ("formats", "ocr") if key in results]
    if not panels:
        return
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    if "formats" in results:
        axis = axes[0][0]
        kinds = sorted(results["formats"], key=lambda k: results["formats"][k]["files_per_s"])
        axis.barh(kinds, [results["formats"][k]["files_per_s"] for k in kinds], color="#4c72b0")
        axis.set_xscale("log")
        axis.set_xlabel("files per second (log), through the parse process")
        axis.set_title("Reading each format")
    if "ocr" in results:
        axis = axes[0][len(panels) - 1]
        names = list(results["ocr"])
        seconds = [results["ocr"][n]["seconds_per_page"] for n in names]
        bars = axis.barh(names, seconds, color="#dd8452")
        for bar, name in zip(bars, names, strict=True):
            accuracy = results["ocr"][name]["word_accuracy"]
            axis.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                      f" {accuracy:.0%} words", va="center", fontsize=8)  # fmt: skip
        axis.set_xlabel("seconds per page (lower is better)")
        axis.set_title("OCR engines, 300-dpi pages")
    figure.tight_layout()
    figure.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=900)
    parser.add_argument("--rapidocr-python", help="a Python with rapidocr_onnxruntime installed")
    parser.add_argument("--only", nargs="+", choices=("formats", "ocr", "folder"),
                        default=("formats", "ocr", "folder"))  # fmt: skip
    parser.add_argument("--work", type=Path, default=None)
    arguments = parser.parse_args()
    work = arguments.work or Path(tempfile.mkdtemp(prefix="bench-formats-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = f"{os.cpu_count()} cores"
    if "formats" in arguments.only:
        results["formats"] = bench_formats(work, arguments.copies)
    if "ocr" in arguments.only:
        results["ocr"] = bench_ocr(work, arguments.repeats, arguments.rapidocr_python)
    if "folder" in arguments.only:
        results["folder"] = bench_folder(work, arguments.files)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    plot(results)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
