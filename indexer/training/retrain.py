"""Retraining: pairs in, negatives mined, the bi-encoder fine-tuned, evaluated, promoted if better.

The served model never changes during training. The candidate's vectors are built into a new index
generation while searches go on against the old one; the candidate and the current model are both
scored (nDCG@10) on held-out queries (or a named BEIR split), and the new generation is switched
in only when the candidate is better by ``min_gain`` (or ``force``). Otherwise the candidate is kept
as a listed, inactive version and its generation is dropped.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from indexer.generations import (
    activate,
    drop_generation,
    drop_unfinished,
    embed_missing,
    start_generation,
)
from indexer.losses import check_loss, make_loss, training_rows
from indexer.mining import mine
from indexer.pairs import (
    DocumentResolver,
    Judgement,
    PairSet,
    read_beir_pairs,
    read_feedback,
    read_pairs_file,
    split_by_query,
)
from indexer.progress import StageProgress, report
from searchapp.encoder import Encoder, EncoderSpec
from searchapp.evaluation import Metrics, evaluate_beir, score_rankings
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import ModelVersion
from searchapp.versions import register_version, require_active_generation, spec_of

HISTORY_FILE = "training.json"


@dataclass(frozen=True)
class PairSources:
    """Where the training pairs come from; with none named, the UI's feedback is used."""

    files: tuple[Path, ...] = ()
    beir: Path | None = None
    split: str = "train"
    feedback: bool = False

    @property
    def empty(self) -> bool:
        return not self.files and self.beir is None


@dataclass(frozen=True)
class TrainingOptions:
    """How to train; ``pooling`` and ``layer`` of None keep those of the served model."""

    loss: str = "mnrl"
    pooling: str | None = None
    layer: int | None = None
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    negatives_per_query: int = 1
    held_out: float = 0.1
    min_gain: float = 0.005
    eval_beir: Path | None = None
    eval_split: str = "dev"
    force: bool = False
    seed: int = 13

    def __post_init__(self) -> None:
        check_loss(self.loss)
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("Training needs at least 1 epoch and a batch size of at least 2.")
        if not 0.0 <= self.held_out < 0.9:
            raise ValueError(f"held_out must be between 0 and 0.9, got {self.held_out}.")


@dataclass
class TrainingReport:
    version: int
    loss: str
    pooling: str
    layer: int | None
    pairs_used: int
    pairs_skipped: int
    before: dict[str, float]
    after: dict[str, float]
    promoted: bool
    reason: str
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "loss": self.loss,
            "pooling": self.pooling,
            "layer": self.layer,
            "pairs_used": self.pairs_used,
            "pairs_skipped": self.pairs_skipped,
            "before": self.before,
            "after": self.after,
            "promoted": self.promoted,
            "reason": self.reason,
            "seconds": round(self.seconds, 1),
        }


def load_pairs(db: Database, sources: PairSources) -> PairSet:
    resolver = DocumentResolver(db)
    pairs = PairSet()
    for path in sources.files:
        pairs.extend(read_pairs_file(Path(path), resolver))
    if sources.beir is not None:
        pairs.extend(read_beir_pairs(Path(sources.beir), sources.split, resolver))
    if sources.feedback or sources.empty:
        pairs.extend(read_feedback(db, resolver))
    return pairs


def fine_tune(
    spec: EncoderSpec,
    rows: dict[str, list],
    options: TrainingOptions,
    output_dir: Path,
    *,
    show_progress: bool = True,
    on_progress: StageProgress | None = None,
) -> list[tuple[int, float]]:
    """Train a fresh copy of ``spec``'s model on ``rows`` and save it; returns (step, loss)."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.training_args import BatchSamplers
    from transformers import TrainerCallback

    history: list[tuple[int, float]] = []

    class RecordLoss(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if logs and "loss" in logs:
                history.append((state.global_step, float(logs["loss"])))

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            report(on_progress, "train", state.global_step, state.max_steps)

    model = Encoder(spec).model  # not the shared encoder: searches keep using the served weights
    work = output_dir.with_name(output_dir.name + ".trainer")  # also matched by "*.partial*"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=options.epochs,
        per_device_train_batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        warmup_steps=options.warmup_ratio,  # a float below 1 is a fraction of all steps
        batch_sampler=(
            BatchSamplers.NO_DUPLICATES if options.loss == "mnrl" else BatchSamplers.BATCH_SAMPLER
        ),
        use_cpu=True,
        save_strategy="no",
        logging_steps=5,
        report_to="none",
        seed=options.seed,
        disable_tqdm=not show_progress,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(rows),
        loss=make_loss(options.loss, model),
        callbacks=[RecordLoss()],
    )
    # The trainer prints its logs to stdout; keep stdout for the command's own output (--json).
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train()
    model.save(str(output_dir))
    shutil.rmtree(work, ignore_errors=True)
    return history


def evaluate_generation(
    settings: Settings,
    db: Database,
    generation_id: int,
    held_out: list[Judgement],
    options: TrainingOptions,
) -> Metrics:
    """Dense nDCG@10 etc. of one generation on the held-out queries (or the named BEIR split)."""
    searcher = Searcher(settings, db, generation_id=generation_id)
    if options.eval_beir is not None:
        return evaluate_beir(
            searcher, options.eval_beir, options.eval_split, ["dense"], show_progress=False
        )["dense"]
    qrels: dict[str, dict[str, int]] = {}
    for j in held_out:
        if j.doc_id is not None and j.score >= 0.5:
            qrels.setdefault(j.query, {})[str(j.doc_id)] = 1
    queries = sorted(qrels)
    answers = searcher.search_many(queries, k=100, mode="dense")
    rankings = {q: [str(r.doc_id) for r in a] for q, a in zip(queries, answers, strict=True)}
    return score_rankings(rankings, qrels)


def retrain(
    settings: Settings,
    sources: PairSources,
    options: TrainingOptions | None = None,
    *,
    show_progress: bool = True,
    on_progress: StageProgress | None = None,
    db: Database | None = None,
) -> TrainingReport:
    """Train a candidate on the pairs, gate it on held-out queries, and promote it if better."""
    options = options or TrainingOptions()
    db = db or Database(settings.database_url, lock_path=settings.write_lock_path)
    started = time.perf_counter()
    with db.writer_lock():
        drop_unfinished(db, settings)  # a generation a killed run left half-built
        for leftover in settings.models_dir.glob("*.partial*"):
            shutil.rmtree(leftover, ignore_errors=True)
        with db.read() as session:
            current_generation, current_version = require_active_generation(session)
        pairs = load_pairs(db, sources)
        train, held_out = split_by_query(
            pairs.judgements, 0.0 if options.eval_beir else options.held_out, options.seed
        )
        if not any(j.score >= 0.5 for j in train):
            raise ValueError(
                "No usable training pairs: give a pairs file, --beir DIR, or 👍 feedback "
                f"({len(pairs.skipped)} rows were skipped)."
            )
        if options.eval_beir is None and not held_out and not options.force:
            raise ValueError(
                "Too few queries to hold some out for the evaluation gate: add pairs, name an "
                "evaluation set (--eval-beir DIR --eval-split S), or pass --force."
            )
        searcher = Searcher(settings, db, generation_id=current_generation.id)
        mined = mine(
            searcher,
            train,
            per_query=options.negatives_per_query,
            show_progress=show_progress,
            on_progress=on_progress,
        )
        rows = training_rows(options.loss, mined)
        used = len(next(iter(rows.values())))
        if used < 2:
            raise ValueError(f"Only {used} training rows could be built: add more pairs.")

        base = spec_of(current_version)
        spec = EncoderSpec(
            path=base.path,
            pooling=options.pooling or base.pooling,
            layer=options.layer if options.layer is not None else base.layer,
            max_seq_length=base.max_seq_length,
        )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        output = settings.models_dir / f"{stamp}-{options.loss}"
        partial = output.with_name(output.name + ".partial")
        history = fine_tune(
            spec, rows, options, partial, show_progress=show_progress, on_progress=on_progress
        )
        partial.rename(output)  # a killed run leaves only a .partial folder, removed next time
        (output / HISTORY_FILE).write_text(
            json.dumps({"options": _options_json(options), "loss_history": history}, indent=2)
        )
        candidate_spec = EncoderSpec(str(output), spec.pooling, spec.layer, spec.max_seq_length)
        encoder = Encoder(candidate_spec)
        with db.write() as session:
            version = register_version(
                session,
                encoder,
                name=f"{options.loss} on {used} rows ({stamp})",
                status="candidate",
                parent_id=current_version.id,
            )
        generation = start_generation(db, version)
        embed_missing(
            db, settings, generation, encoder, show_progress=show_progress, on_progress=on_progress
        )

        before = evaluate_generation(settings, db, current_generation.id, held_out, options)
        after = evaluate_generation(settings, db, generation.id, held_out, options)
        gain = after.ndcg_at_10 - before.ndcg_at_10
        promoted = options.force or gain >= options.min_gain
        if options.force:
            reason = f"forced (nDCG@10 change {gain:+.4f})"
        elif promoted:
            reason = f"nDCG@10 improved by {gain:+.4f} (needed {options.min_gain:+.4f})"
        else:
            reason = (
                f"nDCG@10 changed by {gain:+.4f}, less than the required {options.min_gain:+.4f}:"
                " the candidate is kept but not served"
            )
        with db.write() as session:
            row = session.get(ModelVersion, version.id)
            assert row is not None
            row.metrics_json = json.dumps({"before": before.to_json(), "after": after.to_json()})
        if promoted:
            activate(db, generation.id)
        else:
            drop_generation(db, settings, generation.id)
    return TrainingReport(
        version=version.id,
        loss=options.loss,
        pooling=spec.pooling,
        layer=spec.layer,
        pairs_used=used,
        pairs_skipped=len(pairs.skipped),
        before=before.to_json(),
        after=after.to_json(),
        promoted=promoted,
        reason=reason,
        seconds=time.perf_counter() - started,
        skipped=pairs.skipped,
        losses=history,
    )


def _options_json(options: TrainingOptions) -> dict[str, object]:
    return {
        key: str(value) if isinstance(value, Path) else value
        for key, value in options.__dict__.items()
    }
