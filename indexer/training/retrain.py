"""Retraining, step by step: gather pairs, mine negatives, fine-tune, evaluate, decide.

The served model never changes during training. The candidate's vectors are built into a new index
generation while searches go on against the old one; the candidate and the current model are both
scored (nDCG@10) on held-out queries (or a named BEIR split) and on the standing set of queries
earlier versions held out, and the new generation is switched in only when the gate says so. The
training mixes in earlier pairs of the served version's line (replay); the pairs a version was
trained and gated on are kept with it (``history``). Otherwise the candidate is kept as a listed,
inactive version and its generation is dropped.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from indexer.generations import (
    activate,
    drop_generation,
    drop_unfinished,
    embed_missing,
    start_generation,
)
from indexer.training.cross_validation import CrossValidation, cross_validate
from indexer.training.fine_tune import fine_tune
from indexer.training.gate import (
    GateDecision,
    decide,
    evaluate_generation,
    fit_blend,
    judgements_needed,
    score_judgements,
)
from indexer.training.history import record_pairs, replay_pairs, standing_set
from indexer.training.losses import training_rows
from indexer.training.mining import mine
from indexer.training.options import PairSources, TrainingOptions, TrainOptions
from indexer.training.pairs import (
    DocumentResolver,
    Judgement,
    PairSet,
    read_beir_pairs,
    read_feedback,
    read_pairs_file,
    split_by_document,
    split_seen,
)
from indexer.training.pseudo_queries import title_queries
from searchapp.encoder import EncoderSpec
from searchapp.errors import PairsError
from searchapp.evaluation import Metrics
from searchapp.learning_curve import nearest
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.search import Searcher
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import IndexGeneration, ModelVersion
from searchapp.versions import (
    encoder_for,
    load_encoder,
    register_version,
    require_active_generation,
    require_version,
    spec_of,
)

HISTORY_FILE = "training.json"


_NOT_JSON = frozenset({"skipped", "losses"})
_GATE_RECORD = ("before", "after", "gate", "held_out", "standing", "blend", "gate_rule", "seen",
                "held_out_seen", "eval_set", "folds", "judged_queries",
                "judgements_needed", "pooled")  # fmt: skip


@dataclass
class TrainingReport:
    version: int
    loss: str
    pooling: str
    layer: int | None
    pairs_used: int
    pairs_skipped: int
    before: dict[str, float]
    after: dict[str, float]
    promoted: bool
    reason: str
    passed_gate: bool  # whether the gate served it, or would have without --force
    gate: dict[str, object] = field(default_factory=dict)  # Comparison.to_json()
    held_out: dict[str, int] = field(default_factory=dict)  # queries and documents held out
    standing: dict[str, object] = field(default_factory=dict)  # on earlier held-out queries
    gate_rule: str = TrainingOptions.gate
    seen: dict[str, object] = field(default_factory=dict)  # two-part: on trained documents
    pooled: dict[str, object] = field(default_factory=dict)  # two-part --folds: on both parts
    held_out_seen: dict[str, int] = field(default_factory=dict)  # their queries and documents
    replayed: dict[str, int] = field(default_factory=dict)  # earlier queries and pairs mixed in
    eval_set: str | None = None  # "DIR (S split)" when gated on --eval-beir's queries
    blend: dict[str, float] = field(default_factory=dict)  # hybrid nDCG@10 by dense weight
    dense_weight: float | None = None  # hybrid's blend weight fitted for the candidate
    folds: int = 0  # cross-validated over this many folds (0: one held-out split)
    folds_seconds: float = 0.0  # what the cross-validation cost (of ``seconds``)
    judged_queries: int = 0  # queries with a relevant indexed document among the pairs read
    judgements_needed: int | None = None  # not served for want of judgements: how many it needs
    learning_curve: list[dict] = field(default_factory=list)  # then: what the curve shows near
    title_queries: int = 0  # --titles: documents' titles trained on as pseudo-queries
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """Every field but the skipped rows (printed apart) and the loss curve (in history)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_JSON}
        return {**data, "seconds": round(self.seconds, 1)}

    def gate_record(self) -> dict[str, object]:
        """What the version keeps of its training (``metrics_json``; ``VersionRow.metrics``)."""
        return {name: getattr(self, name) for name in _GATE_RECORD}

    @classmethod
    def from_json(cls, data: dict) -> TrainingReport:
        """The report a job stored (``to_json``); the skipped rows and the loss curve are not."""
        names = {f.name for f in fields(cls)} - _NOT_JSON
        return cls(**{name: data[name] for name in names if name in data})


def run_train(settings: Settings, options: TrainOptions, progress: Progress) -> TrainingReport:
    """The ``train`` operation."""
    return retrain(settings, options.sources, options.training, progress=progress)


def load_pairs(db: Database, sources: PairSources, resolver: DocumentResolver) -> PairSet:
    """Step 1: every judgement the sources hold, and the rows that could not be used."""
    pairs = PairSet()
    for path in sources.files:
        pairs.extend(read_pairs_file(Path(path), resolver))
    if sources.beir is not None:
        pairs.extend(read_beir_pairs(Path(sources.beir), sources.split, resolver))
    if sources.feedback or sources.empty:
        pairs.extend(read_feedback(db, resolver))
    return pairs


def split_pairs(
    pairs: PairSet, options: TrainingOptions
) -> tuple[list[Judgement], list[Judgement], list[Judgement]]:
    """(train, held out by document, held out about trained documents: the two-part gate's),
    refusing pairs that cannot train or cannot be judged."""
    # --eval-beir: a set of its own; --folds: every judged query is held out once, by its fold.
    fraction = 0.0 if options.eval_beir or options.folds else options.held_out
    train, held_out = split_by_document(pairs.judgements, fraction, options.seed)
    seen: list[Judgement] = []
    if options.gate == "two-part" and not options.folds:
        wanted = round(counted(pairs.judgements)["queries"] * options.held_out)
        train, seen = split_seen(train, wanted, options.seed)
    if not any(j.relevant for j in train):
        raise PairsError(
            "No usable training pairs: give a pairs file, --beir DIR, or 👍 feedback "
            f"({len(pairs.skipped)} rows were skipped)."
        )
    if options.eval_beir is None and not held_out and not options.folds and not options.force:
        raise PairsError(
            "Too few queries to hold some out for the evaluation gate: add pairs, name an "
            "evaluation set (--eval-beir DIR --eval-split S), or pass --force."
        )
    return train, held_out, seen


def counted(judgements: list[Judgement]) -> dict[str, int]:
    """How many queries, and relevant indexed documents, ``judgements`` hold."""
    relevant = [j for j in judgements if j.relevant_document]
    return {
        "queries": len({j.query for j in relevant}),
        "documents": len({j.doc_id for j in relevant}),
    }


def candidate_spec(served: ModelVersion, options: TrainingOptions) -> EncoderSpec:
    """The served model's spec (its prompts too) with the pooling and layer the options ask for."""
    base = spec_of(served)
    return dataclasses.replace(
        base,
        pooling=options.pooling or base.pooling,
        layer=options.layer if options.layer is not None else base.layer,
    )


def train_candidate(
    output: Path,
    spec: EncoderSpec,
    rows: dict[str, list],
    options: TrainingOptions,
    *,
    progress: Progress,
) -> tuple[EncoderSpec, list[tuple[int, float]]]:
    """Step 3: fine-tune into the model folder ``output``; returns its spec and the loss
    history."""
    partial = output.with_name(output.name + ".partial")
    history = fine_tune(spec, rows, options, partial, progress=progress)
    partial.rename(output)  # a killed run leaves only a .partial folder, removed next time
    (output / HISTORY_FILE).write_text(
        json.dumps({"options": options.to_json(), "loss_history": history}, indent=2)
    )
    return dataclasses.replace(spec, path=str(output)), history


def build_candidate_generation(
    settings: Settings,
    db: Database,
    spec: EncoderSpec,
    served: ModelVersion,
    name: str,
    *,
    progress: Progress,
    switch_to: str | None = None,
) -> tuple[ModelVersion, IndexGeneration]:
    """Step 4: register the candidate and embed every chunk with it, beside the served index.
    A candidate is trained from ``served``; with ``switch_to`` it is that base model instead."""
    with db.write() as session:
        version = register_version(
            session, load_encoder(spec), name=name, status="candidate",
            parent_id=None if switch_to else served.id,
            base_model=switch_to or served.base_model,
        )  # fmt: skip
    generation = start_generation(db, version, settings.backend)
    # Shared: the gate's evaluation then uses this same model.
    encoder = encoder_for(version, generation.backend, settings.backends_dir)
    embed_missing(db, settings, generation, encoder, progress=progress)
    return version, generation


def _judgements(
    db: Database, sources: PairSources, served: ModelVersion, options: TrainingOptions
) -> tuple[PairSet, list[Judgement], list[Judgement], list[Judgement], list[Judgement],
           list[Judgement]]:  # fmt: skip
    """The pairs read, then the judgements split: new training ones, those held out (about
    documents no training query cites, and about trained documents: ``seen``), the earlier
    training queries replayed, and the standing set of earlier held-out queries."""
    resolver = DocumentResolver(db)
    pairs = load_pairs(db, sources, resolver)
    new, held_out, seen = split_pairs(pairs, options)
    replayed = replay_pairs(
        db, resolver, served.id, new, [*held_out, *seen], options.replay, options.seed
    )
    standing = standing_set(db, resolver, [*new, *replayed], [*held_out, *seen])
    return pairs, new, held_out, seen, replayed, standing


def _judge(
    settings: Settings,
    db: Database,
    generations: tuple[int, int],
    held_out: list[Judgement],
    seen: list[Judgement],
    standing: list[Judgement],
    options: TrainingOptions,
    folds: CrossValidation | None = None,
) -> tuple[Metrics, Metrics, GateDecision]:
    """The served generation and the candidate's, scored on the queries neither trained on; the
    gate's decision. ``generations`` is (served, candidate); with ``folds`` (``--folds``) the
    cross-validated scores stand for the held-out ones."""
    served, candidate = generations
    if folds is not None:  # every judged query scored by a model that did not train on it
        before, after = folds.before, folds.after
    else:
        before = evaluate_generation(settings, db, served, held_out, options)
        after = evaluate_generation(settings, db, candidate, held_out, options)
    standing_scores = None
    if standing:
        standing_scores = (
            score_judgements(settings, db, served, standing),
            score_judgements(settings, db, candidate, standing),
        )
    seen_scores = None
    if options.gate == "two-part" and folds is not None:
        seen_scores = folds.seen
    elif options.gate == "two-part":
        seen_scores = (
            score_judgements(settings, db, served, seen),
            score_judgements(settings, db, candidate, seen),
        )
    return before, after, decide(before, after, options, standing_scores, seen_scores)


def retrain(
    settings: Settings,
    sources: PairSources,
    options: TrainingOptions | None = None,
    *,
    progress: Progress = NO_PROGRESS,
    db: Database | None = None,
) -> TrainingReport:
    """Train a candidate on the pairs, gate it on held-out queries, and promote it if better."""
    options = options or TrainingOptions()
    db = db or Database(settings.database_url, lock_path=settings.write_lock_path)
    started = time.perf_counter()
    with db.writer_lock():
        drop_unfinished(db, settings)  # a generation a killed run left half-built
        for leftover in settings.models_dir.glob("*.partial*"):
            shutil.rmtree(leftover, ignore_errors=True)
        with db.read() as session:
            served_generation, served = require_active_generation(session)

        pairs, new, held_out, seen, replayed, standing = _judgements(db, sources, served, options)
        train = [*new, *replayed]

        searcher = Searcher(settings, db, generation_id=served_generation.id)
        mined = mine(
            searcher,
            train,
            per_query=options.negatives_per_query,
            mode=options.mine_from,
            false_negative=options.false_negative,
            progress=progress,
        )
        titled = []
        if options.titles:
            titled = title_queries(
                searcher, options.titles, seed=options.seed, judged={m.query for m in mined},
                per_query=options.negatives_per_query, mode=options.mine_from,
                progress=progress,
            )  # fmt: skip
            mined = [*mined, *titled]
        rows = training_rows(options.loss, mined)
        used = len(next(iter(rows.values())))
        if used < 2:
            raise PairsError(f"Only {used} training rows could be built: add more pairs.")

        folds, folds_started = None, time.perf_counter()
        if options.folds:
            folds = cross_validate(
                searcher, candidate_spec(served, options), new, mined, options,
                settings.models_dir, progress=progress,
            )  # fmt: skip
        folds_seconds = time.perf_counter() - folds_started if folds else 0.0
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        spec, history = train_candidate(
            settings.models_dir / f"{stamp}-{options.loss}", candidate_spec(served, options),
            rows, options, progress=progress,
        )  # fmt: skip
        name = f"{options.loss} on {used} rows ({stamp})"
        version, generation = build_candidate_generation(
            settings, db, spec, served, name, progress=progress
        )

        before, after, decision = _judge(
            settings, db, (served_generation.id, generation.id), held_out, seen, standing,
            options, folds,
        )  # fmt: skip
        # Queries the candidate was not trained on (with --folds it trained on every judged one).
        untrained = [*held_out, *seen, *standing]
        judged_on = (held_out, seen)  # the queries the gate's two parts were scored on
        if folds is not None:
            judged_on = tuple([j for j in new if j.query in scores.per_query]
                              for scores in (folds.before, folds.seen[0]))  # fmt: skip
        weight, curve = None, {}
        judged = counted(pairs.judgements)["queries"]
        needed = judgements_needed(pairs.judgements, options, decision)
        if counted(untrained)["queries"] >= options.min_queries:
            weight, curve = fit_blend(settings, db, generation.id, untrained, options.confidence)
        report = TrainingReport(
            version=version.id, loss=options.loss, pooling=spec.pooling, layer=spec.layer,
            pairs_used=used, pairs_skipped=len(pairs.skipped),
            before=before.to_json(), after=after.to_json(),
            promoted=decision.promote, reason=decision.reason, passed_gate=decision.passed,
            gate=decision.comparison.to_json(), held_out=counted(judged_on[0]),
            standing=decision.standing.to_json() if decision.standing else {},
            gate_rule=options.gate,
            seen=decision.seen.to_json() if decision.seen else {},
            pooled=decision.pooled.to_json() if decision.pooled else {},
            held_out_seen=counted(judged_on[1]), folds=options.folds,
            folds_seconds=round(folds_seconds, 1),
            eval_set=f"{options.eval_beir} ({options.eval_split} split)"
            if options.eval_beir else None,
            blend={str(w): round(v, 6) for w, v in curve.items()}, dense_weight=weight,
            replayed={"queries": len({j.query for j in replayed}), "pairs": len(replayed)},
            judged_queries=judged, title_queries=len(titled),
            judgements_needed=needed, learning_curve=[dataclasses.asdict(point) for point in
                                                      nearest(judged)] if needed else [],
            skipped=pairs.skipped, losses=history,
        )  # fmt: skip
        with db.write() as session:
            row = require_version(session, version.id)
            row.metrics_json = json.dumps(report.gate_record())
            row.dense_weight = weight
            record_pairs(session, version.id, new, [*held_out, *seen])
        if decision.promote:
            activate(db, generation.id)
        else:
            drop_generation(db, settings, generation.id)
    report.seconds = time.perf_counter() - started
    return report
