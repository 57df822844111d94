"""SciFact test nDCG@10 after fine-tuning with each loss (and pooling), with training time.

Each configuration starts from a copy of one home holding the SciFact corpus indexed with the
untuned model (``--base``), trains on the train split with the product's own ``retrain`` (gate on
held-out train queries, ``force`` so that every candidate is measured), then scores the test split.
Writes docs/losses.md and docs/losses.png; results accumulate in docs/losses.json, so the run
resumes where it stopped. Each configuration takes 20-30 minutes on two CPU cores.

    searchapp --home /tmp/scifact index --beir ../shared/datasets/scifact
    python bench/losses.py --base /tmp/scifact [--beir ../shared/datasets/scifact]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from indexer.training.options import PairSources, TrainingOptions
from indexer.training.retrain import retrain
from searchapp.evaluation import evaluate_beir
from searchapp.progress import TerminalProgress
from searchapp.search import Searcher
from searchapp.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [
    ("contrastive", "mean"),
    ("triplet", "mean"),
    ("cosine", "mean"),
    ("mnrl", "cls"),
    ("mnrl", "max"),
    ("mnrl", "mean"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="home with SciFact indexed")
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--work", type=Path, default=REPO / "bench/out/losses")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    results_path = REPO / "docs" / "losses.json"  # tracked, so a later session can resume
    results: dict[str, dict] = json.loads(results_path.read_text()) if results_path.exists() else {}
    if "untuned" not in results:
        metrics = evaluate_beir(Searcher(Settings.load(args.base)), args.beir, "test")
        results["untuned"] = {mode: m.to_json() for mode, m in metrics.items()}
    for loss, pooling in CONFIGS:
        key = f"{loss}/{pooling}"
        if key in results:
            continue
        home = args.work / key.replace("/", "-")
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(args.base, home)
        settings = Settings.load(home)
        started = time.perf_counter()
        report = retrain(
            settings,
            PairSources(beir=args.beir, split="train"),
            TrainingOptions(loss=loss, pooling=pooling, force=True),
            progress=TerminalProgress(),
        )
        seconds = time.perf_counter() - started
        metrics = evaluate_beir(Searcher(settings), args.beir, "test", ["dense", "hybrid"])
        results[key] = {
            "loss": loss,
            "pooling": pooling,
            "dense": metrics["dense"].to_json(),
            "hybrid": metrics["hybrid"].to_json(),
            "gate": {"before": report.before, "after": report.after},
            "train_seconds": round(seconds, 1),
            "loss_history": report.losses,
        }
        print(key, json.dumps(results[key]["dense"]), file=sys.stderr)
        results_path.write_text(json.dumps(results, indent=2))
        shutil.rmtree(home, ignore_errors=True)
        write_report(results)  # after each configuration, so a partial run still reports


def _untuned_dense(results: dict[str, dict], pooling: str) -> float:
    """The untuned model's dense nDCG@10 with this pooling (docs/pooling-layers.json)."""
    if pooling == "mean":
        return results["untuned"]["dense"]["ndcg@10"]
    table = json.loads((REPO / "docs" / "pooling-layers.json").read_text())
    return table[f"{pooling}/final"]["dense"]["ndcg@10"]


def _findings(results: dict[str, dict], keys: list[str]) -> list[str]:
    """What the table says, computed from it (so that it stays true as rows are added)."""
    if not keys:
        return []
    gain = {
        k: results[k]["dense"]["ndcg@10"] - _untuned_dense(results, results[k]["pooling"])
        for k in keys
    }
    gate = {k: results[k]["gate"]["after"]["ndcg@10"] - results[k]["gate"]["before"]["ndcg@10"]
            for k in keys}  # fmt: skip
    best = max(keys, key=gain.__getitem__)
    mean_keys = [k for k in keys if results[k]["pooling"] == "mean"] or keys
    mean_gate = [gate[k] for k in mean_keys]
    mean_test = [gain[k] for k in mean_keys]
    worse = [k for k in keys if gain[k] < 0]
    lines = [
        "Dense nDCG@10 gained over the untuned model with the same pooling: "
        + ", ".join(f"{k} {gain[k]:+.3f}" for k in keys)
        + f". Best: {best}. "
        + (f"Worse than before training: {', '.join(worse)}. " if worse else "")
        + (
            "Mean pooling stays the best choice after fine-tuning, as it is before (see "
            "pooling-layers.md). "
            if results[best]["pooling"] == "mean"
            else ""
        )
        + "The gate compares each candidate with the model in use (untuned, mean pooling) on "
        "held-out train queries; with the default minimum gain of 0.005 it would have promoted "
        + (", ".join(k for k in keys if gate[k] > 0.005) or "none")
        + " and refused "
        + (", ".join(k for k in keys if gate[k] <= 0.005) or "none")
        + f". With mean pooling the held-out queries gain {min(mean_gate):+.3f} to "
        f"{max(mean_gate):+.3f}, more than the test split does ({min(mean_test):+.3f} to "
        f"{max(mean_test):+.3f}): 538 of SciFact's 809 train queries cite a document that "
        "another train query cites, so a held-out query's answer has often been a training "
        "positive. The gate stops a useless model (the shuffled-pairs test) but is optimistic "
        "about a weak one; `--eval-beir DIR --eval-split S` gates on a separate set when one "
        "exists.",
        "",
        "Times were measured on a shared 2-core machine with other jobs running at times; they "
        "show the order of magnitude, not a ranking of the losses' speed.",
    ]
    return lines


def write_report(results: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = REPO / "docs"
    untuned = results["untuned"]
    lines = [
        "# Fine-tuning losses: SciFact test nDCG@10",
        "",
        "Each row: `searchapp train --beir ../shared/datasets/scifact --split train --loss LOSS",
        "--pooling POOLING --force` on a copy of a home holding SciFact indexed with the untuned",
        "model (2 epochs, batch 32, learning rate 3e-5, 10 % warm-up, one mined hard negative per",
        "query from ranks 4-30), then `searchapp eval` on the test split. Training runs on 2 CPU",
        "cores; the time includes mining, training and re-embedding the 9,711 chunks. Made with:",
        "",
        "```bash",
        "python bench/losses.py --base /tmp/scifact",
        "```",
        "",
        "| loss | pooling | dense nDCG@10 (untuned, same pooling) | hybrid nDCG@10 "
        "| gate: held-out train nDCG@10 | time (min) |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| (untuned) | mean | {untuned['dense']['ndcg@10']:.4f} | "
        f"{untuned['hybrid']['ndcg@10']:.4f} | - | - |",
    ]
    keys = [f"{loss}/{pooling}" for loss, pooling in CONFIGS if f"{loss}/{pooling}" in results]
    for key in keys:
        r = results[key]
        gate = r["gate"]
        lines.append(
            f"| {r['loss']} | {r['pooling']} | {r['dense']['ndcg@10']:.4f} "
            f"({_untuned_dense(results, r['pooling']):.4f}) | "
            f"{r['hybrid']['ndcg@10']:.4f} | {gate['before']['ndcg@10']:.3f} → "
            f"{gate['after']['ndcg@10']:.3f} | {r['train_seconds'] / 60:.1f} |"
        )
    lines += ["", *_findings(results, keys)]
    for key in keys:
        if "source" in results[key]:
            lines += ["", f"The {key} row comes from `{results[key]['source']}`."]
    pending = [
        f"{loss}/{pooling}" for loss, pooling in CONFIGS if f"{loss}/{pooling}" not in results
    ]
    if pending:
        lines += ["", f"Not run yet (the command above resumes): {', '.join(pending)}."]
    lines += ["", "![nDCG@10 and training loss per configuration](losses.png)", ""]
    (docs / "losses.md").write_text("\n".join(lines))

    figure, (bars, curves) = plt.subplots(1, 2, figsize=(11, 4))
    labels = ["untuned", *keys]
    values = [untuned["dense"]["ndcg@10"], *(results[k]["dense"]["ndcg@10"] for k in keys)]
    drawn = bars.bar(range(len(labels)), values, color=["grey", *["C0"] * len(keys)])
    bars.bar_label(drawn, fmt="%.3f", fontsize=7)
    reference = [untuned["dense"]["ndcg@10"],
                 *(_untuned_dense(results, results[k]["pooling"]) for k in keys)]  # fmt: skip
    bars.scatter(range(len(labels)), reference, marker="_", s=600, color="black", zorder=3,
                 label="untuned, same pooling")  # fmt: skip
    bars.legend(fontsize=7, loc="upper left")
    bars.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    bars.set_ylabel("dense nDCG@10 (SciFact test)")
    bars.set_ylim(min(values + reference) - 0.05, max(values) + 0.03)
    for key in keys:
        history = results[key]["loss_history"]
        if history:
            curves.plot([s for s, _ in history], [v for _, v in history], label=key)
    curves.set_xlabel("training step")
    curves.set_ylabel("training loss")
    curves.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(docs / "losses.png", dpi=120)


if __name__ == "__main__":
    main()
