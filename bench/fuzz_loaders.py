"""Issue 31's loader fuzzing, for a fixed budget: havoc-mutated files of every format searchapp
reads, each parsed by the product's own parse process, as an index run parses it
(``tests/fuzzing.py``). A file may be read or fail with its reason; anything else is a crash, and
its file is kept in ``--work`` to reproduce it. Prints a progress line and, at the end, the JSON
report (``cases``, ``read``, ``failed``, ``died``, ``crashed``, ``by_format``, ``reasons``), also
written to docs/fuzz_loaders.json; exits 1 if anything crashed.

    python bench/fuzz_loaders.py [--seconds 600] [--seed 0] [--work bench/out/fuzz]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzzing import fuzz, seed_files  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="the budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=REPO / "bench/out/fuzz")
    args = parser.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    seeds = seed_files(args.work / "seeds")
    started, report = time.monotonic(), None
    for report, _ in fuzz(seeds, args.work / "cases", seconds=args.seconds, seed=args.seed):
        if report.cases % 25 == 0:
            print(f"{time.monotonic() - started:6.0f} s  {report.cases} cases: {report.read} "
                  f"read, {report.failed} failed ({report.died} parser deaths), "
                  f"{len(report.crashes)} crashed", file=sys.stderr, flush=True)  # fmt: skip
    assert report is not None
    result = {
        "command": f"python bench/fuzz_loaders.py --seconds {args.seconds:g} --seed {args.seed}",
        "seconds": round(time.monotonic() - started),
        **report.to_json(),
    }
    (REPO / "docs" / "fuzz_loaders.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 1 if report.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
