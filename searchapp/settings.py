"""Where searchapp keeps its data, the knobs that shape an index, and the environment variables.

The data directory (the "home") holds the database, the vector index files and trained models. It is
chosen by ``--home``, then the ``SEARCHAPP_HOME`` environment variable, then a per-user data
directory. Every environment variable searchapp reads is a ``Variable`` of ``ENVIRONMENT``, stated
once; docs/OPTIONS.md lists them with every command's options (``searchapp.options_table``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

from searchapp.choices import BACKEND, KEYWORD_ENGINE, QUERY_BACKEND, Choice
from searchapp.errors import NoIndexError, PathNotFoundError


@dataclass(frozen=True)
class Variable:
    """An environment variable searchapp reads, stated once (docs/OPTIONS.md lists them all)."""

    name: str
    help: str
    choice: Choice | None = None

    def get(self) -> str | None:
        """Its value (checked against its choice, whose default it falls back to), or None."""
        value = os.environ.get(self.name) or None
        if self.choice is not None:
            return self.choice.check(value or self.choice.default)
        return value


HOME = Variable("SEARCHAPP_HOME", "the home (database, index files, models) when --home is not "
                "given; else the per-user data folder")  # fmt: skip
DATABASE = Variable("SEARCHAPP_DATABASE_URL", "the database when --database-url is not given "
                    "(postgresql+psycopg://…); else SQLite in the home")  # fmt: skip
BACKEND_VARIABLE = Variable("SEARCHAPP_BACKEND", BACKEND.help, BACKEND)
QUERY_BACKEND_VARIABLE = Variable("SEARCHAPP_QUERY_BACKEND", QUERY_BACKEND.help, QUERY_BACKEND)
KEYWORD_ENGINE_VARIABLE = Variable("SEARCHAPP_KEYWORD_ENGINE", KEYWORD_ENGINE.help, KEYWORD_ENGINE)
CACHE = Variable("SEARCHAPP_CACHE", "the cache of model exports and OCR text, shared by every "
                 "home; else the platform's cache folder")  # fmt: skip
API_TOKEN = Variable("SEARCHAPP_API_TOKEN", "the bearer token `searchapp serve` asks for (needed "
                     "beyond loopback)")  # fmt: skip
UI_TOKEN = Variable("SEARCHAPP_UI_TOKEN", "the token the web UI asks each browser session for "
                    "(needed beyond loopback, where SEARCHAPP_API_TOKEN also serves)")  # fmt: skip
ENVIRONMENT = (HOME, DATABASE, BACKEND_VARIABLE, QUERY_BACKEND_VARIABLE, KEYWORD_ENGINE_VARIABLE,
               CACHE, API_TOKEN, UI_TOKEN)  # fmt: skip

HOME_ENV, DATABASE_ENV, CACHE_ENV = HOME.name, DATABASE.name, CACHE.name
BACKEND_ENV, QUERY_BACKEND_ENV = BACKEND_VARIABLE.name, QUERY_BACKEND_VARIABLE.name
KEYWORD_ENGINE_ENV, TOKEN_ENV = KEYWORD_ENGINE_VARIABLE.name, API_TOKEN.name
UI_TOKEN_ENV = UI_TOKEN.name
DATABASE_FILE = "searchapp.db"


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (``taskset``, a container's cpuset),
    which ``os.cpu_count()`` ignores; every runtime's thread count starts from it."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


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
        cache = CACHE.get() or user_cache_dir("searchapp", appauthor=False)
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
        chosen = home or HOME.get() or user_data_dir("searchapp", appauthor=False)
        path = Path(chosen).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise PathNotFoundError(
                f"The searchapp home {path} is a file, not a directory: pass --home DIR "
                f"or set {HOME_ENV} to a directory."
            )
        database = path / DATABASE_FILE
        url = DATABASE.get() or f"sqlite:///{database}"
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir() or (url.endswith(f"/{database}") and not database.is_file()):
            raise NoIndexError(
                f"There is no searchapp index at {path}: check --home (or {HOME_ENV}), "
                "or index a folder there first with `searchapp index FOLDER`."
            )
        return cls(home=path, database_url=url, backend=BACKEND_VARIABLE.get(),
                   query_backend=QUERY_BACKEND_VARIABLE.get(),
                   keyword_engine=KEYWORD_ENGINE_VARIABLE.get())  # fmt: skip
