"""Named crash points, for proving that a kill at the worst moment loses and mixes nothing.

The reliability tests set ``SEARCHAPP_CRASH_AT=POINT[:N]``; the process then kills itself with
SIGKILL (no clean-up, no ``finally``, like a power cut or the OOM killer) the N-th time (default:
the first) it reaches ``crash_point(POINT)``. Unset, a crash point costs one comparison.

Points: ``chunk-insert`` (chunks inserted, transaction not committed), ``index-write`` (half of
the index file written to its temporary file), ``index-renamed`` (new index file in place, SQL not
yet told), ``keyword-commit`` (chunks committed to SQL, the fast keyword index not yet caught up),
``re-embed`` (between batches of a promotion's re-embedding), ``train-step`` (after a step of
fine-tuning).
"""

from __future__ import annotations

import os
import signal

from searchapp.errors import InvalidOptionError

CRASH_ENV = "SEARCHAPP_CRASH_AT"
POINTS = (
    "chunk-insert",
    "index-write",
    "index-renamed",
    "keyword-commit",
    "re-embed",
    "train-step",
)


def _parse(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    point, _, count = spec.partition(":")
    if point not in POINTS:
        raise InvalidOptionError(
            f"{CRASH_ENV}={spec}: unknown crash point; known: {', '.join(POINTS)}"
        )
    return point, int(count or 1)


_target = _parse(os.environ.get(CRASH_ENV))
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here, now, if the environment asked for it (see the module's documentation)."""
    if _target is None or _target[0] != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
