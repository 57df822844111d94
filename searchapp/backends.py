"""Encoder backends: the runtime that turns text into vectors, chosen once per index generation.

A generation records the backend that embedded its chunks, and its later writes use the same one.
Its queries may run on another, because every backend computes the same model version (the same
fingerprint) and their vectors agree (docs/benchmarks.md):

- Queries run on an ONNX export of the served model version, chosen by ``--query-backend``
  (``SEARCHAPP_QUERY_BACKEND``): by default ``onnx-int8``, int8 weights in its matrix products,
  twice as fast for one query as fp32 and within 0.005 nDCG@10 of it on SciFact for the bundled
  and a fine-tuned model; ``onnx`` is the fp32 export (cosine 1.0 to ``torch``); ``generation``
  the backend that embedded the documents. The export is made at the end of the indexing run or
  promotion that built the generation, so a one-shot query neither imports torch nor loads it,
  0.7 s instead of 7 s. Without it (it failed, or it was deleted) queries fall back to the fp32
  export, then to the generation's own backend.
- Where a home moves to a CPU without native bf16, a ``torch-bf16`` generation is served by
  ``torch`` fp32, whose vectors agree with bf16's to cosine 0.998, and an ``openvino`` one runs in
  fp32; where OpenVINO does not load, an ``openvino`` generation is served by ``onnx``, the same
  export on ONNX Runtime, and where the model cannot be exported, by PyTorch (with a warning; an
  ONNX backend asked for by name stops with the exporter's error instead).

``auto`` is the fastest backend whose SciFact nDCG@10 stays within 0.005 of fp32 on this kind of
machine (bench/backends.py): ``openvino`` wherever OpenVINO Runtime loads (bf16 on CPUs with
native bf16, fp32 elsewhere, and faster than PyTorch in both), else ``torch-bf16`` where the CPU
has native bf16, else ``torch``.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from searchapp.choices import BACKEND, QUERY_BACKEND
from searchapp.encoder import Encoder, EncoderSpec
from searchapp.errors import InvalidOptionError
from searchapp.progress import NO_PROGRESS, Progress

log = logging.getLogger(__name__)

AUTO = "openvino"  # where OpenVINO Runtime loads; else:
AUTO_WITH_BF16 = "torch-bf16"
AUTO_WITHOUT_BF16 = "torch"
# The backends that run the model version's ONNX export (made once, cached per fingerprint).
EXPORTED = ("onnx", "onnx-int8", "openvino")
# How far two encodings of one text may differ, per vector component, on each backend: bf16
# rounding and int8's per-batch activation scales depend on the other texts in the batch.
REPEATABLE_WITHIN = {
    "torch": 1e-4, "onnx": 1e-4, "torch-bf16": 3e-3, "onnx-int8": 3e-2, "openvino": 3e-3,
}  # fmt: skip


@cache
def has_native_bf16() -> bool:
    """Does this CPU compute bf16 natively (AVX-512 BF16 or AMX)? Read without importing torch."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@cache
def has_openvino() -> bool:
    """Does OpenVINO Runtime load here (a dependency, but not built for every platform)?"""
    try:
        import openvino  # noqa: F401
    except Exception:  # an ImportError, or a runtime library that does not load
        return False
    return True


def resolve(name: str) -> str:
    """The concrete backend for a new generation: ``auto`` chosen, unsupported ones replaced."""
    BACKEND.check(name)
    if name == "auto":
        if has_openvino():
            return AUTO
        return AUTO_WITH_BF16 if has_native_bf16() else AUTO_WITHOUT_BF16
    if name == "openvino" and not has_openvino():
        raise InvalidOptionError(
            "The openvino backend needs OpenVINO Runtime, which does not load here: "
            "`pip install openvino`, or choose --backend torch-bf16 (or torch)."
        )
    if name == "torch-bf16" and not has_native_bf16():
        log.warning("This CPU has no native bf16: using the torch fp32 backend instead.")
        return "torch"
    return name


def make_encoder(  # type: ignore[no-untyped-def]
    spec: EncoderSpec, backend: str, fingerprint: str, cache_dir: Path, threads: int | None = None
):
    """An encoder of ``spec`` on ``backend`` (``Encoder``, ``OnnxEncoder`` or ``OpenVinoEncoder``);
    ONNX exports are cached in ``cache_dir`` per fingerprint. ``threads``: the runtime's per
    call."""
    BACKEND.check(backend)
    if backend == "openvino" and not has_openvino():
        log.warning("OpenVINO Runtime does not load here: ONNX Runtime runs the same export.")
        backend = "onnx"
    if backend in EXPORTED:
        from searchapp.onnx_encoder import (
            EXPORT_ADVICE,
            ExportError,
            OnnxEncoder,
            OpenVinoEncoder,
            cached_export,
        )

        try:
            folder = cached_export(cache_dir, spec, fingerprint, int8=backend == "onnx-int8")
        except ExportError as error:
            if backend != "openvino":  # asked for by name: the error says what to do
                raise
            # The default backend must not stop a run: PyTorch computes the same vectors.
            reason = str(error).removesuffix(EXPORT_ADVICE)
            log.warning("%s: PyTorch runs the model meanwhile.", reason)
            return Encoder(spec, bf16=has_native_bf16())
        if backend == "openvino":
            return OpenVinoEncoder(spec, folder, threads=threads, bf16=has_native_bf16())
        return OnnxEncoder(spec, folder, threads=threads)
    return Encoder(spec, bf16=backend == "torch-bf16" and has_native_bf16())


def query_backend(backend: str, fingerprint: str, cache_dir: Path, wanted: str) -> str:
    """The backend that embeds the queries of a generation embedded by ``backend``: ``wanted``
    (a ``QUERY_BACKEND``) when its export is cached and verifies, else the fp32 export when it
    is, else ``backend`` itself."""
    QUERY_BACKEND.check(wanted)
    if wanted == "generation" or wanted == backend:
        return backend
    from searchapp.onnx_encoder import existing_export

    for choice in dict.fromkeys((wanted, "onnx")):
        if existing_export(cache_dir, fingerprint, int8=choice == "onnx-int8") is not None:
            return choice
    return backend


def prepare_queries(
    spec: EncoderSpec,
    backend: str,
    fingerprint: str,
    cache_dir: Path,
    wanted: str,
    progress: Progress = NO_PROGRESS,
) -> None:
    """Export the model for the ``wanted`` query backend (a few seconds, once per model
    version); a failed export is reported and leaves the queries on the generation's own
    backend."""
    QUERY_BACKEND.check(wanted)
    if wanted in ("generation", backend):
        return
    from searchapp.onnx_encoder import ExportError, cached_export, existing_export

    int8 = wanted == "onnx-int8"
    if existing_export(cache_dir, fingerprint, int8=int8) is not None:
        return
    stage = f"export the model for queries ({wanted})"
    progress.report(stage, 0, 1, unit="model")
    try:
        cached_export(cache_dir, spec, fingerprint, int8=int8)
    except ExportError as error:
        log.warning("%s Queries run on %s meanwhile.", error, backend)
    progress.report(stage, 1, 1, unit="model")
