"""What the training benchmarks share: train a fresh copy of an indexed home with the product's
own ``retrain``, and score SciFact's test split. Imported by the scripts beside it (``python
bench/NAME.py`` puts this folder on the path)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from indexer.training.options import PairSources, TrainingOptions
from indexer.training.retrain import TrainingReport, retrain
from searchapp.evaluation import evaluate_beir
from searchapp.progress import TerminalProgress
from searchapp.search import Searcher
from searchapp.settings import Settings


def retrain_copy(
    base: Path, home: Path, sources: PairSources, options: TrainingOptions
) -> tuple[Settings, TrainingReport, float]:
    """Copy the home ``base`` to ``home`` (replacing what was there) and train it: its settings,
    the training report and the seconds the training took."""
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(base, home)
    settings = Settings.load(home)
    started = time.perf_counter()
    with TerminalProgress() as progress:
        report = retrain(settings, sources, options, progress=progress)
    return settings, report, time.perf_counter() - started


def split_scores(settings: Settings, beir: Path, split: str) -> dict[str, float]:
    """The served version's nDCG@10 on a split of ``beir``, dense and hybrid."""
    scores = evaluate_beir(Searcher(settings), beir, split, ["dense", "hybrid"])
    return {mode: scores[mode].ndcg_at_10 for mode in ("dense", "hybrid")}


def test_split_scores(settings: Settings, beir: Path) -> dict[str, float]:
    """The served version's nDCG@10 on the test split, dense and hybrid."""
    return split_scores(settings, beir, "test")
