"""Errors a person acts on, importable without the heavy modules (the command line needs them)."""

from __future__ import annotations

import errno


class StorageFullError(OSError):
    """The disk (or quota) holding the home is full; what was committed before is intact."""

    def __init__(self, where: str) -> None:
        super().__init__(
            errno.ENOSPC,
            f"No space left for {where}. Nothing stored before was lost and search keeps "
            "serving the last saved index. Free some disk space, then run the same command "
            "again: it goes on from where it stopped.",
        )

    def __str__(self) -> str:
        return self.strerror or super().__str__()
