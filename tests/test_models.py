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


def save_model(
    folder: Path,
    *,
    window: int,
    pooling: str = "mean",
    layers: int | None = None,
    dense_to: int | None = None,
    prompts: dict[str, str] | None = None,
) -> Path:
    """A real sentence-transformers model made from the bundled weights: its first ``layers``
    layers, a ``window``-token window, a Dense layer to ``dense_to`` dimensions (seeded), saved as
    sentence-transformers saves any model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Transformer,
    )

    transformer = Transformer(str(bundled_model_path()), max_seq_length=window)
    if layers is not None:
        kept = transformer.auto_model.encoder.layer
        transformer.auto_model.encoder.layer = type(kept)(list(kept)[:layers])
        transformer.auto_model.config.num_hidden_layers = layers
    modules = [transformer, Pooling(384, pooling_mode=pooling)]
    if dense_to is not None:
        torch.manual_seed(0)
        modules.append(Dense(384, dense_to, activation_function=torch.nn.Identity()))
    model = SentenceTransformer(modules=[*modules, Normalize()], prompts=prompts, device="cpu")
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def prompted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled weights as a model of their own: CLS pooling, e5's query and passage prompts,
    a 512-token window."""
    folder = tmp_path_factory.mktemp("models") / "minilm-cls-e5-prompts"
    prompts = {"query": "query: ", "passage": "passage: "}
    return save_model(folder, window=512, pooling="cls", prompts=prompts)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smaller model: the bundled one's first three layers, a 64-token window and a Dense layer
    that projects its 384 dimensions to 128."""
    folder = tmp_path_factory.mktemp("models") / "minilm-3-layers-128"
    return save_model(folder, window=64, layers=3, dense_to=128)


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
            "query: ", "passage: ", 512,
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
    prompts = cli("--home", home, "index", DATA, "--model", prompted_model, "--query-prompt", "")
    assert prompts.code == 2 and "takes 'query: ' as its query-prompt" in prompts.err
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
    lone = cli("--home", home, "index", DATA, "--query-prompt", "query: ")
    assert lone.code == 2 and "go with --model" in lone.err and not home.exists()
    # A model without prompts of its own, given one for its queries on the command line.
    run = cli("--home", home, "index", DATA, "--model", small_model, "--query-prompt", "query: ",
              "--quiet")  # fmt: skip
    assert run.code == 0, run.err
    (version,) = json.loads(cli("--home", home, "models", "list", "--json").out)
    assert version["dimension"] == 128 and version["base_model"] == str(small_model)
    with Database(Settings.load(home).database_url).read() as session:
        row = session.get(ModelVersion, version["id"])
        assert (row.query_prompt, row.document_prompt) == ("query: ", "")
        copy = Path(row.path)
    assert json.loads((copy / "config_sentence_transformers.json").read_text())["prompts"] == {
        "query": "query: ", "document": ""
    }  # fmt: skip
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
    expected = reference.encode([text], normalize_embeddings=True)[0]  # documents: no prompt
    stored = searcher.chunk_vectors([chunk_id])[chunk_id]
    assert stored.shape == (128,) and float(stored @ expected) > 0.99
    hits = 0
    for case in sample_queries:
        top = [Path(r.path).name for r in searcher.search(case["query"], k=3, mode="dense")]
        hits += Path(case["expected"]).name in top
    assert hits >= len(sample_queries) - 2, hits
    assert searcher.search("varroa mites", k=3, mode="hybrid")[0].path.endswith("varroa-mites.md")


def test_a_switch_embeds_anew_while_a_reader_searches_and_rolls_back(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, prompted_model: Path, sample_queries: list[dict[str, str]]
) -> None:
    import threading

    home = tmp_path / "home"
    assert cli("--home", home, "index", DATA, "--quiet").code == 0
    (bundled,) = json.loads(cli("--home", home, "models", "list", "--json").out)
    reader = Searcher(Settings.load(home))
    reader.search("varroa", k=3)
    served_before = reader.generation_id
    seen: set[int | None] = set()
    failures: list[BaseException] = []
    done = threading.Event()

    def search_throughout() -> None:
        while not done.is_set():
            try:
                results = reader.search(sample_queries[0]["query"], k=3, mode="hybrid")
                assert results, "no results"
                seen.add(reader.generation_id)
            except BaseException as error:  # every failure is what the test counts
                failures.append(error)

    thread = threading.Thread(target=search_throughout)
    thread.start()
    try:
        run = cli("--home", home, "models", "switch", prompted_model, "--json", "--quiet")
    finally:
        done.set()
        thread.join()
    assert run.code == 0, run.err
    result = json.loads(run.out)
    assert result["served"] and "no evaluation set" in result["reason"]
    assert result["base_model"] == str(prompted_model) and result["dimension"] == 384
    assert not failures, failures[:3]
    assert seen and seen <= {served_before, result["generation"]}  # the one or the other
    listed = {v["id"]: v for v in json.loads(cli("--home", home, "models", "list", "--json").out)}
    assert listed[result["version"]]["status"] == "active"
    assert listed[bundled["id"]]["status"] == "retired"
    reader.search("varroa", k=3)
    assert reader.generation_id == result["generation"]
    hits = sum(
        Path(case["expected"]).name
        in [Path(r.path).name for r in reader.search(case["query"], k=3, mode="dense")]
        for case in sample_queries
    )
    assert hits >= len(sample_queries) - 1

    back = cli("--home", home, "models", "rollback", "--json", "--quiet")
    assert back.code == 0, back.err
    listed = {v["id"]: v for v in json.loads(back.out)}
    assert listed[bundled["id"]]["status"] == "active"
    assert listed[bundled["id"]]["base_model"] == "all-MiniLM-L6-v2"


def test_a_switch_worse_on_the_evaluation_set_is_not_served_unless_forced(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    # One layer of the bundled model, its vectors projected to 32 dimensions: clearly worse.
    worse = save_model(tmp_path / "one-layer-32", window=512, layers=1, dense_to=32)
    slice_ = Path(__file__).parent / "data" / "scifact-slice"
    home = tmp_path / "home"
    assert cli("--home", home, "index", "--beir", slice_, "--quiet").code == 0
    (bundled,) = json.loads(cli("--home", home, "models", "list", "--json").out)
    switch = ("--home", home, "models", "switch", worse, "--eval-beir", slice_,
              "--eval-split", "test", "--json", "--quiet")  # fmt: skip
    run = cli(*switch)
    assert run.code == 0, run.err
    refused = json.loads(run.out)
    assert not refused["served"] and "worse with confidence" in refused["reason"], refused
    assert refused["compared"]["interval"][1] < 0
    assert refused["after"]["ndcg@10"] < refused["before"]["ndcg@10"]
    assert "test split" in refused["compared_on"]
    (still,) = [v for v in json.loads(cli("--home", home, "models", "list", "--json").out)
                if v["status"] == "active"]  # fmt: skip
    assert still["id"] == bundled["id"]

    forced = json.loads(cli(*switch, "--force").out)
    assert forced["served"] and forced["reason"].startswith("forced")
    served = Searcher(Settings.load(home))
    assert served.encoder.encode(["a query"], role="query").shape == (1, 32)


def test_a_model_that_reads_less_than_the_chunks_is_refused(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    short = save_model(tmp_path / "short-window", window=32)
    home = tmp_path / "home"
    assert cli("--home", home, "index", DATA / "docs" / "bees", "--quiet").code == 0
    before = cli("--home", home, "models", "list", "--json").out
    run = cli("--home", home, "models", "switch", short, "--quiet")
    assert run.code == 2 and "longer than" in run.err and "--model" in run.err
    assert cli("--home", home, "models", "list", "--json").out == before
