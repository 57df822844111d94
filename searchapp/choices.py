"""Every named choice a user makes (search mode, fusion, pooling, loss), stated once with its
default and help; the command line, the UI and the library all read them from here.

Light on purpose: it imports neither torch nor faiss, so ``searchapp --help`` stays instant.
Numeric knobs live beside the code they shape, as fields of the settings and options dataclasses
(``Settings``, ``TrainingOptions``), with their help in the field's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

from searchapp.errors import InvalidOptionError


@dataclass(frozen=True)
class Choice:
    """A closed set of values with a default, such as the search modes.

    Example::

        SEARCH_MODE.check("fuzzy")  # raises InvalidOptionError naming the known modes
    """

    what: str
    values: tuple[str, ...]
    default: str
    help: str

    def __post_init__(self) -> None:
        assert self.default in self.values, (self.what, self.default)

    def check(self, value: str) -> str:
        """``value`` itself, or an ``InvalidOptionError`` that lists the known values."""
        if value not in self.values:
            raise InvalidOptionError(
                f"Unknown {self.what} {value!r}: choose one of {', '.join(self.values)}."
            )
        return value


SEARCH_MODE = Choice(
    "search mode",
    ("dense", "keyword", "hybrid"),
    "hybrid",
    "dense: by meaning (FAISS over the embeddings); keyword: BM25; hybrid: both, fused",
)
# Both fusions were compared on SciFact's train split (docs/benchmarks.md): a blend of min-max
# normalised scores beat reciprocal rank fusion by 0.015 nDCG@10, so it is the default.
FUSION = Choice(
    "fusion",
    ("blend", "rrf"),
    "blend",
    "how hybrid fuses dense and keyword: a blend of normalised scores, or reciprocal rank fusion",
)
POOLING = Choice(
    "pooling mode",
    ("mean", "cls", "max"),
    "mean",
    "how token embeddings become one vector: their mean, the [CLS] token's, or their maximum",
)
LOSS = Choice(
    "loss",
    ("mnrl", "contrastive", "triplet", "cosine"),
    "mnrl",
    "mnrl: multiple-negatives ranking (in-batch and mined negatives); contrastive; "
    "triplet (cosine distance, margin 0.3); cosine: cosine-similarity regression",
)

BACKEND = Choice(
    "encoder backend",
    ("auto", "torch", "torch-bf16", "onnx", "onnx-int8", "openvino"),
    "auto",
    "what runs the model for a new index generation: auto picks the fastest that keeps quality "
    "here (docs/benchmarks.md); torch (fp32), torch-bf16 (CPUs with native bf16), onnx (ONNX "
    "Runtime fp32), onnx-int8 (per-channel int8 weights), openvino (OpenVINO Runtime: bf16 "
    "where the CPU has it natively, else fp32)",
)

QUERY_BACKEND = Choice(
    "query backend",
    ("onnx-int8", "onnx", "generation"),
    "onnx-int8",
    "what embeds queries: onnx-int8 (the served model's ONNX export with int8 matrix weights: "
    "twice as fast, SciFact nDCG@10 within 0.005, docs/benchmarks.md), onnx (its fp32 export: "
    "the same vectors as torch), generation (the backend that embedded the documents)",
)

KEYWORD_ENGINE = Choice(
    "keyword engine",
    ("auto", "fts5"),
    "auto",
    "auto: the fast keyword index (Tantivy) of a SQLite home whenever it is up to date, else "
    "FTS5; fts5: FTS5 only (as before the fast index; PostgreSQL homes use their own)",
)

MINE_FROM = Choice(
    "ranking to mine from",
    ("dense", "hybrid"),
    "dense",
    "the ranking hard negatives are mined from",
)
GATE = Choice(
    "gate",
    ("by-document", "two-part"),
    "two-part",
    "two-part: better with confidence on held-out queries about documents it trains on, and not "
    "worse with confidence on held-out queries whose documents no training query cites (or on "
    "--eval-beir's); by-document: better with confidence on those",
)

DEFAULT_RESULTS = 10  # documents a search returns unless told otherwise
MAX_RESULTS = 1000  # the most a search returns (the API's k, the UI's page, the CLI's -k)
# A judgement at least this relevant is a positive (a 👍 is 1, a 👎 0; graded scores between).
RELEVANT_SCORE = 0.5
