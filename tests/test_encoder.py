"""The encoder: pooling modes, intermediate layers, normalisation and fingerprints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from searchapp.encoder import Encoder, EncoderSpec, bundled_model_path
from searchapp.versions import load_encoder

TEXTS = ["How do honey bees survive the winter?", "Espresso needs a fine, even grind."]


def _reference(pooling: str, layer: int | None) -> np.ndarray:
    """Pool hidden_states[layer] of the raw transformers model by hand."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    model = AutoModel.from_pretrained(str(bundled_model_path())).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states[layer or -1]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    if pooling == "mean":
        pooled = (hidden * mask).sum(1) / mask.sum(1)
    elif pooling == "cls":
        pooled = hidden[:, 0]
    else:
        pooled = hidden.masked_fill(mask == 0, -1e9).max(1).values
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


@pytest.mark.parametrize(
    ("pooling", "layer"), [("mean", None), ("cls", None), ("max", None), ("mean", 3), ("max", 4)]
)
def test_vectors_are_the_chosen_pooling_of_the_chosen_layer(
    pooling: str, layer: int | None
) -> None:
    vectors = load_encoder(EncoderSpec(pooling=pooling, layer=layer)).encode(TEXTS)
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, _reference(pooling, layer), atol=2e-5)


def test_fingerprint_changes_with_anything_that_changes_a_vector() -> None:
    mean = load_encoder(EncoderSpec()).fingerprint
    assert load_encoder(EncoderSpec()).fingerprint == mean  # stable
    assert load_encoder(EncoderSpec(pooling="cls")).fingerprint != mean
    assert load_encoder(EncoderSpec(layer=3)).fingerprint != mean


def test_final_layer_by_number_is_the_same_model_as_the_default() -> None:
    assert Encoder(EncoderSpec(layer=6)).fingerprint == load_encoder(EncoderSpec()).fingerprint


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "median"}, "Unknown pooling mode 'median'"),
        ({"layer": 0}, "Layer must be 1 or more"),
        ({"max_seq_length": 4096}, "max_seq_length must be between"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncoderSpec(**kwargs)


def test_a_layer_beyond_the_model_is_refused() -> None:
    with pytest.raises(ValueError, match="has layers 1 to 6"):
        Encoder(EncoderSpec(layer=9))
