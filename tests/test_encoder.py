"""The encoder: pooling modes, intermediate layers, normalisation and fingerprints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from searchapp.encoder import Encoder, EncoderSpec, bundled_model_path
from searchapp.errors import InvalidOptionError, ModelMismatchError
from searchapp.store.schema import ModelVersion
from searchapp.versions import encoder_for, load_encoder

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
    with pytest.raises(InvalidOptionError, match=message):
        EncoderSpec(**kwargs)


def test_a_layer_beyond_the_model_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="has layers 1 to 6"):
        Encoder(EncoderSpec(layer=9))


def test_a_saved_model_folder_loads_as_one_and_must_match_its_record(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "version-2"
    load_encoder(EncoderSpec(pooling="cls", layer=4)).model.save(str(folder))
    assert (folder / "modules.json").is_file() and (folder / "1_Pooling" / "config.json").is_file()

    loaded = Encoder(EncoderSpec(path=str(folder), pooling="cls", layer=4))
    np.testing.assert_allclose(loaded.encode(TEXTS), _reference("cls", 4), atol=2e-5)
    assert loaded.layers_used == 4  # the folder holds the 4 layers it was cut to
    assert loaded.fingerprint != load_encoder(EncoderSpec(pooling="cls", layer=4)).fingerprint

    with pytest.raises(ModelMismatchError, match="pools by 'cls' but its record says 'mean'"):
        Encoder(EncoderSpec(path=str(folder), pooling="mean", layer=4))
    with pytest.raises(ModelMismatchError, match="not a sentence-transformers model folder"):
        Encoder(EncoderSpec(path=str(tmp_path), pooling="cls"))


def test_a_version_whose_files_changed_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "version-3"
    load_encoder(EncoderSpec()).model.save(str(folder))
    spec = EncoderSpec(path=str(folder))
    version = ModelVersion(id=3, path=str(folder), pooling="mean", layer=None, max_seq_length=256,
                           dimension=384, fingerprint=Encoder(spec).fingerprint)  # fmt: skip
    assert encoder_for(version).fingerprint == version.fingerprint
    version.fingerprint = "0" * 64  # what the record says no longer matches the folder
    with pytest.raises(ModelMismatchError, match="no longer match its fingerprint"):
        encoder_for(version)


def test_loaded_models_are_shared_but_only_the_two_last_used_stay_in_memory() -> None:
    served = load_encoder(EncoderSpec())
    assert load_encoder(EncoderSpec()) is served  # one copy per process
    for layer in (2, 3):  # two candidates loaded since, as retraining twice would
        load_encoder(EncoderSpec(layer=layer))
    assert load_encoder(EncoderSpec(layer=3)) is load_encoder(EncoderSpec(layer=3))
    assert load_encoder(EncoderSpec()) is not served  # it was let go, and is loaded afresh
