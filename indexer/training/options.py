"""Where training pairs come from and how to train, with every default stated once.

Light on purpose (no torch): the command line builds its ``train`` options from these fields'
defaults and help.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from searchapp.choices import GATE, LOSS, MINE_FROM
from searchapp.errors import InvalidOptionError


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

    loss: str = LOSS.default
    pooling: str | None = None
    layer: int | None = None
    epochs: int = field(default=5, metadata={"help": "passes over the training rows"})
    batch_size: int = field(
        default=32, metadata={"help": "rows per batch (MNRL: more rows, more in-batch negatives)"}
    )
    learning_rate: float = field(default=3e-5, metadata={"help": "AdamW's learning rate"})
    min_steps: int = field(
        default=0,
        metadata={
            "help": "train at least this many steps, with more passes over few pairs than "
            "--epochs (0: --epochs alone)",
            "metavar": "N",
        },
    )
    toward_served: float = field(
        default=0.0,
        metadata={
            "help": "hold the weights near the served model's: this times their squared "
            "distance is added to the loss (L2-SP; 0: off)",
            "metavar": "W",
        },
    )
    warmup_ratio: float = 0.1
    negatives_per_query: int = field(
        default=1,
        metadata={"flag": "--negatives", "help": "hard negatives mined per query", "metavar": "N"},
    )
    mine_from: str = field(
        default=MINE_FROM.default, metadata={"help": MINE_FROM.help, "choices": MINE_FROM.values}
    )
    false_negative: float = field(
        default=0.0,
        metadata={
            "help": "leave out mined passages the model finds at least this share as close to "
            "the query as its positive (likely unjudged positives; 0: off)"
        },
    )
    titles: int = field(
        default=0,
        metadata={
            "help": "pseudo-queries from the corpus: up to N documents' titles, each asked of "
            "its text, trained on beside the judged queries (0: none)",
            "metavar": "N",
        },
    )
    held_out: float = field(
        default=0.1, metadata={"help": "fraction of queries held out for the gate"}
    )
    replay: float = field(
        default=1.0,
        metadata={
            "help": "earlier training queries of the served version's line mixed in, as a "
            "multiple of the new ones (0: none)"
        },
    )
    gate: str = field(default=GATE.default, metadata={"help": GATE.help, "choices": GATE.values})
    min_gain: float = field(
        default=0.0,
        metadata={"help": "nDCG@10 gain the whole confidence interval must clear to be served"},
    )
    confidence: float = field(
        default=0.95, metadata={"help": "confidence level of the gate's paired bootstrap"}
    )
    min_queries: int = field(
        default=10, metadata={"help": "fewest held-out queries the gate decides on"}
    )
    folds: int = field(
        default=0,
        metadata={
            "help": "cross-validate the gate over K folds of the judged queries, each held out "
            "once, and serve a candidate trained on all of them (0: hold --held-out out once)",
            "metavar": "K",
        },
    )
    eval_beir: Path | None = None
    eval_split: str = field(
        default="dev", metadata={"help": "the split of --eval-beir to gate on", "metavar": "S"}
    )
    force: bool = False
    seed: int = 13

    def __post_init__(self) -> None:
        LOSS.check(self.loss)
        if self.epochs < 1 or self.batch_size < 2:
            raise InvalidOptionError(
                "Training needs at least 1 epoch and a batch size of at least 2."
            )
        if not 0.0 <= self.held_out < 0.9:
            raise InvalidOptionError(f"held_out must be between 0 and 0.9, got {self.held_out}.")
        if self.negatives_per_query < 1:
            raise InvalidOptionError(
                f"negatives must be 1 or more, got {self.negatives_per_query}."
            )
        if not 0.0 <= self.false_negative < 1.0:
            raise InvalidOptionError(
                f"false_negative must be 0 (off) or a share below 1, got {self.false_negative}."
            )
        if self.min_steps < 0 or self.toward_served < 0:
            raise InvalidOptionError(
                f"min_steps and toward_served must be 0 (off) or more, got {self.min_steps} and "
                f"{self.toward_served}."
            )
        if self.titles < 0:
            raise InvalidOptionError(f"titles must be 0 (none) or more, got {self.titles}.")
        if self.folds and not 2 <= self.folds <= 20:
            raise InvalidOptionError(f"folds must be 0 (off) or 2 to 20, got {self.folds}.")
        if self.folds and self.eval_beir is not None:
            raise InvalidOptionError(
                "--folds cross-validates on the judged queries, --eval-beir gates on a set of "
                "its own: choose one."
            )
        MINE_FROM.check(self.mine_from)
        GATE.check(self.gate)
        if self.replay < 0:
            raise InvalidOptionError(f"replay must be 0 or more, got {self.replay}.")
        if not 0.5 <= self.confidence < 1.0:
            raise InvalidOptionError(
                f"confidence must be at least 0.5 and below 1, got {self.confidence}."
            )

    def to_json(self) -> dict[str, object]:
        return {
            key: str(value) if isinstance(value, Path) else value
            for key, value in self.__dict__.items()
        }


@dataclass(frozen=True)
class TrainOptions:
    """The ``train`` operation's options: where the pairs come from, and how to train."""

    sources: PairSources = PairSources()
    training: TrainingOptions = TrainingOptions()
