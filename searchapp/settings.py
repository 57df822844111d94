"""Where searchapp keeps its data, and the knobs that shape an index.

The data directory (the "home") holds the database, the vector index files and trained models. It is
chosen by ``--home``, then the ``SEARCHAPP_HOME`` environment variable, then a per-user data
directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir

HOME_ENV = "SEARCHAPP_HOME"
DATABASE_ENV = "SEARCHAPP_DATABASE_URL"

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
    parse_timeout_s: float = 60.0  # per file; a parser that runs longer is stopped
    parse_memory_mb: int = 2048  # address space of the parsing process

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def write_lock_path(self) -> Path:
        return self.home / "write.lock"

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """Resolve the home directory (argument, then environment, then per-user default)."""
        chosen = home or os.environ.get(HOME_ENV) or user_data_dir("searchapp", appauthor=False)
        path = Path(chosen).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(
                f"The searchapp home {path} is a file, not a directory: pass --home DIR "
                f"or set {HOME_ENV} to a directory."
            )
        path.mkdir(parents=True, exist_ok=True)
        url = os.environ.get(DATABASE_ENV) or f"sqlite:///{path / 'searchapp.db'}"
        return cls(home=path, database_url=url)
