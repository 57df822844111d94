"""A model switch of the SciFact home with searches running throughout, against a fresh index.

The SciFact corpus is imported into a home with the bundled model. Then ``searchapp models
switch`` moves it to another model (the bundled weights with CLS pooling and a 512-token window,
saved as a model folder) while a reader in this process runs hybrid searches throughout, at
``--rate`` searches a second (0: without pause, which takes a core of the two from the switch);
every search that fails is counted, and each answer's generation is recorded (the old one or the
new one, never another). The same model then indexes the corpus into a new home (``index --beir
--model``). The model's exports are made first, so neither run pays for them. Prints one JSON
object and writes docs/switch.json.

    python bench/switch.py [--rate 4] [--beir ../shared/datasets/scifact] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from searchapp.beir import read_queries
from searchapp.encoder import bundled_model_path
from searchapp.search import Searcher
from searchapp.settings import Settings

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "switch.json"


def cls_model(folder: Path) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(bundled_model_path()), max_seq_length=512)
    model = SentenceTransformer(modules=[transformer, Pooling(384, "cls"), Normalize()])
    model.save(str(folder))
    return folder


def searchapp(home: Path, *args: str) -> float:
    """Run a searchapp command in a process of its own; its seconds."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "searchapp.cli", "--home", str(home), *args, "--quiet"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--work", type=Path, default=Path("/tmp/searchapp-switch"))
    parser.add_argument("--rate", type=float, default=4.0, help="searches a second (0: no pause)")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    model = cls_model(args.work / "minilm-cls-512")
    warm = args.work / "warm"
    warm.mkdir()
    (warm / "note.txt").write_text("A note to make the model's exports.")
    searchapp(args.work / "home-warm", "index", str(warm), "--model", str(model))

    home = args.work / "home"
    bundled_seconds = searchapp(home, "index", "--beir", str(args.beir))
    queries = list(read_queries(args.beir).values())
    reader = Searcher(Settings.load(home))
    searches, failed, generations = 0, 0, set()
    done = threading.Event()

    def search_throughout() -> None:
        nonlocal searches, failed
        while not done.is_set():
            if args.rate:
                done.wait(1 / args.rate)
            try:
                reader.search(queries[searches % len(queries)], k=10, mode="hybrid")
                generations.add(reader.generation_id)
            except Exception:  # a failed search is what this counts
                failed += 1
            searches += 1

    thread = threading.Thread(target=search_throughout)
    thread.start()
    try:
        switch_seconds = searchapp(home, "models", "switch", str(model))
    finally:
        done.set()
        thread.join()
    reader.search(queries[0], k=10)
    served = reader.generation_id
    fresh_seconds = searchapp(args.work / "home-fresh", "index", "--beir", str(args.beir),
                              "--model", str(model))  # fmt: skip
    result = {
        "command": "python bench/switch.py", "chunks": len(reader.vector_index or ()),
        "bundled_index_seconds": round(bundled_seconds, 1),
        "switch_seconds": round(switch_seconds, 1), "fresh_index_seconds": round(fresh_seconds, 1),
        "switch_over_fresh": round(switch_seconds / fresh_seconds, 3),
        "search_rate": args.rate or "no pause", "searches_during_switch": searches,
        "failed_searches": failed,
        "generations_answering": sorted(g for g in generations if g is not None),
        "served_after": served,
    }  # fmt: skip
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
