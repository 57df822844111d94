"""Switch a home to another base model: a new model version and generation, served if not worse.

Every stored chunk is embedded by the new model into a generation of its own while search goes
on against the served one; then the two are compared, on a BEIR split the user names
(``--eval-beir``) or on the queries earlier trainings held out, and the new one is served unless
it is worse with confidence (or ``--force``). ``models rollback`` serves the previous one again.
The chunks stay as they are: a model that reads fewer tokens than the longest chunk is refused.

Example::

    result = run_switch(settings, SwitchOptions("intfloat/e5-small-v2"), progress)
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from indexer.generations import activate, drop_generation, drop_unfinished
from indexer.training.gate import Comparison, compare, score_judgements
from indexer.training.history import standing_set
from indexer.training.pairs import DocumentResolver
from indexer.training.retrain import build_candidate_generation
from searchapp.base_models import ModelChoice, import_model, locate, recorded_name
from searchapp.encoder import EncoderSpec
from searchapp.errors import InvalidOptionError, ModelMismatchError
from searchapp.evaluation import Metrics, evaluate_beir
from searchapp.operations import SwitchOptions, SwitchResult
from searchapp.progress import Progress
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Chunk
from searchapp.versions import load_encoder, require_active_generation


def run_switch(settings: Settings, options: SwitchOptions, progress: Progress) -> SwitchResult:
    """The ``switch`` operation."""
    name = recorded_name(options.model)
    locate(options.model)  # a model that cannot be found changes nothing
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    started = time.perf_counter()
    with db.writer_lock():
        drop_unfinished(db, settings)
        with db.read() as session:
            served_generation, served = require_active_generation(session)
        progress.report("import the model", 0, 1, unit="model", detail=name)
        spec = import_model(settings, ModelChoice.of(options))
        progress.report("import the model", 1, 1, unit="model", detail=name)
        if load_encoder(spec).fingerprint == served.fingerprint:
            raise InvalidOptionError(f"This home already serves {name} (version {served.id}).")
        _check_window(db, spec, name)
        label = f"{name} ({spec.pooling}, layer {spec.layer or 'final'})"
        version, generation = build_candidate_generation(
            settings, db, spec, served, label, progress=progress, switch_to=name
        )
        compared_on, before, after = _scores(settings, db, served_generation.id, generation.id,
                                             options)  # fmt: skip
        comparison = compare(before.per_query, after.per_query, options.confidence)
        serve, reason = _decide(comparison, compared_on, options.force)
        if serve:
            activate(db, generation.id)
        else:
            drop_generation(db, settings, generation.id)
    return SwitchResult(
        version=version.id, generation=generation.id, base_model=name,
        dimension=version.dimension, served=serve, reason=reason, compared_on=compared_on,
        before=before.to_json() if comparison.queries else {},
        after=after.to_json() if comparison.queries else {},
        compared=comparison.to_json() if comparison.queries else {},
        seconds=round(time.perf_counter() - started, 1),
    )  # fmt: skip


def _check_window(db: Database, spec: EncoderSpec, name: str) -> None:
    """Refuse a model that would not read the whole of some stored chunk."""
    encoder = load_encoder(spec)
    room = encoder.max_content_tokens
    longer = 0
    with db.read() as session:
        last = 0
        while texts := session.execute(
            select(Chunk.id, Chunk.text).where(Chunk.id > last).order_by(Chunk.id).limit(2048)
        ).all():
            last = texts[-1][0]
            counted = encoder.tokenizer([text for _, text in texts], add_special_tokens=False)
            longer += sum(len(ids) > room for ids in counted["input_ids"])
    if longer:
        raise ModelMismatchError(
            f"{longer} stored chunks are longer than {name} reads ({room} tokens of text): it "
            "would embed only their beginnings. Index the folders into a new home with "
            f"`searchapp --home NEW index FOLDER --model {name}`, whose chunks fit it."
        )


def _scores(
    settings: Settings, db: Database, served: int, candidate: int, options: SwitchOptions
) -> tuple[str, Metrics, Metrics]:
    """Both generations' dense scores on the evaluation set, and what it was: the BEIR split
    named, else the queries earlier trainings held out; empty metrics when there is neither."""
    if options.eval_beir is not None:
        folder = Path(options.eval_beir)
        before, after = (
            evaluate_beir(Searcher(settings, db, generation_id=g), folder, options.eval_split,
                          ["dense"])["dense"]
            for g in (served, candidate)
        )  # fmt: skip
        return f"{folder} ({options.eval_split} split)", before, after
    standing = standing_set(db, DocumentResolver(db), [], [])
    if not standing:
        nothing = Metrics(0.0, 0.0, 0.0, 0)
        return "", nothing, nothing
    before, after = (score_judgements(settings, db, g, standing) for g in (served, candidate))
    return f"{len(before.per_query)} queries earlier trainings held out", before, after


def _decide(comparison: Comparison, compared_on: str, force: bool) -> tuple[bool, str]:
    """Serve unless worse with confidence; ``force`` serves regardless."""
    if not comparison.queries:
        return True, "served: there is no evaluation set to compare the two models on"
    said = comparison.describe(f"queries of {compared_on}")
    if comparison.high >= 0:
        return True, f"served: not worse with confidence: {said}"
    if force:
        return True, f"forced: worse with confidence: {said}"
    return False, f"not served: worse with confidence: {said}"
