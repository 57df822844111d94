"""The reliability stress run: kills, damaged index files, full disks and concurrent readers.

Each fault is injected many times into real ``searchapp`` processes on the shipped sample documents,
and after each one the same checks as the default test suite are made (tests/crashing.py). Results
go to docs/reliability.json and the generated table in docs/RELIABILITY.md; a failed check is
recorded with its message, the run goes on, and the exit status is 1.

    python bench/reliability.py                # 105 kills, 20 damaged files, 5 full disks, readers
    python bench/reliability.py --kills 12 --skip disk-full   # a quicker look

The full-disk rounds mount a tmpfs, which needs root (or CAP_SYS_ADMIN).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from searchapp.search import Searcher  # noqa: E402
from searchapp.settings import Settings  # noqa: E402
from searchapp.store.database import Database  # noqa: E402
from searchapp.store.vectors.faiss import FaissFiles  # noqa: E402
from searchapp.versions import active_generation  # noqa: E402
from tests import crashing  # noqa: E402
from tests.test_concurrency import READER  # noqa: E402

DATA = REPO / "data" / "docs"
DOCS = REPO / "docs"
SECTIONS = ("kills", "corruption", "disk-full", "concurrency")
DAMAGES = ("flip a byte", "truncate", "bad header", "delete")


class Tally:
    """Rounds and failures of one fault, with the failure messages."""

    def __init__(self) -> None:
        self.rounds = 0
        self.failures: list[str] = []
        self.notes: dict[str, int] = {}

    def run(self, label: str, round_fn: Callable[[], str | None]) -> None:
        self.rounds += 1
        try:
            note = round_fn()
        except Exception as error:  # a failed check: record it and go on
            self.failures.append(f"{label}: {type(error).__name__}: {error}"[:600])
            traceback.print_exc()
            return
        if note:
            self.notes[note] = self.notes.get(note, 0) + 1

    def to_json(self) -> dict[str, object]:
        return {"rounds": self.rounds, "failed": len(self.failures), "failures": self.failures,
                "notes": self.notes}  # fmt: skip


def kills(work: Path, rounds: int, seed: int) -> dict[str, dict[str, object]]:
    folder = work / "kills" / "docs"
    shutil.copytree(DATA, folder)
    home = Settings.load(work / "kills" / "home")
    crashing.run_to_completion(crashing.index_command(home, folder))
    crashing.add_second_version(home)
    rng = random.Random(seed)
    tallies = {kind: Tally() for kind in crashing.KINDS}
    durations: dict[str, float] = {}
    for n in tqdm(range(rounds), desc="kill -9", unit="kill"):
        kind = crashing.KINDS[n % len(crashing.KINDS)]

        def one_round(kind: str = kind, n: int = n) -> str:
            outcome = crashing.crash_round(home, folder, kind, rng, n + 1, durations)
            return "killed" if outcome.killed else "finished before the kill"

        tallies[kind].run(f"round {n + 1} ({kind})", one_round)
    return {kind: tally.to_json() for kind, tally in tallies.items()}


def corruption(work: Path, rounds: int) -> dict[str, dict[str, object]]:
    folder = work / "corruption" / "docs"
    shutil.copytree(DATA, folder)
    home = Settings.load(work / "corruption" / "home")
    crashing.run_to_completion(crashing.index_command(home, folder))
    reference = _dense_tops(Searcher(home))
    rng = random.Random(1)
    tallies = {damage: Tally() for damage in DAMAGES}
    for n in tqdm(range(rounds), desc="damaged index files", unit="file"):
        damage = DAMAGES[n % len(DAMAGES)]

        def one_round(damage: str = damage) -> str:
            with Database(home.database_url).read() as session:
                path = FaissFiles(home.index_dir).recorded_file(active_generation(session))
            assert path is not None
            data = bytearray(path.read_bytes())
            if damage == "flip a byte":
                data[rng.randrange(len(data) // 4, len(data))] ^= 1 << rng.randrange(8)
                path.write_bytes(bytes(data))
            elif damage == "truncate":
                path.write_bytes(bytes(data[: rng.randrange(len(data))]))
            elif damage == "bad header":
                path.write_bytes(b"JUNK" + bytes(data[4:]))
            else:
                path.unlink()
            searcher = Searcher(home)
            assert _dense_tops(searcher) == reference, "results differ after the rebuild"
            assert searcher.last_sync is not None and searcher.last_sync.rebuilt
            crashing.run_to_completion(crashing.searchapp(home, "check", "--repair"))
            crashing.run_to_completion(crashing.searchapp(home, "check"))
            reason = searcher.last_sync.reason
            signs = ("checksum", "missing", "cannot be read", "holds", "")
            how = next(sign for sign in signs if sign in reason)
            return f"detected ({how or reason}), rebuilt from SQL, same results"

        tallies[damage].run(damage, one_round)
    return {damage: tally.to_json() for damage, tally in tallies.items()}


def _dense_tops(searcher: Searcher) -> list[list[tuple[int, float]]]:
    return [
        [(r.doc_id, round(r.score, 5)) for r in searcher.search(q, k=5, mode="dense")]
        for q in crashing.QUERIES
    ]


def disk_full(work: Path, leaves_kib: list[int]) -> dict[str, object]:
    """Each round: the sample index copied onto an empty 24 MiB tmpfs, filled to ``leave``."""
    base = Settings.load(work / "disk-base")
    crashing.run_to_completion(crashing.index_command(base, DATA))
    reference = _dense_tops(Searcher(base))
    words = sorted({w for p in DATA.rglob("*.md") for w in re.findall(r"[a-z]{3,}", p.read_text())})
    mount_point = work / "disk"
    mount_point.mkdir()
    tally = Tally()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        tally.rounds += 1
        tally.failures.append(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
        return tally.to_json()
    try:
        for n, leave in enumerate(tqdm(leaves_kib, desc="full disk", unit="disk")):
            shutil.rmtree(mount_point / "home", ignore_errors=True)
            shutil.copytree(base.home, mount_point / "home")
            home = Settings.load(mount_point / "home")
            logs = work / f"logs-{n}"
            args = (home, mount_point, logs, leave, reference, words)
            tally.run(f"{leave} KiB left", lambda args=args: _full_disk_round(*args))
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
    return tally.to_json()


def _full_disk_round(
    home: Settings, disk: Path, logs: Path, leave_kib: int, reference: list, words: list[str]
) -> str:
    """About 1 MB of new index for 16 files: more than is left."""
    rng = random.Random(leave_kib)
    logs.mkdir()
    for i in range(16):
        (logs / f"log-{i}.txt").write_text(" ".join(rng.choices(words, k=3000)))
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    subprocess.run(["fallocate", "-l", str(free - leave_kib * 1024), str(filler)], check=True)
    command = [*crashing.index_command(home, logs)]
    full = subprocess.run(command, capture_output=True, text=True, check=False)
    filler.unlink()
    if full.returncode == 0:
        return "fitted: no error"
    assert full.returncode == 3, full.stderr[-2000:]
    assert "No space left" in full.stderr and "Traceback" not in full.stderr
    where = re.search(r"No space left for the (database|vector index file)", full.stderr)
    tops = _dense_tops(Searcher(home))
    assert [t[0] for t in tops] == [r[0] for r in reference], "the earlier documents lost out"
    assert not list(home.index_dir.glob(".*.tmp")), "temporary index file left"
    crashing.run_to_completion(command)
    crashing.assert_recovered(home, None)
    crashing.run_to_completion(crashing.searchapp(home, "check"))
    return f"failed cleanly writing the {where.group(1) if where else '?'}"


def concurrency(work: Path, readers: int, seconds: float) -> dict[str, object]:
    folder = work / "concurrency" / "docs"
    shutil.copytree(DATA / "bees", folder / "bees")
    home = Settings.load(work / "concurrency" / "home")
    crashing.run_to_completion(crashing.index_command(home, folder))
    crashing.add_second_version(home)
    command = [sys.executable, "-c", READER, str(home.home), str(seconds)]
    # Answers go to files: a pipe nobody reads until the end would fill and stall the readers.
    outputs = [work / "concurrency" / f"reader-{n}.jsonl" for n in range(readers)]
    processes = [subprocess.Popen(command, stdout=out.open("w"), cwd=REPO) for out in outputs]
    started = time.monotonic()
    writes = 0
    rng = random.Random(3)
    while time.monotonic() - started < seconds * 0.6:  # indexing and promotions, back to back
        for topic in ("coffee", "astronomy", "firstaid"):
            target = folder / topic
            if target.exists():
                shutil.rmtree(target)
            else:
                shutil.copytree(DATA / topic, target)
        crashing.edit_folder(folder, rng, writes)
        crashing.run_to_completion(crashing.index_command(home, folder))
        crashing.run_to_completion(crashing.promote_command(home))
        writes += 1
    samples, first = [], []
    for process, output in zip(processes, outputs, strict=True):
        process.wait(timeout=600)
        answers = [json.loads(line) for line in output.read_text().splitlines()]
        first.append(answers[0]["ms"])  # opening the home and loading the model
        samples.extend(answers[1:])
    latencies = sorted(s["ms"] for s in samples)
    errors = [s["error"] for s in samples if s["error"]]
    lost = sum(not any(p.endswith("varroa-mites.md") for p in s["paths"]) for s in samples)
    return {
        "readers": readers,
        "seconds": seconds,
        "searches": len(samples),
        "index_runs_and_promotions": writes,
        "generations_seen": len({s["generation"] for s in samples}),
        "errors": len(errors),
        "error_examples": errors[:5],
        "answers_missing_the_varroa_document": lost,
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "max_ms": round(latencies[-1], 1),
        "first_search_ms": [round(ms, 1) for ms in first],
    }


def write_table(results: dict[str, object], commands: dict[str, str]) -> None:
    rows = ["| fault | runs | failed | outcome |", "|---|---:|---:|---|"]
    for kind, tally in results.get("kills", {}).items():
        rows.append(f"| kill -9: {kind} | {tally['rounds']} | {tally['failed']} | "
                    f"{_notes(tally)} |")  # fmt: skip
    for damage, tally in results.get("corruption", {}).items():
        rows.append(f"| index file: {damage} | {tally['rounds']} | {tally['failed']} | "
                    f"{_notes(tally)} |")  # fmt: skip
    if "disk-full" in results:
        tally = results["disk-full"]
        rows.append(f"| disk full (24 MiB tmpfs) | {tally['rounds']} | {tally['failed']} | "
                    f"{_notes(tally)} |")  # fmt: skip
    if "concurrency" in results:
        c = results["concurrency"]
        rows.append(
            f"| {c['readers']} readers during {c['index_runs_and_promotions']} index runs + "
            f"promotions | {c['searches']} searches | {c['errors']} | "
            f"{c['generations_seen']} generations seen without restart, "
            f"{c['answers_missing_the_varroa_document']} inconsistent answers; "
            f"p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms, max {c['max_ms']} ms (a switch loads "
            "the new model) |"
        )
    made = sorted(set(commands.values()))
    table = "\n".join(["Made by " + "; ".join(f"`{c}`" for c in made) + ".", "", *rows])
    page = DOCS / "RELIABILITY.md"
    text = page.read_text()
    begin, end = "<!-- stress:begin -->", "<!-- stress:end -->"
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    page.write_text(f"{head}{begin}\n{table}\n{end}{tail}")


def _notes(tally: dict) -> str:
    return ", ".join(f"{count} {note}" for note, count in tally["notes"].items()) or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=105, help="kill rounds (all kinds in turn)")
    parser.add_argument("--corruptions", type=int, default=20)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--reader-seconds", type=float, default=240)
    parser.add_argument("--skip", action="append", default=[], choices=SECTIONS)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--disk-left-kib", type=int, nargs="+",
                        default=[16, 128, 512, 1024, 2048],
                        help="free space left on the tmpfs in each full-disk round")  # fmt: skip
    args = parser.parse_args()
    command = "python bench/reliability.py " + " ".join(sys.argv[1:])
    results_path = DOCS / "reliability.json"  # sections not run this time keep their figures
    results: dict[str, object] = (
        json.loads(results_path.read_text()) if results_path.exists() else {}
    )
    commands = results.pop("commands", {})
    with tempfile.TemporaryDirectory(prefix="searchapp-stress-") as tmp:
        work = Path(tmp)
        if "kills" not in args.skip:
            results["kills"] = kills(work, args.kills, args.seed)
        if "corruption" not in args.skip:
            results["corruption"] = corruption(work, args.corruptions)
        if "disk-full" not in args.skip:
            results["disk-full"] = disk_full(work, args.disk_left_kib)
        if "concurrency" not in args.skip:
            results["concurrency"] = concurrency(work, args.readers, args.reader_seconds)
    for section in SECTIONS:
        if section not in args.skip:
            commands[section] = f"{command.strip()} ({time.strftime('%Y-%m-%d')})"
    write_table(results, commands)
    results["commands"] = commands
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    failed = sum(t["failed"] for group in ("kills", "corruption") for t in
                 results.get(group, {}).values())  # fmt: skip
    failed += results.get("disk-full", {}).get("failed", 0)
    concurrent = results.get("concurrency", {})
    failed += concurrent.get("errors", 0) + concurrent.get("answers_missing_the_varroa_document", 0)
    print(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
