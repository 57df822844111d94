"""Where searchapp keeps its data, and the knobs that shape an index.

The data directory (the "home") holds the database, the vector index files and trained models. It is
chosen by ``--home``, then the ``SEARCHAPP_HOME`` environment variable, then a per-user data
directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

from searchapp.choices import BACKEND, KEYWORD_ENGINE, QUERY_BACKEND
from searchapp.errors import NoIndexError, PathNotFoundError

HOME_ENV = "SEARCHAPP_HOME"
DATABASE_ENV = "SEARCHAPP_DATABASE_URL"
BACKEND_ENV = "SEARCHAPP_BACKEND"
QUERY_BACKEND_ENV = "SEARCHAPP_QUERY_BACKEND"
KEYWORD_ENGINE_ENV = "SEARCHAPP_KEYWORD_ENGINE"
CACHE_ENV = "SEARCHAPP_CACHE"
DATABASE_FILE = "searchapp.db"

DEFAULT_IGNORE = (
    "node_modules",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    "venv",
    "*.tmp",
    "~$*",
)


@dataclass(frozen=True)
class Settings:
    """Everything a store, an indexer or a search needs to find its data."""

    home: Path
    database_url: str
    chunk_tokens: int = 256
    chunk_overlap_tokens: int = 32
    ignore: tuple[str, ...] = field(default=DEFAULT_IGNORE)
    parse_timeout_s: float = field(
        default=60.0,
        metadata={"flag": "--parse-timeout", "metavar": "SECONDS",
                  "help": "stop parsing a file after this long"},
    )  # fmt: skip
    backend: str = field(
        default=BACKEND.default,
        metadata={"flag": "--backend", "choices": BACKEND.values,
                  "help": f"{BACKEND.help}; also ${BACKEND_ENV}"},
    )  # fmt: skip
    # Read by search, not by index (an option of every command, see the CLI, and an environment
    # variable, so that the UI's and the API's processes follow it).
    query_backend: str = QUERY_BACKEND.default
    keyword_engine: str = KEYWORD_ENGINE.default  # $SEARCHAPP_KEYWORD_ENGINE
    parse_memory_mb: int = field(
        default=2048,
        metadata={"flag": "--parse-memory", "metavar": "MB",
                  "help": "memory limit of the parsing process"},
    )  # fmt: skip
    ocr_lang: str = field(
        default="eng",
        metadata={"flag": "--ocr-lang", "metavar": "LANG",
                  "help": "language(s) of scanned pages and images, as Tesseract names them "
                          "(deu, eng+fra)"},
    )  # fmt: skip
    ocr: bool = field(
        default=True,
        metadata={"flag": "--no-ocr", "help": "do not read scanned pages and images by OCR"},
    )  # fmt: skip

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def backends_dir(self) -> Path:
        """Exports of model versions for other runtimes (ONNX), one folder per fingerprint.

        Derived files, checked against their fingerprint and rebuilt when missing, so they live
        in the user's cache (``$SEARCHAPP_CACHE``, else the platform's cache folder), shared by
        every home that serves the same model.
        """
        return self.cache_dir / "backends"

    @property
    def ocr_cache_dir(self) -> Path:
        """Text read by OCR, by the hash of the file's bytes and page (see ``indexer.ocr``)."""
        return self.cache_dir / "ocr"

    @property
    def cache_dir(self) -> Path:
        """The user's cache: ``$SEARCHAPP_CACHE``, else the platform's cache folder."""
        cache = os.environ.get(CACHE_ENV) or user_cache_dir("searchapp", appauthor=False)
        return Path(cache).expanduser()

    @property
    def write_lock_path(self) -> Path:
        return self.home / "write.lock"

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None, *, create: bool = True) -> Settings:
        """Resolve the home directory (argument, then environment, then per-user default).

        ``create=False`` is for commands that only read: a home that does not exist (a mistyped
        ``--home``) is refused with ``NoIndexError`` and nothing is created.
        """
        chosen = home or os.environ.get(HOME_ENV) or user_data_dir("searchapp", appauthor=False)
        path = Path(chosen).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise PathNotFoundError(
                f"The searchapp home {path} is a file, not a directory: pass --home DIR "
                f"or set {HOME_ENV} to a directory."
            )
        database = path / DATABASE_FILE
        url = os.environ.get(DATABASE_ENV) or f"sqlite:///{database}"
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir() or (url.endswith(f"/{database}") and not database.is_file()):
            raise NoIndexError(
                f"There is no searchapp index at {path}: check --home (or {HOME_ENV}), "
                "or index a folder there first with `searchapp index FOLDER`."
            )
        backend = BACKEND.check(os.environ.get(BACKEND_ENV) or BACKEND.default)
        queries = QUERY_BACKEND.check(os.environ.get(QUERY_BACKEND_ENV) or QUERY_BACKEND.default)
        engine = KEYWORD_ENGINE.check(os.environ.get(KEYWORD_ENGINE_ENV) or KEYWORD_ENGINE.default)
        return cls(home=path, database_url=url, backend=backend, query_backend=queries,
                   keyword_engine=engine)  # fmt: skip
