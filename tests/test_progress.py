"""One progress protocol: the same updates move a terminal bar, a page's bar or a job's row."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.folders import index_folders
from searchapp.choices import QUERY_BACKEND
from searchapp.progress import CallbackProgress, TerminalProgress, Update
from searchapp.settings import Settings


def test_an_index_run_reports_every_file_and_its_end(docs_copy: Path, home: Settings) -> None:
    updates: list[Update] = []
    index_folders(home, [docs_copy], progress=CallbackProgress(updates.append))
    files = sorted(str(p) for p in docs_copy.rglob("*") if p.is_file())
    # The model's export for queries follows the files, the first time that model is used.
    exporting = f"export the model for queries ({QUERY_BACKEND.default})"
    assert {u.stage for u in updates} <= {"index docs", exporting}
    updates = [u for u in updates if u.stage == "index docs"]
    assert all(u.total == len(files) and u.unit == "file" for u in updates)
    assert sorted(u.detail.split(" · ")[-1] for u in updates if u.detail) == files  # each file
    assert [u.done for u in updates] == list(range(len(files) + 1))
    assert updates[-1].fraction == 1.0


def test_a_long_index_run_shows_chunks_per_second(
    docs_copy: Path, home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("indexer.pipeline.IndexWriter.BATCH_CHUNKS", 8)  # a big folder's batches
    updates: list[Update] = []
    index_folders(home, [docs_copy], progress=CallbackProgress(updates.append))
    rates = [u.detail.split(" chunks/s")[0] for u in updates if " chunks/s · " in u.detail]
    assert rates and all(float(rate) > 0 for rate in rates)


def test_the_terminal_gets_a_bar_per_stage(capsys: pytest.CaptureFixture[str]) -> None:
    with TerminalProgress() as progress:
        list(progress.track(range(3), "mine negatives", total=3, unit="batch"))
        progress.report("train", 5, 10, unit="step")
    err = capsys.readouterr().err
    assert "mine negatives: 100%" in err and "3/3" in err
    assert "train:" in err and "5/10" in err


def test_a_total_not_known_beforehand_is_the_count_at_the_end() -> None:
    updates: list[Update] = []
    list(CallbackProgress(updates.append).track(iter("abcd"), "read"))
    assert [u.total for u in updates] == [None] * 4 + [4]
    assert updates[0].fraction == 0.0 and updates[-1].fraction == 1.0
