"""Model versions and index generations: which model made which vectors, and which are served.

An index generation belongs to exactly one model version, and a query is always embedded by the
model of the generation it searches. A fresh home starts with the bundled backbone as version 1.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from searchapp.backends import EXPORTED, make_encoder, query_backend, resolve
from searchapp.choices import QUERY_BACKEND
from searchapp.encoder import (
    BUNDLED_MODEL_NAME,
    Encoder,
    EncoderSpec,
    ModelFacts,
    bundled_model_facts,
)
from searchapp.errors import (
    InvalidOptionError,
    ModelMismatchError,
    NoIndexError,
    UnknownVersionError,
)
from searchapp.learning_curve import curve_said
from searchapp.store.database import Database
from searchapp.store.schema import IndexGeneration, ModelVersion

if TYPE_CHECKING:
    from searchapp.onnx_encoder import OnnxEncoder


def spec_of(version: ModelVersion) -> EncoderSpec:
    return EncoderSpec(
        path=version.path,
        pooling=version.pooling,
        layer=version.layer,
        max_seq_length=version.max_seq_length,
        query_prompt=version.query_prompt or "",  # None: a record not yet flushed
        document_prompt=version.document_prompt or "",
    )


# The served model and the one being built or compared: a process that trains again and again
# (the UI) must not keep every candidate it ever loaded.
_LOADED_ENCODERS = 2
_encoders: OrderedDict[tuple[EncoderSpec, str, int | None], Encoder | OnnxEncoder] = OrderedDict()
_encoders_lock = threading.Lock()


def _shared(  # type: ignore[no-untyped-def]
    key: tuple[EncoderSpec, str, int | None], make: Callable[[], Encoder | OnnxEncoder]
):
    """One encoder per (spec, backend, threads) in the process; the two most recently used stay
    loaded."""
    with _encoders_lock:
        encoder = _encoders.pop(key, None) or make()
        _encoders[key] = encoder
        while len(_encoders) > _LOADED_ENCODERS:
            _encoders.popitem(last=False)
        return encoder


def load_encoder(spec: EncoderSpec) -> Encoder:
    """The PyTorch fp32 encoder for ``spec``, shared within the process."""
    return _shared((spec, "torch", None), lambda: Encoder(spec))


def encoder_for(
    version: ModelVersion,
    backend: str = "torch",
    cache_dir: Path | None = None,
    *,
    threads: int | None = None,
) -> Encoder | OnnxEncoder:
    """The encoder of a model version on ``backend`` (a generation's), refused when the
    version's files no longer make its fingerprint. ONNX exports are cached in ``cache_dir``;
    ``threads`` is ONNX Runtime's per call (default: one per core)."""
    spec = spec_of(version)
    if backend in EXPORTED and cache_dir is None:
        raise InvalidOptionError(f"The {backend} backend needs a folder for its exports.")
    threads = threads if backend in EXPORTED else None
    encoder = _shared(
        (spec, backend, threads),
        lambda: make_encoder(spec, backend, version.fingerprint, cache_dir or Path(), threads),
    )
    if encoder.fingerprint != version.fingerprint:
        raise ModelMismatchError(
            f"The files of model version {version.id} ({version.path or 'the bundled model'}) "
            f"no longer match its fingerprint {version.fingerprint[:12]}: they were changed "
            "after it was registered. Serve another version (`searchapp models list`, "
            "`searchapp models promote ID`)."
        )
    return encoder


def query_encoder_for(
    version: ModelVersion, backend: str, cache_dir: Path, wanted: str = QUERY_BACKEND.default
) -> Encoder | OnnxEncoder:
    """The encoder for the queries of a generation of ``version`` embedded by ``backend``, on
    the ``wanted`` query backend where it can (see ``searchapp.backends.query_backend``); one
    thread per query on ONNX Runtime, the fastest for one short text."""
    chosen = query_backend(backend, version.fingerprint, cache_dir, wanted)
    return encoder_for(version, chosen, cache_dir, threads=1)


def require_version(session: Session, version_id: int) -> ModelVersion:
    """Model version ``version_id``, or a clear error when it is gone."""
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise UnknownVersionError(
            f"There is no model version {version_id}: `searchapp models list` shows those there "
            "are (a generation naming a missing version means a damaged store: `searchapp check`)."
        )
    return version


def active_generation(session: Session) -> IndexGeneration | None:
    return session.execute(
        select(IndexGeneration).where(IndexGeneration.status == "active")
    ).scalar_one_or_none()


def require_active_generation(
    session: Session, generation_id: int | None = None
) -> tuple[IndexGeneration, ModelVersion]:
    """The served generation (or ``generation_id``) and its model version."""
    if generation_id is not None:
        generation = session.get(IndexGeneration, generation_id)
        if generation is None:
            raise UnknownVersionError(f"There is no index generation {generation_id}.")
    else:
        generation = active_generation(session)
    if generation is None:
        raise NoIndexError(
            "Nothing is indexed in this home yet: run `searchapp index FOLDER` first "
            "(or pass --home to use another home)."
        )
    return generation, require_version(session, generation.model_version_id)


def register_version(
    session: Session,
    encoder: Encoder | ModelFacts,
    *,
    name: str,
    status: str,
    parent_id: int | None = None,
    base_model: str | None = None,
) -> ModelVersion:
    """Record ``encoder`` as a model version, or return the existing one with its fingerprint.

    ``base_model``: the model it started from, as the user named it (None: the bundled one)."""
    fingerprint = encoder.fingerprint
    existing = session.execute(
        select(ModelVersion).where(ModelVersion.fingerprint == fingerprint)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    spec = encoder.spec
    version = ModelVersion(
        name=name,
        path=spec.path,
        pooling=spec.pooling,
        layer=spec.layer,
        max_seq_length=spec.max_seq_length,
        query_prompt=spec.query_prompt,
        document_prompt=spec.document_prompt,
        dimension=encoder.dimension,
        base_model=base_model,
        fingerprint=fingerprint,
        parent_id=parent_id,
        status=status,
    )
    session.add(version)
    session.flush()
    return version


def ensure_active_generation(
    db: Database,
    spec: EncoderSpec | None = None,
    backend: str = "auto",
    base_model: str | None = None,
) -> tuple[IndexGeneration, ModelVersion]:
    """The served generation; a fresh home gets one for ``spec`` (default: the bundled model),
    embedded by ``backend``; ``base_model`` names the model ``spec``'s folder was made from.

    When the home already serves a model and ``spec`` asks for different pooling or layer, this
    refuses rather than mixing vectors of two models in one index.
    """
    with db.write() as session:
        db.serialize(session)  # two first index runs side by side make one version, not two
        generation = active_generation(session)
        if generation is not None:
            version = require_version(session, generation.model_version_id)
            if spec is not None and (spec.pooling, spec.layer) != (version.pooling, version.layer):
                raise InvalidOptionError(
                    f"This home serves model version {version.id} (pooling {version.pooling}, "
                    f"layer {version.layer or 'final'}); its index cannot take vectors of "
                    f"pooling {spec.pooling}, layer {spec.layer or 'final'}. Use a new --home, "
                    "or train and promote a version with those settings."
                )
            return generation, version
        spec = spec or EncoderSpec()
        # The bundled model is described by its configuration: PyTorch is loaded only if the
        # backend needs it (or its export is not cached yet).
        model = bundled_model_facts(spec) if spec.path is None else load_encoder(spec)
        label = (
            f"{base_model or BUNDLED_MODEL_NAME} ({spec.pooling}, layer {spec.layer or 'final'})"
        )
        version = register_version(
            session, model, name=label, status="active", base_model=base_model
        )
        version.status = "active"
        generation = IndexGeneration(
            model_version_id=version.id,
            status="active",
            backend=resolve(backend),
            activated_at=datetime.now(UTC),
        )
        session.add(generation)
        session.flush()
        return generation, version


def needed_said(judged: int, needed: int | None) -> str:
    """What a training the gate could not serve for want of judgements lacks, in words ("12
    judged queries; the gate needs about 100 to tell whether training helps") and what the
    learning curve shows near that many; empty when more judgements would not change it."""
    if needed is None:
        return ""
    said = f"{judged} judged queries; the gate needs about {needed} to tell whether training helps"
    curve = curve_said(judged)
    return f"{said}; {curve}" if curve else said


@dataclass(frozen=True)
class VersionRow:
    """A model version as listed to people: what it is, whether it is served, how it scored."""

    id: int
    name: str
    status: str
    pooling: str
    layer: int | None
    fingerprint: str
    created_at: datetime
    metrics: dict | None
    dense_weight: float | None = None  # hybrid's blend weight fitted for it; None: the default
    base_model: str = BUNDLED_MODEL_NAME  # the model it started from (a name or a folder)
    dimension: int = 384

    @property
    def gate(self) -> str:
        """nDCG@10 before -> after on the by-document held-out queries (or the evaluation set)."""
        if not self.metrics:
            return "-"
        return f"{self.metrics['before']['ndcg@10']:.4f}->{self.metrics['after']['ndcg@10']:.4f}"

    @property
    def decided_on(self) -> str:
        """The comparison the gate decided on: the change and its interval, on which queries."""
        if not self.metrics or "gate" not in self.metrics:  # none, or trained before the gate
            return "-"
        rule = self.metrics.get("gate_rule", "by-document")
        two_part = rule == "two-part" and self.metrics.get("seen")
        comparison = self.metrics["seen"] if two_part else self.metrics["gate"]
        about = "held-out queries about trained documents" if two_part else "held-out queries"
        if not two_part and self.metrics.get("eval_set"):  # gated on --eval-beir's queries
            about = f"queries of the evaluation set {self.metrics['eval_set']}"
        if self.metrics.get("pooled"):  # two-part --folds: both parts pooled
            comparison, about = self.metrics["pooled"], "judged queries, each held out once"
        if self.metrics.get("folds"):  # --folds: every judged query held out once
            about += f" ({self.metrics['folds']} folds)"
        if not comparison.get("queries"):
            return f"{rule}: no held-out queries"
        low, high = comparison["interval"]
        return (
            f"{rule}: {comparison['gain']:+.4f} ({low:+.4f}..{high:+.4f}) "
            f"on {comparison['queries']} {about}"
        )

    @property
    def needed(self) -> str:
        """For a version the gate could not decide on: how many judged queries it would take."""
        metrics = self.metrics or {}
        return needed_said(metrics.get("judged_queries", 0), metrics.get("judgements_needed"))

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "pooling": self.pooling,
            "layer": self.layer,
            "base_model": self.base_model,
            "dimension": self.dimension,
            "fingerprint": self.fingerprint,
            "created_at": self.created_at.isoformat(),
            "gate": self.metrics,
            "decided_on": self.decided_on,
            "judgements_needed": (self.metrics or {}).get("judgements_needed"),
            "needed": self.needed,  # in words, with what the learning curve shows there
            "dense_weight": self.dense_weight,
        }


def list_versions(db: Database) -> list[VersionRow]:
    with db.read() as session:
        versions = session.execute(select(ModelVersion).order_by(ModelVersion.id)).scalars().all()
        return [
            VersionRow(
                id=v.id,
                name=v.name,
                status=v.status,
                pooling=v.pooling,
                layer=v.layer,
                fingerprint=v.fingerprint,
                created_at=v.created_at,
                metrics=json.loads(v.metrics_json) if v.metrics_json else None,
                dense_weight=v.dense_weight,
                base_model=v.base_model or BUNDLED_MODEL_NAME,
                dimension=v.dimension,
            )
            for v in versions
        ]
