"""Walking a folder for files to index, safely.

Symlinks are followed only while they stay inside the folder and never round a loop; FIFOs,
sockets and devices are never opened; hidden files, ignore patterns and excluded folders (the
searchapp home) are left out, each reported with the rule that left it out.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Skipped:
    """A path the walk did not yield, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Ignored(Skipped):
    """A path left out by a rule (a pattern, a hidden name, an excluded folder); a folder stands
    for everything under it, which is never listed."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _ignore_rule(name: str, patterns: Iterable[str]) -> str | None:
    """Why a name is left out (the rule), or None."""
    if name.startswith("."):
        return "hidden name"
    pattern = next((p for p in patterns if fnmatch.fnmatch(name, p)), None)
    return f"ignore pattern {pattern!r}" if pattern is not None else None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


IGNORE_FILE = ".searchappignore"


def ignore_file_patterns(root: Path) -> tuple[str, ...]:
    """Glob patterns from ``root/.searchappignore``: one per line, ``#`` starts a comment."""
    try:
        lines = (root / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return ()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def walk_files(
    root: Path, ignore: Iterable[str] = (), exclude: Iterable[Path] = ()
) -> Iterator[Path | Skipped]:
    """Yield the regular files under ``root`` (sorted), and a ``Skipped`` for each refused path.

    Paths are yielded as found under ``root`` (symlinks are not resolved in the yielded path).
    Names matching ``ignore`` or a pattern in the folder's ``.searchappignore``, hidden names
    and the folders in ``exclude`` give an ``Ignored``.
    """
    patterns = (*ignore, *ignore_file_patterns(root))
    excluded = {os.path.realpath(path): path for path in exclude}
    real_root = os.path.realpath(root)
    root_stat = os.stat(root)
    if stat.S_ISREG(root_stat.st_mode):
        yield root
        return
    visited = {(root_stat.st_dev, root_stat.st_ino)}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            yield Skipped(folder, f"folder cannot be read ({error.strerror})")
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            if rule := _ignore_rule(entry.name, patterns):
                if entry.name != IGNORE_FILE:  # the rules themselves are no file to report
                    yield Ignored(path, f"ignored ({rule})")
                continue
            if excluded and os.path.realpath(entry.path) in excluded:
                yield Ignored(path, "ignored (searchapp's own data: the home)")
                continue
            try:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not _inside(target, real_root):
                        yield Skipped(path, "symlink pointing outside the folder")
                        continue
                info = os.stat(entry.path)  # follows a symlink inside the tree
            except OSError as error:
                reason = (
                    "symlink loop" if error.errno == errno.ELOOP else error.strerror or str(error)
                )
                yield Skipped(path, reason)
                continue
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in visited:
                    yield Skipped(path, "symlink loop (folder already visited)")
                    continue
                visited.add(key)
                subfolders.append(path)
            elif stat.S_ISREG(info.st_mode):
                yield path
            else:
                yield Skipped(path, _kind(info.st_mode))
        stack.extend(reversed(subfolders))
