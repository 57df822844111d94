"""A home's base model: any sentence-transformers model, by folder or by name, copied in.

``searchapp index --model NAME_OR_PATH`` starts a new home from it. The model is found first (a
folder, or a name in the Hugging Face cache, downloaded where the hub can be reached), so that a
wrong name creates nothing. It is then copied into the home's models folder, which keeps the home
whole when a cache is cleaned, and its conventions are read from the copy: its pooling, its
maximum length and the prompts its queries and documents take (``prompts`` in
``config_sentence_transformers.json``). All of them are part of the model version's fingerprint.

Example::

    folder = locate("intfloat/e5-small-v2")            # before anything is created
    e5 = ModelChoice("intfloat/e5-small-v2", query_prompt="query: ", document_prompt="passage: ")
    generation, version = start_home(settings, db, e5)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from searchapp.choices import POOLING
from searchapp.encoder import MAX_SEQ_LENGTH, EncoderSpec, check_modules, requested_spec
from searchapp.errors import InvalidOptionError, ModelMismatchError, PathNotFoundError
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import IndexGeneration, ModelVersion

# The names sentence-transformers models give the prompt of the texts searched (e5: "passage").
DOCUMENT_PROMPTS = ("document", "passage", "corpus", "doc")
BASE_PREFIX = "base-"  # a base model's copy in the home's models folder
_CONFIGS = ("config.json", "modules.json")


def recorded_name(given: str) -> str:
    """How a version records the model it started from: a folder's absolute path, else the
    name as given."""
    path = Path(given).expanduser()
    return str(path.resolve()) if path.exists() else given


def locate(name: str) -> Path:
    """The local folder of model ``name``: the folder itself, or its snapshot in the Hugging
    Face cache, downloaded first unless ``HF_HUB_OFFLINE`` is set. A clear error otherwise,
    before anything is created."""
    path = Path(name).expanduser()
    if path.exists():
        return _complete(path.resolve(), name)
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise PathNotFoundError(
            f"There is no model folder {path}: check the path given to --model."
        )
    return _complete(_from_hub(name), name)


def _complete(folder: Path, name: str) -> Path:
    """``folder``, refused unless it holds a model's configuration (a transformer's, or the
    modules.json of a sentence-transformers folder) and weights (a Dense module's in its own)."""
    if not folder.is_dir() or not any((folder / config).is_file() for config in _CONFIGS):
        raise PathNotFoundError(
            f"{name} is not a model folder (it has no config.json or modules.json): pass a "
            "sentence-transformers model folder, or a model name such as "
            "sentence-transformers/all-MiniLM-L6-v2."
        )
    if not any(p.suffix in (".safetensors", ".bin") for p in folder.rglob("*") if p.is_file()):
        raise PathNotFoundError(
            f"The model folder {folder} is incomplete: it has no weights (*.safetensors or "
            "*.bin). Copy or download the whole model again."
        )
    return folder


def _from_hub(name: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        return Path(snapshot_download(name, local_files_only=offline))
    except LocalEntryNotFoundError:
        reach = "HF_HUB_OFFLINE is set" if offline else "the hub cannot be reached from here"
        raise PathNotFoundError(
            f"The model {name} is not in this machine's Hugging Face cache and {reach}: download "
            f"it where the network is reachable (`hf download {name}`, then copy the cache), or "
            "pass the folder of a saved model to --model."
        ) from None
    except (RepositoryNotFoundError, GatedRepoError, HFValidationError) as error:
        raise PathNotFoundError(
            f"There is no model {name} that can be downloaded ({type(error).__name__}): check the "
            "name (as on huggingface.co, e.g. intfloat/e5-small-v2), or log in for a gated "
            "model (`hf auth login`)."
        ) from None


@dataclass(frozen=True)
class ModelChoice:
    """A model as the user names it (a folder or a name), and what they choose of its
    conventions over its own: pooling, layer, the prompts (None: the model's own; "": none)."""

    name: str
    pooling: str | None = None
    layer: int | None = None
    query_prompt: str | None = None
    document_prompt: str | None = None

    @classmethod
    def of(cls, options: Any) -> ModelChoice:
        """The choice an operation's options make (``model``, ``pooling``, ``layer``…)."""
        return cls(options.model, options.pooling, options.layer, options.query_prompt,
                   options.document_prompt)  # fmt: skip


def import_model(settings: Settings, choice: ModelChoice) -> EncoderSpec:
    """Copy the chosen model into the home's models folder as a searchapp model (a Transformer,
    a Pooling module, any Dense layers, then Normalize, with the pooling and prompts chosen) and
    return its spec: pooling, maximum length and prompts as the model states them, but what the
    choice overrides."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its bars for loading and saving: noise here
    name, pooling = choice.name, choice.pooling
    folder = locate(name)
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    check_modules(model, name)
    mode = pooling or model[1].get_config_dict()["pooling_mode"]
    if mode not in POOLING.values:
        raise ModelMismatchError(
            f"{name} pools by {mode!r}; searchapp pools by {', '.join(POOLING.values)}: pass "
            "--pooling to choose one (the model was trained for its own)."
        )
    if not model[1].get_config_dict().get("include_prompt", True):
        raise ModelMismatchError(
            f"{name} leaves its prompt's tokens out of its pooling, which searchapp does not do "
            "yet: choose another model."
        )
    if pooling is not None:
        key = list(model._modules)[1]
        model._modules[key] = Pooling(model[0].get_embedding_dimension(), pooling_mode=pooling)
    if not isinstance(model[-1], Normalize):  # searchapp's vectors are unit length: say so too
        model.append(Normalize())
    prompts = dict(model.prompts or {})
    default = prompts.get(model.default_prompt_name or "", "")
    query = (
        choice.query_prompt if choice.query_prompt is not None else prompts.get("query", default)
    )
    document = choice.document_prompt
    if document is None:
        document = next((prompts[n] for n in DOCUMENT_PROMPTS if prompts.get(n)), default)
    model.prompts = {"query": query, "document": document}  # the copy states what it is run with
    model.default_prompt_name = None
    return EncoderSpec(
        path=str(_saved(settings, name, model)),
        pooling=mode,
        layer=choice.layer,
        max_seq_length=min(model.max_seq_length or MAX_SEQ_LENGTH, MAX_SEQ_LENGTH),
        query_prompt=query,
        document_prompt=document,
    )


def _saved(settings: Settings, name: str, model) -> Path:  # type: ignore[no-untyped-def]
    """``model`` saved whole into the home's models folder, named after ``name`` and a hash of its
    files: the same model imported again finds its copy, and a copy that a version uses is never
    replaced."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name if Path(name).exists() else name)
    slug = slug.strip("-.") or "model"
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{BASE_PREFIX}{slug}.partial-", dir=settings.models_dir))
    try:
        model.save(str(work))
        target = settings.models_dir / f"{BASE_PREFIX}{slug}-{_files_digest(work)[:12]}"
        if not target.exists():
            work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _files_digest(folder: Path) -> str:
    """A hash of the folder's files but its model card (which may name the day it was made)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "README.md"):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def start_home(
    settings: Settings, db: Database, choice: ModelChoice
) -> tuple[IndexGeneration, ModelVersion]:
    """The served generation of a home that starts from the chosen model: made now for a new
    home; an existing home must already serve a version of that model."""
    from searchapp.versions import active_generation, ensure_active_generation, require_version

    wanted = recorded_name(choice.name)
    locate(choice.name)  # a wrong name is refused before anything is written
    with db.writer_lock():
        with db.read() as session:
            generation = active_generation(session)
            served = require_version(session, generation.model_version_id) if generation else None
        if served is not None:
            if (served.base_model or "") != wanted:
                raise InvalidOptionError(
                    f"This home serves model version {served.id}, made from "
                    f"{served.base_model or 'the bundled all-MiniLM-L6-v2'}, not {wanted}: "
                    "use a new --home for that model."
                )
            for given, kept, flag in ((choice.query_prompt, served.query_prompt, "--query-prompt"),
                                      (choice.document_prompt, served.document_prompt,
                                       "--document-prompt")):  # fmt: skip
                if given is not None and given != kept:
                    raise InvalidOptionError(
                        f"This home's model version {served.id} takes {kept!r} as its "
                        f"{flag[2:]}, not {given!r}: `searchapp models switch {wanted} "
                        f"{flag} ...` makes a version that does."
                    )
            return ensure_active_generation(db, _requested(served, choice.pooling, choice.layer))
        spec = import_model(settings, choice)
        return ensure_active_generation(db, spec, settings.backend, base_model=wanted)


def _requested(served: ModelVersion, pooling: str | None, layer: int | None) -> EncoderSpec | None:
    """What ``--pooling``/``--layer`` ask of a home that already serves its model (checked
    against the served version by ``ensure_active_generation``)."""
    if pooling is None and layer is None:
        return None
    return EncoderSpec(
        pooling=pooling or served.pooling, layer=layer if layer is not None else served.layer
    )


def requested_model(settings: Settings, options: Any) -> EncoderSpec | None:
    """What an index run (``IndexOptions``, ``ImportOptions``) asks of its home's model: with
    ``--model`` the served version is made from it first, or checked; else the bundled model's
    ``--pooling``/``--layer``."""
    if options.model is None:
        return requested_spec(options.pooling, options.layer)
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    start_home(settings, db, ModelChoice.of(options))
    return None
