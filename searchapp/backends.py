"""Encoder backends: the runtime that turns text into vectors, chosen once per index generation.

A generation records the backend that embedded its chunks, and its later writes use the same one.
Its queries use the same one too, with two exceptions that the fingerprint allows because the
vectors agree (docs/benchmarks.md):

- Queries of a PyTorch generation (``torch``, ``torch-bf16``) run on the fp32 ONNX export of the
  same model version (the same fingerprint), made at the end of the indexing run or promotion that
  built the generation: the same fp32 arithmetic as ``torch`` (cosine 1.0), 0.9998 to bf16. A
  one-shot query then neither imports torch nor loads it, 0.7 s instead of 7 s. Without the export
  (it failed, or it was deleted) queries run on the generation's own backend.
- Where a home moves to a CPU without native bf16, a ``torch-bf16`` generation is served by
  ``torch`` fp32, whose vectors agree with bf16's to cosine 0.998.

``auto`` is the fastest backend whose SciFact nDCG@10 stays within 0.005 of fp32 on this kind of
machine (bench/backends.py): ``torch-bf16`` where the CPU has native bf16, else ``torch``.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from searchapp.choices import BACKEND
from searchapp.encoder import Encoder, EncoderSpec
from searchapp.progress import NO_PROGRESS, Progress

log = logging.getLogger(__name__)

AUTO_WITH_BF16 = "torch-bf16"
# Generations whose queries run on the fp32 ONNX export of their model (see above).
QUERIES_ON_ONNX = ("torch", "torch-bf16")
AUTO_WITHOUT_BF16 = "torch"
# How far two encodings of one text may differ, per vector component, on each backend: bf16
# rounding and int8's per-batch activation scales depend on the other texts in the batch.
REPEATABLE_WITHIN = {"torch": 1e-4, "onnx": 1e-4, "torch-bf16": 3e-3, "onnx-int8": 3e-2}


@cache
def has_native_bf16() -> bool:
    """Does this CPU compute bf16 natively (AVX-512 BF16 or AMX)? Read without importing torch."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve(name: str) -> str:
    """The concrete backend for a new generation: ``auto`` chosen, unsupported ones replaced."""
    BACKEND.check(name)
    if name == "auto":
        return AUTO_WITH_BF16 if has_native_bf16() else AUTO_WITHOUT_BF16
    if name == "torch-bf16" and not has_native_bf16():
        log.warning("This CPU has no native bf16: using the torch fp32 backend instead.")
        return "torch"
    return name


def make_encoder(spec: EncoderSpec, backend: str, fingerprint: str, cache_dir: Path):  # type: ignore[no-untyped-def]
    """An encoder of ``spec`` on ``backend`` (``Encoder`` or ``OnnxEncoder``); ONNX exports
    are cached in ``cache_dir`` per fingerprint."""
    BACKEND.check(backend)
    if backend in ("onnx", "onnx-int8"):
        from searchapp.onnx_encoder import OnnxEncoder, cached_export

        folder = cached_export(cache_dir, spec, fingerprint, int8=backend == "onnx-int8")
        return OnnxEncoder(spec, folder)
    return Encoder(spec, bf16=backend == "torch-bf16" and has_native_bf16())


def query_backend(backend: str, fingerprint: str, cache_dir: Path) -> str:
    """The backend that embeds the queries of a generation embedded by ``backend``: ``onnx``
    for a PyTorch generation whose fp32 export is cached and verifies, else ``backend``."""
    if backend in QUERIES_ON_ONNX:
        from searchapp.onnx_encoder import existing_export

        if existing_export(cache_dir, fingerprint, int8=False) is not None:
            return "onnx"
    return backend


def prepare_queries(
    spec: EncoderSpec,
    backend: str,
    fingerprint: str,
    cache_dir: Path,
    progress: Progress = NO_PROGRESS,
) -> None:
    """Export the model that ``query_backend`` will pick for a PyTorch generation's queries
    (a few seconds, once per model version); a failed export is reported and leaves the
    queries on the generation's own backend."""
    if backend not in QUERIES_ON_ONNX:
        return
    from searchapp.onnx_encoder import ExportError, cached_export, existing_export

    if existing_export(cache_dir, fingerprint, int8=False) is not None:
        return
    stage = "export the model for queries (ONNX)"
    progress.report(stage, 0, 1, unit="model")
    try:
        cached_export(cache_dir, spec, fingerprint, int8=False)
    except ExportError as error:
        log.warning("%s Queries run on %s meanwhile.", error, backend)
    progress.report(stage, 1, 1, unit="model")
