"""Issue 30's learning curve: what training gives, and what the gate serves, at the number of
judged queries a real user has.

For each N of ``--sizes`` and each seed, N of SciFact's judged train queries are drawn (seeded),
a copy of the untuned home (``--base``) is trained on them with the product's own ``retrain``
(``force``, so that the candidate itself can be scored on the test split; the gate's own decision
is recorded beside it), and the test split is scored, dense and hybrid: for the candidate, and for
what the gate serves (the candidate where it passed, else the untuned model). Results accumulate
in docs/learning_curve.json, keyed by run (``--tag``, N, seed): a stopped run resumes where it
stopped, and ``--tag`` keeps a lever's curve beside the default's. The plot is
docs/learning-curve.png; the table goes to docs/benchmarks.md; the default runs' summary, which a
training too small to decide on quotes, to searchapp/learning_curve.json.

    python bench/learning_curve.py --base /tmp/scifact-untuned [--sizes 10 30 100] \\
        [--seeds 0 1 2] \\
        [--tag default] [--option epochs=3 --option gate=by-document]

Made with ``searchapp --home /tmp/scifact-untuned index --beir ../shared/datasets/scifact
--backend openvino``: a candidate's 9,711 chunks then embed with OpenVINO (fp32), about three
times as fast as with PyTorch on two cores, and every run embeds them once.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

from training_runs import retrain_copy, split_scores, test_split_scores

from indexer.training.options import PairSources, TrainingOptions
from searchapp.beir import read_qrels
from searchapp.learning_curve import CURVE, summarise
from searchapp.settings import Settings

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "learning_curve.json"
SIZES = (10, 20, 50, 100, 200, 400, 809)
# Issue 30's bars: (N, the least test hybrid nDCG@10 of what the gate serves).
TARGETS = {30: 0.7296, 100: 0.745, 809: 0.7730}
SELECTION_QUERIES = 200  # undrawn train queries each run is also scored on, to choose levers by


def sample_split(beir: Path, target: Path, size: int, seed: int) -> tuple[str, str | None]:
    """A BEIR folder at ``target`` whose split ``sample`` holds ``size`` train queries drawn with
    ``seed`` (all their judgements), and whose split ``selection`` holds up to
    ``SELECTION_QUERIES`` of the train queries not drawn (None where all were): where a lever is
    chosen, never on the test split. The corpus and queries are links to ``beir``'s."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "qrels").mkdir(exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        link = target / name
        if not link.exists():
            link.symlink_to((beir / name).resolve())
    qrels = read_qrels(beir, "train")
    queries = sorted(qrels)
    chosen = sorted(random.Random(seed).sample(queries, min(size, len(queries))))
    rest = sorted(set(queries) - set(chosen))
    selection = sorted(random.Random(seed).sample(rest, min(SELECTION_QUERIES, len(rest))))
    for split, drawn in (("sample", chosen), ("selection", selection)):
        lines = ["query-id\tcorpus-id\tscore"]
        lines += [f"{q}\t{doc}\t{grade}" for q in drawn for doc, grade in sorted(qrels[q].items())]
        (target / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return "sample", "selection" if selection else None


def parse_option(text: str) -> tuple[str, object]:
    """``name=value`` for a ``TrainingOptions`` field, the value read as JSON where it parses."""
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def plot(results: dict[str, dict], path: Path) -> None:
    """Test nDCG@10 against judged queries: the candidate's and what the gate serves, per tag,
    each seed a dot and the mean a line; how often the gate serves under each point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    untuned = results["untuned"]
    runs = [row for key, row in results.items() if key != "untuned"]
    tags = sorted({row["tag"] for row in runs})
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharex=True)
    for axis, mode in zip(axes, ("hybrid", "dense"), strict=True):
        axis.axhline(untuned[mode], color="grey", linestyle=":", label="untuned")
        colours = ("#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860")
        for number, (colour, tag) in enumerate(zip(colours, tags, strict=False)):
            rows = sorted((row for row in runs if row["tag"] == tag), key=lambda r: r["size"])
            sizes = sorted({row["size"] for row in rows})
            for what, style in (("candidate", "--"), ("served", "-")):
                means = []
                for size in sizes:
                    values = [row[what][mode] for row in rows if row["size"] == size]
                    axis.plot([size] * len(values), values, "o", color=colour, alpha=0.35,
                              markersize=4)  # fmt: skip
                    means.append(sum(values) / len(values))
                axis.plot(sizes, means, style, color=colour, label=f"{tag}: {what}")
            if mode == "hybrid":
                for size in sizes:
                    at = [row for row in rows if row["size"] == size]
                    served = sum(row["passed_gate"] for row in at)
                    axis.annotate(f"{served}/{len(at)}", (size, untuned[mode]), fontsize=7,
                                  xytext=(0, -10 - 8 * number), textcoords="offset points",
                                  ha="center", color=colour)  # fmt: skip
        if mode == "hybrid":
            for size, bar in TARGETS.items():
                axis.plot(size, bar, "r_", markersize=14)
        axis.set_xscale("log")
        axis.set_xticks(SIZES, [str(size) for size in SIZES])
        axis.minorticks_off()
        axis.set_xlabel("judged train queries (N); under the untuned line: runs the gate served")
        axis.set_ylabel(f"SciFact test nDCG@10, {mode}")
        axis.set_title(f"{mode}: the candidate (dashed) and what the gate serves (solid)")
        axis.legend(fontsize=7, loc="upper left")
    figure.suptitle("Learning curve: fine-tuning all-MiniLM-L6-v2 on N judged SciFact queries "
                    "(red: issue 30's bars)")  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="home with SciFact indexed")
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--work", type=Path, default=REPO / "bench/out/learning_curve")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--tag", default="default", help="the name of this curve's options")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a training option other than its default (repeatable)")  # fmt: skip
    parser.add_argument("--plot-only", action="store_true")
    args = parser.parse_args()

    results: dict[str, dict] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if "untuned" not in results:
        results["untuned"] = test_split_scores(Settings.load(args.base), args.beir)
    overrides = dict(map(parse_option, args.option))
    for size in [] if args.plot_only else args.sizes:
        for seed in args.seeds:
            key = f"{args.tag} N={size} seed={seed}"
            if key in results:
                continue
            work = args.work / f"{args.tag}-{size}-{seed}"
            split, selection = sample_split(args.beir, work / "pairs", size, seed)
            options = TrainingOptions(force=True, seed=13 + seed, **overrides)  # type: ignore[arg-type]
            settings, report, seconds = retrain_copy(
                args.base, work / "home", PairSources(beir=work / "pairs", split=split), options
            )
            candidate = test_split_scores(settings, args.beir)
            chosen_on = {}  # the undrawn train queries: untuned and candidate
            if selection is not None:
                chosen_on = {
                    "untuned": split_scores(Settings.load(args.base), work / "pairs", selection),
                    "candidate": split_scores(settings, work / "pairs", selection),
                }
            results[key] = {
                "tag": args.tag, "size": size, "seed": seed, "options": overrides,
                "candidate": candidate,
                "served": candidate if report.passed_gate else results["untuned"],
                "passed_gate": report.passed_gate, "reason": report.reason,
                "judged_queries": report.judged_queries,
                "judgements_needed": report.judgements_needed,
                "gate": report.gate, "seen": report.seen, "pooled": report.pooled,
                "held_out": report.held_out, "held_out_seen": report.held_out_seen,
                "selection": chosen_on, "folds_seconds": report.folds_seconds,
                "seconds": round(seconds),
            }  # fmt: skip
            RESULTS.write_text(json.dumps(results, indent=2) + "\n")
            print(json.dumps({key: results[key]}, indent=2), flush=True)
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    CURVE.write_text(json.dumps(summarise(results), indent=2) + "\n")  # what reports quote
    plot(results, REPO / "docs" / "learning-curve.png")


if __name__ == "__main__":
    main()
