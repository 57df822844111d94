"""Issue 12's refusals on SciFact: training that should not be served is not, and says why.

Two runs of the product's own command, each on a fresh copy of a home holding the SciFact corpus
indexed with the untuned model (``--base``), under the by-document gate:

  triplet:   ``searchapp train --beir SCIFACT --split train --loss triplet --gate by-document``
  shuffled:  ``searchapp train PAIRS --gate by-document``, PAIRS being SciFact's train pairs with
             their positives shuffled among the training queries (seeded), so they teach nothing.

And both again with ``--gate two-part``, which also holds out queries about documents the
training cites and wants those found better with confidence, the rest not worse with confidence.
These four with two epochs, the default then; and both once more with today's defaults (the
two-part gate, five epochs).

Each records the command's exit code and its JSON report (promoted, the reason, the gate's
held-out queries, wins and losses, interval) in docs/gate_refusals.json; a run already recorded
there is skipped. About 20 minutes a run on two CPU cores.

    python bench/gate_refusals.py --base /tmp/scifact-untuned [--beir ../shared/datasets/scifact]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "gate_refusals.json"


def shuffled_pairs(beir: Path, target: Path, seed: int = 0) -> int:
    """SciFact's train (query, document) pairs with the documents shuffled among the queries."""
    queries = {}
    with (beir / "queries.jsonl").open() as lines:
        for line in lines:
            record = json.loads(line)
            queries[record["_id"]] = record["text"]
    with (beir / "qrels" / "train.tsv").open() as rows:
        pairs = [(row["query-id"], row["corpus-id"]) for row in csv.DictReader(rows, delimiter="\t")
                 if float(row["score"]) > 0]  # fmt: skip
    documents = [document for _, document in pairs]
    random.Random(seed).shuffle(documents)
    with target.open("w") as out:
        for (query, _), document in zip(pairs, documents, strict=True):
            out.write(json.dumps({"query": queries[query], "positive": document}) + "\n")
    return len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="home with SciFact indexed")
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--work", type=Path, default=REPO / "bench/out/gate-refusals")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    pairs = args.work / "shuffled-pairs.jsonl"
    count = shuffled_pairs(args.beir, pairs)
    triplet = ["train", "--beir", str(args.beir), "--split", "train", "--loss", "triplet"]
    shuffled = ["train", str(pairs)]
    two = ["--epochs", "2"]  # the default when the first four were measured
    runs = {
        "triplet": [*triplet, *two, "--gate", "by-document"],
        "shuffled": [*shuffled, *two, "--gate", "by-document"],
        "triplet-two-part": [*triplet, *two, "--gate", "two-part"],
        "shuffled-two-part": [*shuffled, *two, "--gate", "two-part"],
        # Today's defaults: the two-part gate, five epochs.
        "triplet-defaults": triplet,
        "shuffled-defaults": shuffled,
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name, command in runs.items():
        if name in results:
            continue
        home = args.work / name
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(args.base, home)
        argv = [sys.executable, "-m", "searchapp.cli", "--home", str(home), *command, "--json"]
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        report = json.loads(done.stdout) if done.stdout.strip() else {}
        results[name] = {
            "command": "searchapp "
            + " ".join(command).replace(str(args.work) + "/", "")
            + " --json",
            "exit_code": done.returncode,
            "promoted": report.get("promoted"),
            "reason": report.get("reason"),
            "gate": report.get("gate"),
            "held_out": report.get("held_out"),
            "seen": report.get("seen"),
            "held_out_seen": report.get("held_out_seen"),
            "before": report.get("before"),
            "after": report.get("after"),
            "pairs_used": report.get("pairs_used"),
            "seconds": round(time.perf_counter() - started),
        }
        if name == "shuffled":
            results[name]["pairs_shuffled"] = count
        if not report:
            results[name]["stderr"] = done.stderr[-2000:]
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps({name: results[name]}, indent=2), flush=True)


if __name__ == "__main__":
    main()
