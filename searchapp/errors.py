"""The errors a person acts on, one family: the faces print their message, never a traceback.

Everything a user can meet by their own mistake or by the world's refusal (a busy writer, a missing
folder, a bad pairs file, a full disk) is a ``SearchappError``; its message says what was wrong and
what to do. Any other exception is a bug, and the command line shows its traceback. Importable
without the heavy modules: the command line needs it at start-up.

Exit codes of the ``searchapp`` command, stated here once:

=====  ==================================================================================
code   meaning
=====  ==================================================================================
0      done
1      done, but something was reported as failed (files not indexed, a failed check)
2      refused: a user error (a bad option, a missing folder, nothing indexed, a busy home)
3      the disk is full: nothing stored before was lost; free space and run it again
70     an internal error (a bug): the traceback is printed; please report it
130    interrupted (Ctrl-C): everything committed so far is kept
=====  ==================================================================================
"""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_STORAGE_FULL = 3
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class SearchappError(Exception):
    """A failure a user can act on; the message says what was wrong and what to do.

    ``exit_code`` is the command's exit status, ``http_status`` the API's answer.
    """

    exit_code: int = EXIT_USAGE
    http_status: int = 409  # the request conflicts with the state of the store


class InvalidOptionError(SearchappError, ValueError):
    """An option or argument outside what is accepted (an unknown mode, a negative k, …)."""

    http_status = 422


class PathNotFoundError(SearchappError, FileNotFoundError):
    """A folder, file or home that was named does not exist (or is not what it should be)."""


class NoIndexError(SearchappError):
    """The home has nothing indexed yet, or there is no home at the path given."""

    http_status = 503  # nothing to serve yet: the client is not at fault


class DatabaseUnavailableError(SearchappError):
    """The database cannot be opened: a server that does not answer, a wrong URL or password."""

    http_status = 503


class WriterBusyError(SearchappError):
    """Another process is writing to the same home."""

    http_status = 503


class StorageFullError(SearchappError, OSError):
    """The disk (or quota) holding the home is full; what was committed before is intact."""

    exit_code = EXIT_STORAGE_FULL
    http_status = 507

    def __init__(self, where: str) -> None:
        super().__init__(
            errno.ENOSPC,
            f"No space left for {where}. Nothing stored before was lost and search keeps "
            "serving the last saved index. Free some disk space, then run the same command "
            "again: it goes on from where it stopped.",
        )

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class BeirFormatError(SearchappError, ValueError):
    """A BEIR folder or file that does not have the expected shape."""


class UnreadableFileError(SearchappError):
    """A file that could not be turned into text; the message says why."""


class NotADocument(SearchappError):
    """A file of unknown type whose bytes are not text: skipped, not a failure."""


class CorruptIndexError(SearchappError):
    """An index file that does not match what SQL recorded for it (rebuilt from SQL on open)."""


class PairsError(SearchappError, ValueError):
    """Training pairs that cannot be used: none usable, too few to hold some out, a bad row."""


class UnknownVersionError(SearchappError, LookupError):
    """A model version or index generation that does not exist, or cannot be served."""

    http_status = 503  # nothing to serve yet: the client is not at fault


class ModelMismatchError(SearchappError):
    """A model folder that disagrees with its record (other weights, pooling or layer)."""


class UnknownJobError(SearchappError, LookupError):
    """A job id that names no job."""

    http_status = 404


class UnknownDocumentError(SearchappError, LookupError):
    """A document id that names no indexed document (removed since it was shown, or never)."""

    http_status = 404
