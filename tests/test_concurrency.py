"""Readers keep searching while a writer indexes and a promotion switches generations."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from indexer.folders import index_folders
from indexer.generations import promote_version
from searchapp.encoder import EncoderSpec
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.versions import load_encoder, register_version
from tests.conftest import DATA

READERS = 3
READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from searchapp.search import Searcher
    from searchapp.settings import Settings

    # Search until the writer is done (its file appears), then a little longer: long enough to
    # pick up the generation it switched to.
    searcher = Searcher(Settings.load(sys.argv[1]))
    done, stop = Path(sys.argv[2]), time.time() + 300  # wall clock, as the file's time
    while time.time() < stop:
        if done.exists():
            stop = min(stop, done.stat().st_mtime + 3)
        started = time.perf_counter()
        try:
            results = searcher.search("how to get rid of varroa mites", k=5)
            error = None
        except Exception as exc:  # report every failure, "database is locked" above all
            results, error = [], f"{type(exc).__name__}: {exc}"
        print(json.dumps({
            "ms": (time.perf_counter() - started) * 1000,
            "generation": searcher.generation_id,
            "paths": [r.path for r in results],
            "error": error,
        }), flush=True)
    """
)


def test_searches_never_fail_while_indexing_and_promotion_switch_generations(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(DATA / "docs" / "bees", folder / "bees")
    home = Settings.load(tmp_path / "home")
    index_folders(home, [folder])

    done = tmp_path / "writer-done"
    command = [sys.executable, "-c", READER, str(home.home), str(done)]
    # Answers go to files: a pipe nobody reads until the end would fill and stall the readers.
    outputs = [tmp_path / f"reader-{n}.jsonl" for n in range(READERS)]
    readers = [subprocess.Popen(command, stdout=out.open("w")) for out in outputs]
    deadline = time.monotonic() + 120
    while not all(out.stat().st_size for out in outputs):  # every reader is searching
        assert time.monotonic() < deadline, "the readers did not start"
        time.sleep(0.1)
    # The writer: more documents, then a new model version (cls pooling) promoted over them.
    shutil.copytree(DATA / "docs" / "coffee", folder / "coffee")
    shutil.copytree(DATA / "docs" / "astronomy", folder / "astronomy")
    index_folders(home, [folder])
    db = Database(home.database_url, lock_path=home.write_lock_path)
    with db.write() as session:
        version = register_version(
            session, load_encoder(EncoderSpec(pooling="cls")), name="cls", status="candidate"
        )
    generation = promote_version(db, home, version.id)
    done.touch()

    samples = []
    for reader, output in zip(readers, outputs, strict=True):
        reader.wait(timeout=300)
        samples.extend(json.loads(line) for line in output.read_text().splitlines())
    errors = [s["error"] for s in samples if s["error"]]
    assert not errors, errors[:5]
    seen = {s["generation"] for s in samples}
    assert generation.id in seen and len(seen) == 2  # picked up the new one without a restart
    # Every answer is a consistent snapshot: the varroa document is found throughout.
    assert all(any(p.endswith("varroa-mites.md") for p in s["paths"]) for s in samples)
    latencies = sorted(s["ms"] for s in samples)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"{len(samples)} searches by {READERS} readers, p99 {p99:.0f} ms")
