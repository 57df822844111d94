"""Encoder backends: the runtime that turns text into vectors, chosen once per index generation.

A generation records the backend that embedded its chunks, and its queries and later writes use
the same one, so a generation never mixes two runtimes' vectors. One exception, said here: where a
home moves to a CPU without native bf16, a ``torch-bf16`` generation is served by ``torch`` fp32,
whose vectors agree with bf16's to cosine 0.998 (docs/benchmarks.md).

``auto`` is the fastest backend whose SciFact nDCG@10 stays within 0.005 of fp32 on this kind of
machine (bench/backends.py): ``torch-bf16`` where the CPU has native bf16, else ``torch``.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from searchapp.choices import BACKEND
from searchapp.encoder import Encoder, EncoderSpec

log = logging.getLogger(__name__)

AUTO_WITH_BF16 = "torch-bf16"
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
