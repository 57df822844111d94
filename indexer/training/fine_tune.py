"""Fine-tuning: sentence-transformers' trainer on the training rows, saving a complete model folder.

The folder is a sentence-transformers model that describes itself (``modules.json``, the
transformer's config and weights, the pooling configuration), so ``Encoder`` loads it as one and
it cannot disagree with its model version's record.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
from pathlib import Path

from indexer.training.losses import make_loss
from indexer.training.options import TrainingOptions
from searchapp.encoder import Encoder, EncoderSpec
from searchapp.faults import crash_point
from searchapp.progress import NO_PROGRESS, Progress


def column_prompts(spec: EncoderSpec, rows: dict[str, list]) -> dict[str, str]:
    """The prompt of each text column: the query's before the first (anchor, sentence1), the
    document's before the others; none for a model without prompts."""
    if not (spec.query_prompt or spec.document_prompt):
        return {}
    texts = [name for name in rows if name not in ("label", "score")]
    return {name: spec.query_prompt if i == 0 else spec.document_prompt
            for i, name in enumerate(texts)}  # fmt: skip


def fine_tune(
    spec: EncoderSpec,
    rows: dict[str, list],
    options: TrainingOptions,
    output_dir: Path,
    *,
    progress: Progress = NO_PROGRESS,
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
            progress.report("train", state.global_step, state.max_steps, unit="step")
            crash_point("train-step")

    model = Encoder(spec).model  # not the shared encoder: searches keep using the served weights
    per_epoch = math.ceil(len(next(iter(rows.values()))) / options.batch_size)
    epochs = max(options.epochs, math.ceil(options.min_steps / per_epoch))  # --min-steps
    steps = epochs * per_epoch
    # A warm-up shorter than one step is none: the trainer would round it up to a whole first
    # step at learning rate 0, and a one-step training (a few UI pairs) would learn nothing.
    warmup = options.warmup_ratio if steps * options.warmup_ratio >= 1 else 0.0
    work = output_dir.with_name(output_dir.name + ".trainer")  # also matched by "*.partial*"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=epochs,
        per_device_train_batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        warmup_steps=warmup,  # a float below 1 is a fraction of all steps
        batch_sampler=(
            BatchSamplers.NO_DUPLICATES if options.loss == "mnrl" else BatchSamplers.BATCH_SAMPLER
        ),
        use_cpu=True,
        save_strategy="no",
        logging_steps=5,
        report_to="none",
        seed=options.seed,
        disable_tqdm=True,  # the steps go to ``progress``, like every other stage
        prompts=column_prompts(spec, rows) or None,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(rows),
        loss=make_loss(options.loss, model, toward_served=options.toward_served),
        callbacks=[RecordLoss()],
    )
    # The trainer prints its logs to stdout; keep stdout for the command's own output (--json).
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train()
    model.save(str(output_dir))
    shutil.rmtree(work, ignore_errors=True)
    return history
