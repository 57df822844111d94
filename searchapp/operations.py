"""Long operations, each stated once: its options, its typed result, and the function that runs it.

An ``Operation`` is ``run(settings, options, progress) -> result``: indexing folders, importing
a BEIR corpus, removing a folder, watching folders, training, promoting a version, rolling back,
repairing the store. The command line runs one in its own process; a job (``searchapp.jobs``)
stores the operation's name and its options as JSON and calls the same ``run`` in a process of
its own; the UI and the API build options objects and read typed results back. Each is registered
by lazy ``module:name`` references, so that importing this module (``searchapp --help``) loads
neither torch nor the write side.

Example::

    summary = execute("index", settings, IndexOptions(paths=("/home/me/notes",)), progress)
    job_id = jobs.start(settings, db, "index", IndexOptions(paths=("/home/me/notes",)))
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from searchapp.errors import InvalidOptionError
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.settings import Settings


class _PlainResult:
    """A result whose JSON is its fields, as they are."""

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: dict) -> Self:
        return cls(**data)


@dataclass(frozen=True)
class IndexOptions:
    """Index folders (or single files), incrementally; ``model``, ``pooling`` and ``layer``
    shape a new home (``model``: a sentence-transformers folder or name; None: the bundled one)."""

    paths: tuple[str, ...]
    ignore: tuple[str, ...] = ()
    pooling: str | None = None
    layer: int | None = None
    model: str | None = None
    query_prompt: str | None = None  # with model: over the model's own ("": none)
    document_prompt: str | None = None

    def __post_init__(self) -> None:
        if not self.paths:
            raise InvalidOptionError("Nothing to index: give one or more folders (or --beir DIR).")


@dataclass(frozen=True)
class ImportOptions:
    """Import a BEIR folder's ``corpus.jsonl`` (each record a document)."""

    beir: str
    pooling: str | None = None
    layer: int | None = None
    model: str | None = None
    query_prompt: str | None = None  # with model: over the model's own ("": none)
    document_prompt: str | None = None


@dataclass(frozen=True)
class WatchOptions:
    """Index folders now, then again whenever a file in them changes, until cancelled."""

    paths: tuple[str, ...]
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemoveOptions:
    """Forget an indexed folder (its documents, chunks, vectors and feedback); files stay."""

    folder: str


@dataclass(frozen=True)
class RemoveResult(_PlainResult):
    folder: str
    documents: int


@dataclass(frozen=True)
class WatchResult(_PlainResult):
    """What a watcher did before it was stopped."""

    runs: int


@dataclass(frozen=True)
class PromoteOptions:
    """Serve model version ``version`` (its generation embedded first, if it has none)."""

    version: int
    backend: str | None = None


@dataclass(frozen=True)
class RollbackOptions:
    """Serve the generation that was served before the current one."""


@dataclass(frozen=True)
class ServedResult(_PlainResult):
    """Which model version and index generation a promotion or a rollback serves now."""

    version: int
    generation: int
    backend: str


@dataclass(frozen=True)
class SwitchOptions:
    """Serve a new model version made from another model (a sentence-transformers folder or
    name): every chunk embedded anew while search goes on, served unless worse with confidence
    on the evaluation set (``eval_beir``'s split, else the earlier held-out queries)."""

    model: str
    pooling: str | None = None
    layer: int | None = None
    eval_beir: str | None = None
    eval_split: str = "test"
    force: bool = False
    confidence: float = 0.95
    query_prompt: str | None = None  # over the model's own ("": none)
    document_prompt: str | None = None


@dataclass(frozen=True)
class SwitchResult(_PlainResult):
    """The new model's version and generation, whether it is served and why, and how the two
    models compared (``compared`` empty when there was nothing to compare them on)."""

    version: int
    generation: int
    base_model: str
    dimension: int
    served: bool
    reason: str
    compared_on: str
    before: dict[str, float]
    after: dict[str, float]
    compared: dict[str, object]
    seconds: float


@dataclass(frozen=True)
class RepairOptions:
    """Rebuild what can be rebuilt from SQL, then check the store."""


@dataclass(frozen=True)
class CheckResult:
    """The store's checks (after a repair, what it did)."""

    ok: bool
    checks: tuple[tuple[str, bool, str], ...]  # (name, ok, detail)
    repaired: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in self.checks],
            "repaired": list(self.repaired),
        }

    @classmethod
    def from_json(cls, data: dict) -> CheckResult:
        checks = tuple((c["check"], c["ok"], c["detail"]) for c in data["checks"])
        return cls(ok=data["ok"], checks=checks, repaired=tuple(data.get("repaired", ())))


@dataclass(frozen=True)
class Operation:
    """A long operation: its name (a job's kind), what it does, and lazy references to its
    options class, its result class and its ``run(settings, options, progress)``."""

    name: str
    help: str
    options: str  # "module:Class"
    result: str  # "module:Class", with to_json() and from_json()
    run: str  # "module:function"
    resumable: bool  # running an interrupted one again finishes its work (Resume, not Restart)

    def options_type(self) -> type:
        return _load(self.options)

    def result_type(self) -> type:
        return _load(self.result)

    def function(self) -> Callable[[Settings, Any, Progress], Any]:
        return _load(self.run)

    def options_to_json(self, options: object) -> dict[str, Any]:
        self._check(options)
        return _adapter(type(options)).dump_python(options, mode="json")

    def options_from_json(self, data: dict[str, Any]) -> Any:
        """The options object, or ``InvalidOptionError`` saying which field is wrong."""
        import pydantic

        try:
            return _adapter(self.options_type()).validate_python(data)
        except pydantic.ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in error.errors()
            )
            raise InvalidOptionError(f"Options of {self.name} are not valid: {problems}.") from None

    def result_from_json(self, data: Any) -> Any:
        return self.result_type().from_json(data)

    def _check(self, options: object) -> None:
        wanted = self.options_type()
        if not isinstance(options, wanted):
            raise InvalidOptionError(
                f"{self.name} takes {wanted.__name__}, not {type(options).__name__}."
            )


_HERE = "searchapp.operations"
_SUMMARY = "indexer.pipeline:IndexSummary"
_ALL = (
    Operation("index", "index folders, incrementally", f"{_HERE}:IndexOptions", _SUMMARY,
              "indexer.folders:run_index", resumable=True),
    Operation("import", "import a BEIR corpus", f"{_HERE}:ImportOptions", _SUMMARY,
              "indexer.beir_import:run_import", resumable=True),
    Operation("watch", "keep folders indexed while it runs", f"{_HERE}:WatchOptions",
              f"{_HERE}:WatchResult", "indexer.watch:run_watch", resumable=True),
    Operation("remove", "forget an indexed folder", f"{_HERE}:RemoveOptions",
              f"{_HERE}:RemoveResult", "indexer.folders:run_remove", resumable=True),
    Operation("train", "fine-tune the model on pairs; serve it if better",
              "indexer.training.options:TrainOptions",
              "indexer.training.retrain:TrainingReport",
              "indexer.training.retrain:run_train", resumable=False),
    Operation("promote", "serve a model version", f"{_HERE}:PromoteOptions",
              f"{_HERE}:ServedResult", "indexer.generations:run_promote", resumable=True),
    Operation("rollback", "serve the previous version again", f"{_HERE}:RollbackOptions",
              f"{_HERE}:ServedResult", "indexer.generations:run_rollback", resumable=True),
    Operation("switch", "serve a model made from another base model", f"{_HERE}:SwitchOptions",
              f"{_HERE}:SwitchResult", "indexer.model_switch:run_switch", resumable=False),
    Operation("repair", "rebuild what can be rebuilt from SQL", f"{_HERE}:RepairOptions",
              f"{_HERE}:CheckResult", "searchapp.health:run_repair", resumable=True),
)  # fmt: skip
OPERATIONS: dict[str, Operation] = {op.name: op for op in _ALL}


def get(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise InvalidOptionError(
            f"Unknown operation {name!r}: choose one of {', '.join(OPERATIONS)}."
        ) from None


def execute(
    name: str, settings: Settings, options: object, progress: Progress = NO_PROGRESS
) -> Any:
    """Run operation ``name`` here, now; returns its typed result."""
    operation = get(name)
    operation._check(options)
    return operation.function()(settings, options, progress)


def _load(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


_ADAPTERS: dict[type, Any] = {}


def _adapter(cls: type) -> Any:
    """pydantic's converter between ``cls`` and JSON (paths, tuples, nested options)."""
    if cls not in _ADAPTERS:
        import pydantic

        _ADAPTERS[cls] = pydantic.TypeAdapter(cls)
    return _ADAPTERS[cls]
