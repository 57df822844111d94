"""Whole command against whole script: `searchapp index --beir` (default backend) against bare
PyTorch fp32 ``SentenceTransformer.encode`` of the same text in 254-token windows.

Each arm is a fresh process, timed from start to exit, alternately, ``--rounds`` times:
  command: ``searchapp --home NEW index --beir CORPUS`` with an empty export cache, so that its
           time includes making the model's ONNX exports, for documents and for queries (the
           first run on a machine);
  command, export cached: the same command with the exports already in the cache, as every run
           after the README's set-up finds them (its sample run made them); it imports no torch;
  script:  import sentence-transformers, load the model, cut each document into 254-token windows
           (the chunker's size, no overlap), encode them (batch 64).
With ``--breakdown``, two more arms show where the command's time goes:
  command without export: the same command with ``SEARCHAPP_QUERY_BACKEND=generation``, which
           makes no export (queries then run on the generation's own backend);
  bf16 script: the bare script with the model in bfloat16: PyTorch's fastest arithmetic on a
           CPU with native bf16, with nothing around it.
Prints one JSON object: each round's seconds, the best of each arm and the command's speed-ups
(``speed_up``: empty cache; ``speed_up_export_cached``).

    python bench/index_speed.py [--beir ../shared/datasets/scifact] [--docs 1000] [--rounds 2] \
        [--breakdown]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from searchapp.beir import read_corpus, write_corpus

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
import torch
from sentence_transformers import SentenceTransformer
from searchapp.encoder import bundled_model_path
model = SentenceTransformer(str(bundled_model_path()), device="cpu")
if sys.argv[2] == "bf16":
    model.to(torch.bfloat16)
model.max_seq_length = 256
tokenizer = model.tokenizer
texts = []
for line in open(sys.argv[1]):
    record = json.loads(line)
    text = record["title"] + "\\n\\n" + record["text"]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    texts += [tokenizer.decode(ids[i : i + 254]) for i in range(0, max(len(ids), 1), 254)]
model.encode(texts, batch_size=64)
print(len(texts))
"""


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--breakdown", action="store_true", help="also: the command without export, bf16 script"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="searchapp-index-speed-"))
    corpus = work / "corpus"
    write_corpus(corpus, itertools.islice(read_corpus(args.beir), args.docs))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    arms = ["command", "command, export cached", "script"]
    if args.breakdown:
        arms += ["command without export", "bf16 script"]

    def index(home: Path) -> list[str]:
        return [sys.executable, "-m", "searchapp.cli", "--home", str(home), "index",
                "--beir", str(corpus), "--quiet"]  # fmt: skip

    warm = work / "cache-warm"  # made once, untimed, as the README's sample run makes it
    _timed(index(work / "home-warm"), {**env, "SEARCHAPP_CACHE": str(warm)})
    rounds: dict[str, list[float]] = {arm: [] for arm in arms}
    for n in range(args.rounds):
        for arm in arms:
            home, cache = work / f"home-{n}-{arms.index(arm)}", work / f"cache-{n}"
            if arm.startswith("command"):
                if arm.endswith("cached"):
                    cache = warm
                else:
                    shutil.rmtree(cache, ignore_errors=True)
                queries = "generation" if "without" in arm else "onnx-int8"
                seconds, _ = _timed(
                    index(home),
                    {**env, "SEARCHAPP_CACHE": str(cache), "SEARCHAPP_QUERY_BACKEND": queries},
                )
            else:
                precision = "bf16" if arm.startswith("bf16") else "fp32"
                seconds, windows = _timed(
                    [sys.executable, "-c", SCRIPT, str(corpus / "corpus.jsonl"), precision], env
                )
            rounds[arm].append(round(seconds, 1))
        print(f"round {n + 1}: {rounds}", file=sys.stderr)
    best = {arm: min(times) for arm, times in rounds.items()}
    print(json.dumps({
        "docs": args.docs, "windows": int(windows), "rounds": rounds, "best_seconds": best,
        "speed_up": round(best["script"] / best["command"], 2),
        "speed_up_export_cached": round(best["script"] / best["command, export cached"], 2),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
