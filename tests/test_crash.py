"""kill -9 in the middle of indexing and of a promotion: nothing lost, nothing mixed, and a rerun
finishes the job. The stress version (100+ kills) is ``bench/reliability.py``."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from searchapp.faults import POINTS
from searchapp.settings import Settings
from tests import crashing
from tests.conftest import DATA

RANDOM_KILLS = 3


@pytest.fixture
def indexed_home(tmp_path: Path) -> tuple[Settings, Path]:
    folder = tmp_path / "docs"
    shutil.copytree(DATA / "docs", folder)
    home = Settings.load(tmp_path / "home")
    crashing.run_to_completion(crashing.index_command(home, folder))
    return home, folder


def test_indexer_killed_at_random_moments_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(DATA / "docs", folder)
    home = Settings.load(tmp_path / "home")
    missing = subprocess.run(crashing.index_command(home, tmp_path / "no-such-folder"),
                             capture_output=True, check=False)  # fmt: skip
    assert missing.returncode == 2  # a missing folder is refused before anything is written
    rng = random.Random(1)
    durations: dict[str, float] = {}  # each kill lands within the last complete run's duration
    # The first kill lands in the very first run, before or after its first commit.
    rounds = [crashing.crash_round(home, folder, "random", rng, n, durations)
              for n in range(RANDOM_KILLS)]  # fmt: skip
    assert sum(r.killed for r in rounds) >= 2, "most kills should land before the run finished"
    check = subprocess.run(crashing.searchapp(home, "check"), capture_output=True, text=True,
                           check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout


@pytest.mark.parametrize("point", [p for p in POINTS if p != "train-step"])  # see test_training
def test_killed_at_each_crash_point_recovers(
    indexed_home: tuple[Settings, Path], point: str
) -> None:
    home, folder = indexed_home
    if point == "re-embed":
        crashing.add_second_version(home)
    outcome = crashing.crash_round(home, folder, point, random.Random(7), 0)
    assert outcome.killed, f"the run never reached {point}"
