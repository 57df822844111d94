"""Mutation fuzzing of the loaders, through the product's own parse process.

Seed files of every format searchapp reads (``format_samples``: the everyday samples, a typed PDF,
a mailbox, Markdown and plain text) are changed the way AFL's "havoc" stage changes its inputs:
flipped bits, bytes overwritten with values that break parsers (0, 0xFF, 0x7F, 0x80, a space, a
newline), deleted, duplicated and inserted blocks, truncation; one to sixteen changes stacked on
one file. Each is written under the seed's name (so the loader its suffix chooses reads it) and
parsed by ``ParseWorker``, as an index run parses a file. The contract: a file is read, or fails
with its reason (``UnreadableFileError``, ``NotADocument``); anything else escaping the worker
would stop an index run, and is a crash. A parser that dies (a signal in a library's C code, the
memory limit) is reported as a failed file, and counted apart as ``died``. ``tests/test_formats.py``
runs a short budget; ``bench/fuzz_loaders.py`` a long one.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from indexer.parse_worker import ParseWorker
from searchapp.errors import NotADocument, UnreadableFileError
from tests.format_samples import (
    SAMPLES,
    write_mbox,
    write_samples,
    write_text_pdf,
)

BREAKING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x20, 0x0A)


def seed_files(folder: Path) -> dict[str, bytes]:
    """Every format's seed file, written into ``folder``: name -> bytes."""
    write_samples(folder, SAMPLES)
    write_text_pdf(folder / "typed.pdf", "The ferry to the island leaves at seven.")
    write_mbox(folder / "inbox.mbox", [("Meeting", "The meeting moved to Friday."),
                                       ("Lunch", "Lunch is at the harbour cafe.")])  # fmt: skip
    (folder / "notes.md").write_text("# Notes\n\nThe *kiln* reaches 1200 degrees.\n")
    (folder / "plain.txt").write_text("Tomatoes ripen faster next to bananas.\n")
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one to sixteen havoc changes stacked."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 2, 4, 8, 16))):
        if not out:
            out = bytearray(rng.randbytes(16))
        at, change = rng.randrange(len(out)), rng.randrange(6)
        if change == 0:
            out[at] ^= 1 << rng.randrange(8)
        elif change == 1:
            out[at] = rng.choice(BREAKING_BYTES)
        elif change == 2:
            del out[at : at + rng.randint(1, 64)]
        elif change == 3:
            start = rng.randrange(len(out))
            out[at:at] = out[start : start + rng.randint(1, 256)]
        elif change == 4:
            out[at:at] = rng.randbytes(rng.randint(1, 32))
        else:
            del out[at:]
    return bytes(out)


@dataclass
class Report:
    """What the fuzzing found: cases by outcome and by format, and the crashes' files."""

    cases: int = 0
    read: int = 0
    failed: int = 0
    died: int = 0  # of the failed: the parser process died (a signal, the memory limit)
    crashes: list[dict[str, str]] = field(default_factory=list)
    by_format: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # the failures' first words

    def to_json(self) -> dict[str, object]:
        return {
            "cases": self.cases, "read": self.read, "failed": self.failed, "died": self.died,
            "crashed": len(self.crashes), "crashes": self.crashes,
            "by_format": dict(sorted(self.by_format.items())),
            "reasons": dict(self.reasons.most_common(15)),
        }  # fmt: skip


def fuzz(
    seeds: dict[str, bytes],
    folder: Path,
    *,
    cases: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    timeout: float = 20.0,
    memory_mb: int = 1024,
) -> Iterator[tuple[Report, str]]:
    """Parse mutated seed files until ``cases`` were tried or ``seconds`` passed; yields the
    report after each case, with the case's file name. A crash's file is kept in ``folder``."""
    rng, report = random.Random(seed), Report()
    names = sorted(seeds)
    deadline = None if seconds is None else time.monotonic() + seconds
    folder.mkdir(parents=True, exist_ok=True)
    with ParseWorker(timeout=timeout, memory_mb=memory_mb) as worker:
        while (cases is None or report.cases < cases) and (
            deadline is None or time.monotonic() < deadline
        ):
            name = names[report.cases % len(names)]  # every format in turn
            path = folder / f"case-{report.cases}-{name}"
            data = mutate(seeds[name], rng)
            path.write_bytes(data)
            report.cases += 1
            report.by_format[name] += 1
            try:
                worker.parse(path, data)
                report.read += 1
            except (UnreadableFileError, NotADocument) as error:
                report.failed += 1
                said = str(error)
                report.died += said.startswith("parser crashed") or "out of memory" in said
                report.reasons[" ".join(said.split()[:4])] += 1
            except Exception as error:  # escaped the worker: it would stop an index run
                report.crashes.append({"file": str(path), "error": f"{type(error).__name__}: "
                                       f"{error}"})  # fmt: skip
                yield report, path.name
                continue
            path.unlink()
            yield report, path.name
