"""Bring your own model: a home started from any sentence-transformers model (``index --model``),
with the model's own pooling and prompts; real models, made here from the bundled one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from searchapp.encoder import bundled_model_path
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Chunk, ModelVersion
from tests.conftest import DATA


@pytest.fixture(scope="module")
def prompted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled weights as a model of their own: CLS pooling, e5's query and passage prompts,
    a 128-token window; saved as sentence-transformers saves any model."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(bundled_model_path()), max_seq_length=128)
    model = SentenceTransformer(
        modules=[transformer, Pooling(384, pooling_mode="cls"), Normalize()],
        prompts={"query": "query: ", "passage": "passage: "},
        device="cpu",
    )
    folder = tmp_path_factory.mktemp("models") / "minilm-cls-e5-prompts"
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smaller model: the bundled one's first three layers, a 64-token window and a Dense layer
    that projects its 384 dimensions to 128."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Transformer,
    )

    transformer = Transformer(str(bundled_model_path()), max_seq_length=64)
    layers = transformer.auto_model.encoder.layer
    transformer.auto_model.encoder.layer = type(layers)(list(layers)[:3])
    transformer.auto_model.config.num_hidden_layers = 3
    torch.manual_seed(0)
    dense = Dense(384, 128, activation_function=torch.nn.Identity())
    model = SentenceTransformer(
        modules=[transformer, Pooling(384, pooling_mode="mean"), dense, Normalize()], device="cpu"
    )
    folder = tmp_path_factory.mktemp("models") / "minilm-3-layers-128"
    model.save(str(folder))
    return folder


def test_a_home_made_from_a_model_folder_takes_its_pooling_and_prompts(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, prompted_model: Path, sample_queries: list[dict[str, str]]
) -> None:
    from sentence_transformers import SentenceTransformer

    home = tmp_path / "home"
    run = cli("--home", home, "index", DATA, "--model", prompted_model, "--quiet")
    assert run.code == 0, run.err
    listed = cli("--home", home, "models", "list", "--json")
    (version,) = json.loads(listed.out)
    assert version["base_model"] == str(prompted_model) and version["dimension"] == 384
    assert version["pooling"] == "cls" and version["status"] == "active"
    text = cli("--home", home, "models", "list").out
    assert f"from {prompted_model}, 384 dimensions" in text
    with Database(Settings.load(home).database_url).read() as session:
        row = session.get(ModelVersion, version["id"])
        assert (row.query_prompt, row.document_prompt, row.max_seq_length) == (
            "query: ", "passage: ", 128,
        )  # fmt: skip
        chunk_id, chunk_text = session.query(Chunk.id, Chunk.text).order_by(Chunk.id).first()

    # Its vectors are the model's own: queries with the query prompt, documents with the passage
    # prompt, as sentence-transformers makes them (the home's backend is ONNX/OpenVINO).
    reference = SentenceTransformer(str(prompted_model), device="cpu")
    searcher = Searcher(Settings.load(home))
    query = sample_queries[0]["query"]
    ours = searcher.encoder.encode([query], role="query")[0]
    assert float(ours @ reference.encode_query([query], normalize_embeddings=True)[0]) > 0.99
    plain = reference.encode([query], normalize_embeddings=True)[0]  # no prompt: another vector
    assert float(ours @ plain) < 0.99
    stored = searcher.chunk_vectors([chunk_id])[chunk_id]
    expected = reference.encode_document([chunk_text], normalize_embeddings=True)[0]
    assert float(stored @ expected) > 0.99

    # A model of its own: another fingerprint than the bundled one with CLS pooling.
    bundled = cli("--home", tmp_path / "bundled", "index", DATA / "docs" / "bees",
                  "--pooling", "cls", "--quiet")  # fmt: skip
    assert bundled.code == 0, bundled.err
    (other,) = json.loads(cli("--home", tmp_path / "bundled", "models", "list", "--json").out)
    assert other["fingerprint"] != version["fingerprint"]
    assert other["base_model"] == "all-MiniLM-L6-v2"

    # And it finds the sample's answers.
    hits = 0
    for case in sample_queries:
        top = [Path(r.path).name for r in searcher.search(case["query"], k=3, mode="dense")]
        hits += Path(case["expected"]).name in top
    assert hits >= len(sample_queries) - 1

    # The home keeps its model: another one is refused, and the served version stays.
    refused = cli("--home", home, "index", DATA, "--model", prompted_model.parent, "--quiet")
    assert refused.code == 2 and "not a model folder" in refused.err
    another = cli("--home", home, "index", DATA, "--model", bundled_model_path(), "--quiet")
    assert another.code == 2 and "use a new --home" in another.err
    assert json.loads(cli("--home", home, "models", "list", "--json").out) == [version]


def test_a_model_that_cannot_be_found_creates_nothing(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, prompted_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    home = tmp_path / "home"
    missing = cli("--home", home, "index", DATA, "--model", "no-such-org/no-such-model")
    assert missing.code == 2
    assert "no-such-org/no-such-model" in missing.err and "HF_HUB_OFFLINE" in missing.err
    assert not home.exists()

    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    for name in ("config.json", "modules.json", "tokenizer.json"):
        (incomplete / name).write_bytes((prompted_model / name).read_bytes())
    run = cli("--home", home, "index", DATA, "--model", incomplete)
    assert run.code == 2 and "incomplete" in run.err and "no weights" in run.err
    assert not home.exists()

    typo = cli("--home", home, "index", DATA, "--model", str(tmp_path / "no-such-folder"))
    assert typo.code == 2 and "no-such-folder" in typo.err
    assert not home.exists()


def test_training_starts_from_the_served_model_and_keeps_its_prompts(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, prompted_model: Path
) -> None:
    home = tmp_path / "home"
    assert cli("--home", home, "index", DATA, "--model", prompted_model, "--quiet").code == 0
    run = cli("--home", home, "train", DATA / "pairs.jsonl", "--epochs", "1", "--force",
              "--json", "--quiet")  # fmt: skip
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["promoted"] and report["pooling"] == "cls"
    listed = {v["id"]: v for v in json.loads(cli("--home", home, "models", "list", "--json").out)}
    trained = listed[report["version"]]
    assert trained["base_model"] == str(prompted_model) and trained["status"] == "active"
    with Database(Settings.load(home).database_url).read() as session:
        row = session.get(ModelVersion, report["version"])
        assert (row.query_prompt, row.document_prompt) == ("query: ", "passage: ")
    searcher = Searcher(Settings.load(home))
    vector = searcher.encoder.encode(["varroa mites"], role="query")
    assert vector.shape == (1, 384) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-4)
    assert searcher.search("how to get rid of varroa mites", k=3, mode="dense")


def test_a_smaller_model_with_its_own_window_and_dimension(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, small_model: Path, sample_queries: list[dict[str, str]]
) -> None:
    from sentence_transformers import SentenceTransformer

    home = tmp_path / "home"
    run = cli("--home", home, "index", DATA, "--model", small_model, "--quiet")
    assert run.code == 0, run.err
    (version,) = json.loads(cli("--home", home, "models", "list", "--json").out)
    assert version["dimension"] == 128 and version["base_model"] == str(small_model)
    searcher = Searcher(Settings.load(home))
    # No chunk is longer than the model reads: 64 tokens with [CLS] and [SEP].
    with Database(Settings.load(home).database_url).read() as session:
        assert session.get(ModelVersion, version["id"]).max_seq_length == 64
        chunks = session.query(Chunk.id, Chunk.text).all()
    reference = SentenceTransformer(str(small_model), device="cpu")
    longest = max(len(reference.tokenizer(text)["input_ids"]) for _, text in chunks)
    assert longest <= 64
    # The home's backend (ONNX/OpenVINO) applies the Dense layer as sentence-transformers does.
    chunk_id, text = chunks[0]
    expected = reference.encode([text], normalize_embeddings=True)[0]
    stored = searcher.chunk_vectors([chunk_id])[chunk_id]
    assert stored.shape == (128,) and float(stored @ expected) > 0.99
    hits = 0
    for case in sample_queries:
        top = [Path(r.path).name for r in searcher.search(case["query"], k=3, mode="dense")]
        hits += Path(case["expected"]).name in top
    assert hits >= len(sample_queries) - 2, hits
    assert searcher.search("varroa mites", k=3, mode="hybrid")[0].path.endswith("varroa-mites.md")
