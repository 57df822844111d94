"""Indexing throughput of the whole pipeline against the bare ``SentenceTransformer.encode`` call.

Both arms embed exactly the same chunks in the same process, alternately, ``--rounds`` times:
  bare:     ``model.encode(chunks)`` on the chunk texts (chunking done beforehand, not timed);
  pipeline: ``import_beir`` into a fresh home (reading, chunking, SQL, FTS5, FAISS, saving).
The pipeline's overhead is 1 - pipeline throughput / bare throughput (best round of each).

    python bench/throughput.py [--beir ../shared/datasets/scifact] [--docs 1500] [--rounds 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import tempfile
import time
from pathlib import Path

from indexer.beir_import import import_beir
from indexer.chunking import Chunker
from searchapp.beir import read_corpus, write_corpus
from searchapp.encoder import EncoderSpec
from searchapp.settings import Settings
from searchapp.versions import load_encoder

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--docs", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="searchapp-throughput-"))
    corpus = work / "corpus"
    records = write_corpus(corpus, itertools.islice(read_corpus(args.beir), args.docs))

    settings = Settings.load(work / "warm-up")
    encoder = load_encoder(EncoderSpec())
    chunker = Chunker(encoder.tokenizer, encoder.max_content_tokens, settings.chunk_overlap_tokens)
    chunks = [
        chunk.text
        for r in records
        for chunk in chunker.split(f"{r.title} {r.text}" if r.title else r.text)
    ]
    encoder.encode(chunks[:64])  # warm-up

    bare, pipeline = [], []
    for round_ in range(args.rounds):
        started = time.perf_counter()
        encoder.model.encode(chunks, batch_size=64, normalize_embeddings=True)
        bare.append(len(chunks) / (time.perf_counter() - started))

        home = work / f"home-{round_}"
        summary = import_beir(Settings.load(home), corpus)
        assert summary.chunks == len(chunks), (summary.chunks, len(chunks))
        pipeline.append(summary.chunks / summary.seconds)
        shutil.rmtree(home)
        print(f"round {round_ + 1}: bare {bare[-1]:.1f} chunks/s, pipeline {pipeline[-1]:.1f}")

    ratio = max(pipeline) / max(bare)
    print(
        json.dumps(
            {
                "documents": len(records),
                "chunks": len(chunks),
                "bare_chunks_per_s": round(max(bare), 1),
                "pipeline_chunks_per_s": round(max(pipeline), 1),
                "ratio": round(ratio, 3),
            }
        )
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
