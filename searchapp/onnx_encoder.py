"""The ONNX Runtime and OpenVINO backends: a model version exported once, then run without torch.

``export`` turns a model version's transformer into ONNX (``torch.onnx.export`` with eager
attention: offline, and equal to PyTorch to cosine 1.0) and, for ``onnx-int8``, quantizes the
weights of its matrix products per channel (per-tensor weights lose far more; quantizing the
token embedding table too cost a fine-tuned model 0.007 nDCG@10 on SciFact, the matrix products
alone 0.0006). The files are cached per fingerprint in
the user's cache (``Settings.backends_dir``), with a checksum, and rebuilt when missing or
damaged; the int8 export is quantized from the fp32 one when that is cached. ``OnnxEncoder`` then
needs only ``onnxruntime``, ``tokenizers`` and numpy: a query in a fresh process does not import
torch. ``OpenVinoEncoder`` runs the fp32 export on OpenVINO Runtime instead (bf16 on CPUs with
native bf16): the fastest backend for documents here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from searchapp.encoder import EncoderSpec, Role, dense_layers, model_fingerprint
from searchapp.errors import ModelMismatchError, SearchappError
from searchapp.settings import usable_cores

MANIFEST = "manifest.json"
DENSE_FILE = "dense.npz"  # the Dense layers' weights and biases, applied after the pooling
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class ExportError(SearchappError):
    """A model version could not be exported for a backend."""


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# The int8 recipe's name is in the folder's: exports made by an earlier recipe are made again.
_INT8 = "int8-matmul"


def _folder(cache_dir: Path, fingerprint: str, int8: bool) -> Path:
    return cache_dir / f"{fingerprint[:16]}-{_INT8 if int8 else 'fp32'}"


def existing_export(cache_dir: Path, fingerprint: str, int8: bool) -> Path | None:
    """The folder of ``fingerprint``'s export when it is there and verifies, else None."""
    folder = _folder(cache_dir, fingerprint, int8)
    return folder if _verifies(folder, fingerprint) else None


def cached_export(cache_dir: Path, spec: EncoderSpec, fingerprint: str, int8: bool) -> Path:
    """The folder of ``fingerprint``'s export (model.onnx, tokenizer.json, manifest), made now
    if it is missing or does not verify."""
    folder = _folder(cache_dir, fingerprint, int8)
    if _verifies(folder, fingerprint):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    fp32 = existing_export(cache_dir, fingerprint, int8=False) if int8 else None
    try:
        manifest = _export(spec, work, int8=int8) if fp32 is None else _quantized(fp32, work, spec)
        if manifest["fingerprint"] != fingerprint:
            raise ModelMismatchError(
                f"The model files now make fingerprint {manifest['fingerprint'][:12]}, not "
                f"{fingerprint[:12]}: they changed after the version was registered."
            )
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
        try:
            os.replace(work, folder)
        except OSError:
            if not _verifies(folder, fingerprint):
                raise
            # another process exported the same model meanwhile: theirs is as good as ours
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def _verifies(folder: Path, fingerprint: str) -> bool:
    model = folder / "model.onnx"
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = [(model, manifest["sha256"])]
        if manifest.get("dense"):
            files.append((folder / DENSE_FILE, manifest["dense_sha256"]))
        return manifest["fingerprint"] == fingerprint and all(
            _digest_is(str(path), path.stat().st_size, path.stat().st_mtime_ns, expected)
            for path, expected in files
        )
    except (OSError, ValueError, KeyError):
        return False


@cache
def _digest_is(path: str, size: int, mtime_ns: int, expected: str) -> bool:
    """Whether the file hashes to ``expected``: hashed once per process for a given size and
    modification time (a query checks the export before it loads it; a changed file is hashed
    again)."""
    return _sha256(Path(path)) == expected


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The tracer's warnings and the quantizer's advice are for ONNX developers, not users."""
    root = logging.getLogger()
    level = root.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(level)


def _export(spec: EncoderSpec, work: Path, *, int8: bool) -> dict[str, object]:
    """Export with torch (imported here only), then quantize if asked; returns the manifest."""
    from searchapp.encoder import Encoder

    encoder = Encoder(spec)
    transformer = encoder.model[0]
    names = [name for name in _INPUTS if name in transformer.tokenizer(["an example"])]
    try:
        with _quiet():
            _export_transformer(transformer, names, work / "model-fp32.onnx")
            if int8:
                _quantize(work / "model-fp32.onnx", work / "model.onnx")
                (work / "model-fp32.onnx").unlink()
            else:
                (work / "model-fp32.onnx").rename(work / "model.onnx")
    except Exception as error:  # the exporter's failures are many and not ours to list
        raise _failed(spec.path, error) from error
    transformer.tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
    layers = dense_layers(encoder.model)
    if layers:  # applied to the pooled vector in numpy, as the pooling is
        arrays = {f"{kind}_{i}": array for i, (w, b, _) in enumerate(layers)
                  for kind, array in (("weight", w), ("bias", b))}  # fmt: skip
        np.savez(work / DENSE_FILE, **arrays)
    return {
        "fingerprint": encoder.fingerprint,
        "sha256": _sha256(work / "model.onnx"),
        "inputs": names,
        "pooling": spec.pooling,
        "max_seq_length": spec.max_seq_length,
        "dimension": encoder.dimension,
        "layers_used": encoder.layers_used,
        "dense": [activation for _, _, activation in layers],
        "dense_sha256": _sha256(work / DENSE_FILE) if layers else None,
        "int8": int8,
    }


def _quantized(fp32: Path, work: Path, spec: EncoderSpec) -> dict[str, object]:
    """The int8 export made from the fp32 one already cached (no torch); returns its manifest."""
    manifest = json.loads((fp32 / MANIFEST).read_text())
    try:
        with _quiet():
            _quantize(fp32 / "model.onnx", work / "model.onnx")
    except Exception as error:
        raise _failed(spec.path, error) from error
    shutil.copy(fp32 / "tokenizer.json", work / "tokenizer.json")
    if (fp32 / DENSE_FILE).is_file():
        shutil.copy(fp32 / DENSE_FILE, work / DENSE_FILE)
    return manifest | {"sha256": _sha256(work / "model.onnx"), "int8": True}


def _quantize(source: Path, target: Path) -> None:
    """Int8 weights, per channel, in the matrix products only (the module's docstring says why)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source), str(target),
        per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
    )  # fmt: skip


EXPORT_ADVICE = "; use --backend torch (or SEARCHAPP_BACKEND=torch) meanwhile."


def _failed(path: str | None, error: Exception) -> ExportError:
    return ExportError(
        f"Exporting model {path or 'all-MiniLM-L6-v2'} to ONNX failed ({error}){EXPORT_ADVICE}"
    )


def _export_transformer(transformer, names: list[str], target: Path) -> None:  # type: ignore[no-untyped-def]
    """The transformer's last hidden state (the pooled layer: the model is already cut to it)
    as ONNX, with batch and sequence length left free."""
    import torch

    model = transformer.auto_model.eval()
    model.config._attn_implementation = "eager"  # the exporter traces eager attention offline
    sample = transformer.tokenizer(["an example"], return_tensors="pt")

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *inputs):  # type: ignore[no-untyped-def]
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(
            LastHidden(), tuple(sample[name] for name in names), str(target),
            input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
            opset_version=17, dynamo=False,
        )  # fmt: skip


class OnnxEncoder:
    """Embeds texts with an exported model on ONNX Runtime: the same vectors as ``Encoder``
    (fp32: cosine 1.0; int8: an approximation, see docs/benchmarks.md), without torch.

    Example::

        folder = cached_export(home / "backends", spec, fingerprint, int8=True)
        vectors = OnnxEncoder(spec, folder).encode(["how do bees make honey?"])
    """

    def __init__(self, spec: EncoderSpec, folder: Path, *, threads: int | None = None) -> None:
        """``threads``: the runtime's threads for one call (default: one per core). One short
        query is answered fastest by one thread (docs/benchmarks.md), leaving the other cores to
        keyword search and to other queries."""
        from tokenizers import Tokenizer

        manifest = json.loads((folder / MANIFEST).read_text())
        self.spec = spec
        self.dimension: int = manifest["dimension"]
        self.layers_used: int = manifest["layers_used"]
        self._inputs: list[str] = manifest["inputs"]
        self.fingerprint: str = model_fingerprint(spec, self.dimension, self.layers_used)
        if self.fingerprint != manifest["fingerprint"]:
            raise ModelMismatchError(
                f"The ONNX export in {folder} was made from other model files; it is rebuilt "
                "on the next run."
            )
        self._dense: list[tuple[np.ndarray, np.ndarray, str]] = []
        if manifest.get("dense"):
            with np.load(folder / DENSE_FILE) as arrays:
                self._dense = [(arrays[f"weight_{i}"], arrays[f"bias_{i}"], activation)
                               for i, activation in enumerate(manifest["dense"])]  # fmt: skip
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=spec.max_seq_length)
        self.tokenizer.no_padding()
        self._infer = self._open(folder / "model.onnx", threads or usable_cores())

    def _open(self, model: Path, threads: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        """The function that runs ``model`` on a batch: inputs by name -> last hidden state."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # Spinning worker threads would slow the rest of the process (SQL, FAISS) between calls.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        return lambda inputs: session.run(None, inputs)[0]

    @property
    def max_content_tokens(self) -> int:
        """Tokens left for a document's text once the special tokens and its prompt are added."""
        return self.spec.max_seq_length - len(self.tokenizer.encode(self.spec.document_prompt).ids)

    BATCH = 64  # texts per call of the runtime

    def encode(
        self, texts: list[str], *, batch_size: int | None = None, role: Role = "document"
    ) -> np.ndarray:
        """Embed ``texts`` as documents or as queries (each with its prompt, as
        ``Encoder.encode``); batches are formed by length so that little padding is encoded."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        prompt = self.spec.prompt(role)
        encodings = self.tokenizer.encode_batch([prompt + text for text in texts])
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        size = batch_size or self.BATCH
        batches = [order[start : start + size] for start in range(0, len(texts), size)]
        pooled = self._map(self._run, [[encodings[i] for i in rows] for rows in batches])
        for rows, batch_vectors in zip(batches, pooled, strict=True):
            vectors[rows] = batch_vectors
        return vectors

    def _map(self, run: Callable[[list], np.ndarray], batches: list[list]) -> Iterator[np.ndarray]:  # type: ignore[type-arg]
        """``run`` over ``batches``, in order: one after the other (the runtime's threads share
        each call)."""
        return map(run, batches)

    def _run(self, encodings: list) -> np.ndarray:  # type: ignore[type-arg]
        width = max(len(e.ids) for e in encodings)
        batch = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUTS}
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            batch["input_ids"][row, :n] = encoding.ids
            batch["attention_mask"][row, :n] = encoding.attention_mask
            batch["token_type_ids"][row, :n] = encoding.type_ids
        hidden = self._infer({name: batch[name] for name in self._inputs})
        mask = batch["attention_mask"][:, :, None].astype(np.float32)
        if self.spec.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.spec.pooling == "max":
            pooled = np.where(mask > 0, hidden, -1e9).max(axis=1)
        else:
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        for weight, bias, activation in self._dense:
            pooled = pooled @ weight.T + bias
            if activation == "tanh":
                pooled = np.tanh(pooled)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class OpenVinoEncoder(OnnxEncoder):
    """The same ONNX export run by OpenVINO Runtime, in bf16 where the CPU computes bf16 natively
    (2.5x PyTorch bf16 on documents here, cosine 0.99998 to fp32: docs/benchmarks.md), else in
    fp32.

    With more than one thread it is compiled for throughput: the runtime splits the cores into
    streams (two of one thread each on two cores), each running a batch of its own, and the
    batches are smaller. On documents here that encodes 1.4x as many passages a second as one
    stream sharing its threads over batches of 64 (docs/benchmarks.md). One thread (a query)
    is compiled for latency. Example::

        folder = cached_export(home / "backends", spec, fingerprint, int8=False)
        vectors = OpenVinoEncoder(spec, folder, bf16=True).encode(["how do bees make honey?"])
    """

    BATCH = 32  # per stream: faster here than 64 (docs/benchmarks.md)

    def __init__(
        self, spec: EncoderSpec, folder: Path, *, threads: int | None = None, bf16: bool = False
    ) -> None:
        self.bf16 = bf16
        self._streams = 1
        super().__init__(spec, folder, threads=threads)

    def _open(self, model: Path, threads: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        import openvino as ov

        compiled = ov.Core().compile_model(
            str(model), "CPU", {"INFERENCE_PRECISION_HINT": "bf16" if self.bf16 else "f32",
                                "INFERENCE_NUM_THREADS": threads,
                                "PERFORMANCE_HINT": "THROUGHPUT" if threads > 1 else "LATENCY"},
        )  # fmt: skip
        self._streams = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        # OpenVINO's bindings (pybind11) set up their numpy API on first use, and two threads
        # doing that at once can deadlock (two streams' first batches did, beside a busy main
        # thread): one token through the model, here, sets it up before any stream runs.
        one = {name: np.ones((1, 1), dtype=np.int64) for name in self._inputs}
        compiled.create_infer_request().infer(one)
        requests = threading.local()  # an infer request serves one call at a time

        def infer(inputs: dict[str, np.ndarray]) -> np.ndarray:
            if not hasattr(requests, "request"):
                requests.request = compiled.create_infer_request()
            # The request's own output buffer, not a copy: ``_run`` pools it before this thread
            # runs the request again.
            return requests.request.infer(inputs)[0]

        return infer

    def _map(self, run: Callable[[list], np.ndarray], batches: list[list]) -> Iterator[np.ndarray]:  # type: ignore[type-arg]
        """``run`` over ``batches``, in order, one batch per stream at a time (each stream's
        thread has its own infer request, which releases the GIL while it runs, and pools its
        own batch: faster here than OpenVINO's ``AsyncInferQueue``, in 4 rounds of 5)."""
        if self._streams == 1 or len(batches) == 1:
            return map(run, batches)
        return self._pool.map(run, batches)

    @cached_property
    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self._streams, thread_name_prefix="openvino")
