"""Encoder backends: ONNX exports made locally and cached, vectors that agree with PyTorch, one
backend per generation, and a query that needs no torch at all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from searchapp import backends
from searchapp.encoder import EncoderSpec, bundled_model_facts
from searchapp.errors import InvalidOptionError
from searchapp.settings import CACHE_ENV, Settings
from searchapp.store.database import Database
from searchapp.store.schema import ModelVersion
from searchapp.versions import active_generation, encoder_for, load_encoder

TEXTS = [
    "How do honey bees survive the winter?",
    "Espresso needs a fine, even grind and a steady tamp.",
    "Saturn's rings are best seen at opposition, through a small telescope.",
]


@pytest.fixture(scope="module")
def version() -> ModelVersion:
    encoder = load_encoder(EncoderSpec())
    return ModelVersion(id=1, path=None, pooling="mean", layer=None, max_seq_length=256,
                        dimension=384, fingerprint=encoder.fingerprint)  # fmt: skip


def test_auto_picks_openvino_where_it_loads_and_bf16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert backends.resolve("auto") == "openvino"  # a dependency: it loads here
    monkeypatch.setattr(backends, "has_openvino", lambda: False)
    monkeypatch.setattr(backends, "has_native_bf16", lambda: True)
    assert backends.resolve("auto") == "torch-bf16"
    monkeypatch.setattr(backends, "has_native_bf16", lambda: False)
    assert backends.resolve("auto") == "torch"
    assert backends.resolve("torch-bf16") == "torch"  # the safe fallback
    assert backends.resolve("onnx-int8") == "onnx-int8"
    with pytest.raises(InvalidOptionError, match="pip install openvino"):
        backends.resolve("openvino")  # asked for by name: said, not silently replaced


def test_an_openvino_generation_is_served_where_openvino_does_not_load(
    version: ModelVersion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from searchapp.onnx_encoder import OnnxEncoder, OpenVinoEncoder

    spec = EncoderSpec()
    made = backends.make_encoder(spec, "openvino", version.fingerprint, tmp_path)
    assert isinstance(made, OpenVinoEncoder)
    monkeypatch.setattr(backends, "has_openvino", lambda: False)  # the home moved
    moved = backends.make_encoder(spec, "openvino", version.fingerprint, tmp_path)
    assert type(moved) is OnnxEncoder  # the same export, on ONNX Runtime
    assert (moved.encode(TEXTS) * made.encode(TEXTS)).sum(axis=1).min() >= 0.999


@pytest.mark.parametrize(
    ("backend", "least_cosine"),
    [("onnx", 0.9999), ("onnx-int8", 0.97), ("torch-bf16", 0.99), ("openvino", 0.999)],
)
def test_every_backend_agrees_with_pytorch_fp32(
    version: ModelVersion, tmp_path: Path, backend: str, least_cosine: float
) -> None:
    reference = load_encoder(EncoderSpec()).encode(TEXTS)
    vectors = encoder_for(version, backend, tmp_path).encode(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * reference).sum(axis=1).min() >= least_cosine


def test_openvino_streams_give_every_text_its_own_vector(version: ModelVersion, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Several batches of mixed lengths run side by side on the streams; each vector must come
    # back to its own text, as one batch at a time on one thread gives it.
    texts = [" ".join(TEXTS[: 1 + i % 3]) * (1 + i % 5) + f" ({i})" for i in range(150)]
    streams = encoder_for(version, "openvino", tmp_path, threads=2)
    one_at_a_time = encoder_for(version, "openvino", tmp_path, threads=1)
    assert streams._streams >= 2 and one_at_a_time._streams == 1
    vectors, expected = streams.encode(texts), one_at_a_time.encode(texts)
    assert (vectors * expected).sum(axis=1).min() >= 0.999
    assert (vectors[:-1] * expected[1:]).sum(axis=1).min() < 0.99  # a shift would be seen


def test_an_export_is_cached_and_rebuilt_when_damaged(version: ModelVersion, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from searchapp.onnx_encoder import cached_export

    spec = EncoderSpec()
    folder = cached_export(tmp_path, spec, version.fingerprint, int8=True)
    made = (folder / "model.onnx").stat().st_mtime_ns
    assert cached_export(tmp_path, spec, version.fingerprint, int8=True) == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == made  # not exported again
    with (folder / "model.onnx").open("r+b") as handle:
        handle.truncate(1000)  # a disk error, a killed copy
    assert cached_export(tmp_path, spec, version.fingerprint, int8=True) == folder
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (folder / "model.onnx").stat().st_size > 1000 and manifest["int8"] is True
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary folder left


def test_the_int8_export_is_made_from_the_cached_fp32_one(
    version: ModelVersion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from searchapp import onnx_encoder

    spec = EncoderSpec()
    fp32 = onnx_encoder.cached_export(tmp_path, spec, version.fingerprint, int8=False)

    def no_second_export(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the model was exported again")

    monkeypatch.setattr(onnx_encoder, "_export", no_second_export)
    int8 = onnx_encoder.cached_export(tmp_path, spec, version.fingerprint, int8=True)
    manifest = json.loads((int8 / "manifest.json").read_text())
    assert manifest["int8"] is True and manifest["fingerprint"] == version.fingerprint
    assert (int8 / "model.onnx").stat().st_size < 0.7 * (fp32 / "model.onnx").stat().st_size
    reference = load_encoder(spec).encode(TEXTS)
    vectors = onnx_encoder.OnnxEncoder(spec, int8).encode(TEXTS)
    assert (vectors * reference).sum(axis=1).min() >= 0.97


def test_a_failed_export_is_said_and_does_not_stop_the_default_backend(
    version: ModelVersion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    from searchapp import onnx_encoder
    from searchapp.encoder import Encoder

    def broken_exporter(transformer, names, target):  # type: ignore[no-untyped-def]
        raise RuntimeError("unsupported operator aten::scaled_dot_product_attention")

    monkeypatch.setattr(onnx_encoder, "_export_transformer", broken_exporter)
    spec = EncoderSpec()
    with pytest.raises(onnx_encoder.ExportError, match="use --backend torch"):
        backends.make_encoder(spec, "onnx", version.fingerprint, tmp_path)  # asked for by name
    with caplog.at_level("WARNING"):
        encoder = backends.make_encoder(spec, "openvino", version.fingerprint, tmp_path)
    assert type(encoder) is Encoder  # PyTorch, the same model version
    assert "to ONNX failed (unsupported operator" in caplog.text
    assert "PyTorch runs the model meanwhile" in caplog.text
    assert encoder.fingerprint == version.fingerprint
    assert [p.name for p in tmp_path.iterdir()] == []  # no half-made export left behind


def _one_shot_query(home: Path, *options: str) -> tuple[str, list[str]]:
    """A dense query in a fresh process: the top path, and which of torch and
    sentence-transformers it imported."""
    code = (
        "import sys, json\n"
        "from searchapp.cli import main\n"
        f"main(['--home', {str(home)!r}, *{list(options)!r}, 'search', 'getting rid of varroa',"
        " '--mode', 'dense', '--json', '--k', '1'])\n"
        "heavy = ('torch', 'sentence_transformers')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    answer, imported = done.stdout.splitlines()
    return json.loads(answer)["results"][0]["path"], json.loads(imported)


@pytest.mark.parametrize(
    "spec",
    [EncoderSpec(), EncoderSpec(pooling="cls", layer=4), EncoderSpec(pooling="max", layer=6)],
)
def test_the_bundled_model_is_registered_without_loading_it(spec: EncoderSpec) -> None:
    facts, encoder = bundled_model_facts(spec), load_encoder(spec)
    assert (facts.fingerprint, facts.dimension) == (encoder.fingerprint, encoder.dimension)
    with pytest.raises(InvalidOptionError, match="Layer 9 does not exist"):
        bundled_model_facts(EncoderSpec(layer=9))


def test_a_new_home_is_indexed_without_torch_once_the_export_is_cached(
    version: ModelVersion, docs_copy: Path, tmp_path: Path
) -> None:
    from searchapp.onnx_encoder import cached_export

    cache = Settings.load(tmp_path / "any").backends_dir
    for int8 in (False, True):  # what an earlier run on this machine left
        cached_export(cache, EncoderSpec(), version.fingerprint, int8=int8)
    home = tmp_path / "home"
    code = (
        "import sys, json\n"
        "from searchapp.cli import main\n"
        f"main(['--home', {str(home)!r}, 'index', {str(docs_copy)!r}, '--quiet'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code + "print(json.dumps('torch' in sys.modules))"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "false"
    top, _ = _one_shot_query(home)
    assert top.endswith("varroa-mites.md")


@pytest.mark.parametrize("backend", ["onnx-int8", "torch", "openvino"])
def test_a_generation_keeps_its_backend_and_a_query_needs_no_torch(
    cli, docs_copy: Path, tmp_path: Path, backend: str
) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    run = cli("--home", home, "index", docs_copy, "--backend", backend, "--quiet")
    assert run.code == 0, run.err
    with Database(Settings.load(home).database_url).read() as session:
        assert active_generation(session).backend == backend
    top, imported = _one_shot_query(home)
    assert top.endswith("varroa-mites.md")
    assert imported == []  # a torch generation's queries run on its model's int8 ONNX export


def test_queries_run_on_the_query_backend_asked_for(  # type: ignore[no-untyped-def]
    cli,
    capsys: pytest.CaptureFixture[str],
    docs_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))  # no export made by another test
    home = tmp_path / "home"
    assert cli("--home", home, "index", docs_copy, "--backend", "torch", "--quiet").code == 0
    top, imported = _one_shot_query(home, "--query-backend", "generation")
    assert top.endswith("varroa-mites.md") and "torch" in imported
    # Asked for the fp32 export, which no run has made yet: torch, as exact, answers meanwhile.
    top, imported = _one_shot_query(home, "--query-backend", "onnx")
    assert top.endswith("varroa-mites.md") and "torch" in imported
    (docs_copy / "bees" / "new-note.md").write_text("# Swarm season\n\nBees swarm in May.")
    assert cli("--home", home, "--query-backend", "onnx", "index", docs_copy, "--quiet").code == 0
    top, imported = _one_shot_query(home, "--query-backend", "onnx")
    assert top.endswith("varroa-mites.md") and imported == []
    with pytest.raises(SystemExit):
        cli("--home", home, "--query-backend", "fp16", "search", "varroa")
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_without_its_export_a_torch_generation_answers_with_torch(
    cli, docs_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))  # no export made by another test
    home = tmp_path / "home"
    assert cli("--home", home, "index", docs_copy, "--backend", "torch", "--quiet").code == 0
    settings = Settings.load(home)
    with Database(settings.database_url).read() as session:
        fingerprint = session.get(
            ModelVersion, active_generation(session).model_version_id
        ).fingerprint

    def chosen(wanted: str = "onnx-int8") -> str:
        return backends.query_backend("torch", fingerprint, settings.backends_dir, wanted)

    assert chosen() == "onnx-int8" and chosen("generation") == "torch"
    export = next(settings.backends_dir.glob(f"{fingerprint[:16]}-int8*"))
    (export / "model.onnx").write_bytes(b"damaged")  # a killed copy, a disk error
    assert chosen() == "torch"
    top, imported = _one_shot_query(home)
    assert top.endswith("varroa-mites.md") and "torch" in imported
    # The next run that embeds something makes the export again.
    (docs_copy / "bees" / "new-note.md").write_text("# Swarm season\n\nBees swarm in May.")
    assert cli("--home", home, "index", docs_copy, "--quiet").code == 0
    assert chosen() == "onnx-int8"


def test_a_home_made_before_backends_existed_is_served_by_torch(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'old.db'}"
    Database(url)
    with sqlite3.connect(tmp_path / "old.db") as connection:
        connection.execute("ALTER TABLE index_generations DROP COLUMN backend")
        # …and before migrations: what revision 0002 adds is not there either.
        connection.execute("DROP TABLE alembic_version")
        connection.execute("DROP TABLE training_pairs")
        connection.execute("ALTER TABLE model_versions DROP COLUMN dense_weight")
        connection.execute("DROP INDEX ix_documents_path")  # …nor what 0007 adds
        for column in ("part", "author", "doc_date", "sections", "meta"):
            connection.execute(f"ALTER TABLE documents DROP COLUMN {column}")
        for column in ("base_model", "query_prompt", "document_prompt"):  # …nor what 0009 adds
            connection.execute(f"ALTER TABLE model_versions DROP COLUMN {column}")
        connection.execute(
            "INSERT INTO model_versions (id, name, pooling, max_seq_length, dimension, "
            "fingerprint, status, created_at) VALUES (1, 'm', 'mean', 256, 384, 'f', 'active', "
            "'2026-01-01')"
        )
        connection.execute(
            "INSERT INTO index_generations (id, model_version_id, status, created_at, "
            "vector_count, max_chunk_id) VALUES (1, 1, 'active', '2026-01-01', 0, 0)"
        )
    with Database(url).read() as session:  # opening it adds the column
        assert active_generation(session).backend == "torch"
