"""Progress of long work, one protocol for every face.

A long operation (indexing, mining, training, re-embedding, evaluation) takes a ``Progress`` and
reports to it: which stage, how many items done of how many, and what it is working on. The
terminal passes a ``TerminalProgress`` (a tqdm bar per stage, on stderr); a page passes a
``CallbackProgress`` that moves its own bar; ``NO_PROGRESS`` reports nothing, and is the default
everywhere.

Example::

    with TerminalProgress() as progress:
        index_folders(settings, ["~/notes"], progress=progress)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Update:
    """``done`` of ``total`` (None: not known) items of ``stage``; ``detail`` names the item."""

    stage: str
    done: int
    total: int | None
    unit: str = "item"
    detail: str = ""

    @property
    def fraction(self) -> float:
        """Between 0 and 1; 0 while the total is not known."""
        return min(self.done / self.total, 1.0) if self.total else 0.0


class Progress:
    """Receives the progress of long work; this base class reports nothing."""

    def update(self, update: Update) -> None:
        """One step of progress."""

    def report(
        self, stage: str, done: int, total: int | None, *, unit: str = "item", detail: str = ""
    ) -> None:
        self.update(Update(stage, done, total, unit, detail))

    def track(
        self,
        items: Iterable[T],
        stage: str,
        *,
        total: int | None = None,
        unit: str = "item",
        detail: Callable[[T], str] | None = None,
    ) -> Iterator[T]:
        """Yield ``items``, reporting before each one and once at the end."""
        done = 0
        for item in items:
            self.report(stage, done, total, unit=unit, detail=detail(item) if detail else "")
            yield item
            done += 1
        self.report(stage, done, total if total is not None else done, unit=unit)

    def close(self) -> None:
        """Finish the display (the terminal's last bar)."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


NO_PROGRESS = Progress()


class CallbackProgress(Progress):
    """Hands every update to ``callback``: a page's progress bar, a job's row."""

    def __init__(self, callback: Callable[[Update], None]) -> None:
        self.callback = callback

    def update(self, update: Update) -> None:
        self.callback(update)


class TerminalProgress(Progress):
    """A tqdm bar on stderr for each stage, in turn."""

    def __init__(self) -> None:
        self._bar = None
        self._stage: str | None = None

    def update(self, update: Update) -> None:
        from tqdm import tqdm

        if update.stage != self._stage or self._bar is None:
            self.close()
            self._stage = update.stage
            self._bar = tqdm(total=update.total, desc=update.stage, unit=update.unit)
        bar = self._bar
        if update.total is not None and bar.total != update.total:
            bar.total = update.total
        bar.update(update.done - bar.n)
        if update.detail:
            bar.set_postfix_str(_shorten(update.detail), refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._stage = None, None


def _shorten(text: str, width: int = 56) -> str:
    """``text`` cut in the middle to ``width`` characters: its start and its end both say
    something ("31 chunks/s · …/coffee/pour-over.md")."""
    if len(text) <= width:
        return text
    head = width // 3
    return text[:head] + "…" + text[-(width - head - 1) :]
