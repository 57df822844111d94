"""The keyword side weighting titles against bodies: BM25 column weights of the FTS5 table.

Each chunk's FTS5 row holds its document's title and the chunk's text; FTS5's ``bm25(title, text)``
weights them (1, 1 today). This sets the table's rank function to each weight of the title on a
copy of a SciFact home and scores keyword and hybrid nDCG@10 on the train split (where the choice
is made) and the test split (reported, never chosen on). Prints one JSON line per weight.

    python bench/keyword_weights.py --base /tmp/scifact-untuned [--beir ../shared/datasets/scifact]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
from pathlib import Path

from searchapp.evaluation import evaluate_beir
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database

REPO = Path(__file__).resolve().parents[1]
TITLE_WEIGHTS = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="home with SciFact indexed")
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--work", type=Path, default=REPO / "bench/out/keyword-weights")
    args = parser.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(args.base, args.work)
    settings = Settings.load(args.work, create=False)
    for weight in TITLE_WEIGHTS:
        with sqlite3.connect(settings.home / "searchapp.db") as conn:  # FTS5's rank function
            conn.execute(
                "INSERT INTO chunks_fts(chunks_fts, rank) VALUES('rank', ?)",
                (f"bm25({weight}, 1.0)",),
            )
        searcher = Searcher(settings, Database(settings.database_url))
        scores = {"title_weight": weight}
        for split in ("train", "test"):
            for mode, metrics in evaluate_beir(
                searcher, args.beir, split, ["keyword", "hybrid"]
            ).items():
                scores[f"{split}_{mode}"] = round(metrics.ndcg_at_10, 4)
        print(json.dumps(scores), flush=True)


if __name__ == "__main__":
    main()
