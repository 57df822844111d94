"""Progress reporting for long operations, beside the terminal's progress bars (for the UI)."""

from __future__ import annotations

from collections.abc import Callable

# on_progress(stage, done, total): stage is a short label such as "mine negatives".
StageProgress = Callable[[str, int, int], None]


def report(on_progress: StageProgress | None, stage: str, done: int, total: int) -> None:
    if on_progress is not None:
        on_progress(stage, done, total)
