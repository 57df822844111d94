"""What the learning curve measured (``bench/learning_curve.py``; docs/benchmarks.md), so that a
training too small to decide on can say what training on about as many judged queries has given.

``learning_curve.json`` beside this file is the benchmark's summary of its default-options runs:
for each number of judged SciFact train queries, the mean change of the test split's nDCG@10 that
the trained candidate brought, and in how many runs the gate served it. The benchmark rewrites it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

CURVE = Path(__file__).with_name("learning_curve.json")
TAG = "default"  # the benchmark's runs with the default options


@dataclass(frozen=True)
class Point:
    judged: int  # judged train queries trained on
    hybrid_gain: float  # the candidate's mean test nDCG@10 change, hybrid search
    dense_gain: float
    served: int  # runs the gate served
    runs: int


@functools.cache
def measured() -> tuple[Point, ...]:
    """The curve's points by number of judged queries; none where the summary is missing."""
    if not CURVE.is_file():
        return ()
    return tuple(Point(**point) for point in json.loads(CURVE.read_text())["points"])


def nearest(judged: int) -> tuple[Point, ...]:
    """The measured points nearest ``judged``: the one at or below it and the one above."""
    points = measured()
    return (*[p for p in points if p.judged <= judged][-1:],
            *[p for p in points if p.judged > judged][:1])  # fmt: skip


def curve_said(judged: int) -> str:
    """What the curve shows near ``judged`` judged queries, in words ("on the SciFact benchmark,
    30 gave +0.003 hybrid nDCG@10 (served in 0 of 1 runs) and 100 gave +0.008 (…)"); empty
    where nothing was measured."""
    said = [
        f"{p.judged} gave {p.hybrid_gain:+.3f}{' hybrid nDCG@10' if not i else ''} "
        f"(served in {p.served} of {p.runs} run{'s' if p.runs > 1 else ''})"
        for i, p in enumerate(nearest(judged))
    ]
    return f"on the SciFact benchmark, {' and '.join(said)}" if said else ""


def summarise(results: dict[str, dict], tag: str = TAG) -> dict[str, object]:
    """The summary of the benchmark's results (docs/learning_curve.json) that ``CURVE`` holds:
    per number of judged queries, the means over the ``tag`` runs' seeds."""
    untuned = results["untuned"]
    runs = [row for key, row in results.items() if key != "untuned" and row["tag"] == tag]
    points = []
    for size in sorted({row["size"] for row in runs}):
        at = [row for row in runs if row["size"] == size]
        gain = {mode: sum(row["candidate"][mode] - untuned[mode] for row in at) / len(at)
                for mode in ("hybrid", "dense")}  # fmt: skip
        points.append({
            "judged": size, "hybrid_gain": round(gain["hybrid"], 4),
            "dense_gain": round(gain["dense"], 4),
            "served": sum(bool(row["passed_gate"]) for row in at), "runs": len(at),
        })  # fmt: skip
    return {"benchmark": "SciFact test split, all-MiniLM-L6-v2, default options", "tag": tag,
            "points": points}  # fmt: skip
