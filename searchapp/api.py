"""The HTTP API, ``searchapp serve``: search, feedback, jobs and health as JSON over HTTP.

Stateless over the store: every process holds only a ``Searcher`` (the model and a cache of the
served generation's vectors, which follows promotions by itself), so that any number of them,
behind any load balancer, serve one corpus. ``GET /search`` answers with exactly the JSON of
``searchapp search --json``; the OpenAPI description is at ``/openapi.json`` (and ``/docs``).

Bound to 127.0.0.1 unless told otherwise. Beyond loopback a bearer token is required (the server
refuses to start without one), and a request without it gets 401 before anything is read. Bad
parameters get 422 with the reason; an error a user can act on (``SearchappError``) gets a 4xx or
503 with its message, never a 500; the OpenAPI description states each of them (``PROBLEMS``).
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, which
# name objects local to ``_routes``.
import ipaddress
import os
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, StrictBool, StringConstraints
from sqlalchemy import func, select

from searchapp.choices import DEFAULT_RESULTS, FUSION, MAX_RESULTS, SEARCH_MODE
from searchapp.errors import (
    InvalidOptionError,
    SearchappError,
)
from searchapp.settings import TOKEN_ENV, Settings
from searchapp.store.database import Database

if TYPE_CHECKING:  # loaded on the first search: health answers without the model
    from searchapp.search import Searcher

MAX_QUERY_CHARS = 2000
# A file type as documents record it ("pdf", "markdown", "email", "beir"): a short lowercase name.
FileType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{1,16}$")]

# The API's parameter types, made from the choices (its schema lists their values).
Mode = Literal[SEARCH_MODE.values]  # type: ignore[valid-type]
Fusion = Literal[FUSION.values]  # type: ignore[valid-type]


class FeedbackIn(BaseModel):
    """A 👍 or 👎 on one result, as the UI stores it."""

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    document_id: int = Field(ge=1, description="the result's doc_id")
    relevant: StrictBool  # true or false, not 0 or "yes"


class Problem(BaseModel):
    """An error a user can act on: what was wrong and what to do."""

    detail: str


class InvalidParameter(BaseModel):
    """One parameter FastAPI's validation refused: where, and why."""

    loc: list[str | int]
    msg: str
    type: str


class InvalidParameters(BaseModel):
    detail: list[InvalidParameter]


# What every endpoint may answer besides its result, as its OpenAPI description says: a
# ``SearchappError``'s message (``_refused``), or FastAPI's own list of invalid parameters.
PROBLEMS: dict[int | str, dict] = {
    400: {"model": Problem, "description": "a body that is not JSON"},
    404: {"model": Problem, "description": "an id that names nothing (a job, a document)"},
    409: {"model": Problem, "description": "the request conflicts with the state of the store"},
    422: {"model": Problem | InvalidParameters, "description": "an invalid parameter"},
    503: {"model": Problem, "description": "nothing to serve yet, or the store is busy"},
    507: {"model": Problem, "description": "the disk is full"},
}


def is_loopback(host: str) -> bool:
    """Is ``host`` this machine only (127.0.0.0/8, ::1, localhost)?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(settings: Settings, token: str | None = None) -> FastAPI:
    """The API over ``settings``' store; with ``token``, every request must bear it."""
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    app = FastAPI(
        title="searchapp",
        summary="Semantic, keyword and hybrid search over your own documents.",
        # Only a server that asks for a token says so in its OpenAPI description.
        dependencies=[Depends(_authorisation(token))] if token else [],
        responses={401: {"model": Problem, "description": "no valid bearer token"}}
        if token
        else None,
    )
    app.add_exception_handler(SearchappError, _refused)  # type: ignore[arg-type]
    app.include_router(_routes(db, _lazy_searcher(settings, db)))
    return app


async def _refused(_request: Request, error: SearchappError) -> JSONResponse:
    """A user's mistake or a state the store is in: its message, with its own status code."""
    return JSONResponse({"detail": str(error)}, status_code=error.http_status)


def _authorisation(token: str) -> Callable[..., None]:
    """The dependency every request passes: a bearer token matching ``token``."""
    bearer = HTTPBearer(auto_error=False, description="the token the server was started with")

    def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None or not secrets.compare_digest(
            credentials.credentials.encode(), token.encode()
        ):
            raise HTTPException(
                401,
                "A valid bearer token is required: send the header 'Authorization: Bearer TOKEN'.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return authorised


def _lazy_searcher(settings: Settings, db: Database) -> Callable[[], "Searcher"]:
    """The one Searcher, made on the first search (so that health answers at once)."""
    lock = threading.Lock()
    made: list[Searcher] = []

    def searcher() -> "Searcher":
        with lock:
            if not made:
                from searchapp.search import Searcher as Made

                made.append(Made(settings, db))
            return made[0]

    return searcher


def _routes(db: Database, searcher: Callable[[], "Searcher"]) -> APIRouter:
    """The endpoints: search, feedback, jobs and health."""
    router = APIRouter(responses=PROBLEMS)

    @router.get("/search")
    def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="the query")],
        k: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = DEFAULT_RESULTS,
        mode: Mode = SEARCH_MODE.default,  # type: ignore[assignment]
        fusion: Fusion = FUSION.default,  # type: ignore[assignment]
        type: Annotated[list[FileType] | None, Query(description="only these file types")] = None,
        author: Annotated[str, Query(description="author (an e-mail's sender) contains")] = "",
    ) -> dict:
        """The ``k`` best documents: exactly what ``searchapp search --json`` prints."""
        from searchapp.search import SearchFilters, answer_json

        if not q.strip():
            raise InvalidOptionError("The query q is blank: give some words to search for.")
        filters = SearchFilters(file_types=tuple(type or ()), author=author)
        results = searcher().search(q, k=k, mode=mode, fusion=fusion, filters=filters)
        return answer_json(q, mode, results)

    @router.post("/feedback")
    def feedback(judgement: FeedbackIn) -> dict:
        """Store (or change) a 👍 / 👎; training uses it (``searchapp train --feedback``)."""
        from searchapp.feedback import record_feedback

        record_feedback(db, judgement.query, judgement.document_id, judgement.relevant)
        return {"stored": True, **judgement.model_dump()}

    @router.get("/jobs")
    def jobs(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict]:
        """Recent background jobs, newest first: what ``searchapp jobs list --json`` prints."""
        from searchapp.jobs import list_jobs

        return [view.to_json() for view in list_jobs(db, limit=limit)]

    @router.get("/health")
    def health() -> dict:
        """Whether the store answers and what it serves (cheap: one snapshot of the store)."""
        from searchapp.store.schema import Chunk, Document
        from searchapp.versions import active_generation

        with db.read() as session:
            documents = session.scalar(select(func.count()).select_from(Document)) or 0
            chunks = session.scalar(select(func.count()).select_from(Chunk)) or 0
            generation = active_generation(session)
        return {
            "status": "ok" if generation is not None else "empty",
            "documents": documents,
            "chunks": chunks,
            "model_version": generation.model_version_id if generation is not None else None,
            "generation": generation.id if generation is not None else None,
        }

    return router


def from_environment() -> FastAPI:
    """The app of a worker process that ``searchapp serve`` started (uvicorn's factory): the
    home and database from ``SEARCHAPP_HOME`` and ``SEARCHAPP_DATABASE_URL``, the token from
    ``SEARCHAPP_API_TOKEN``."""
    return create_app(Settings.load(create=False), os.environ.get(TOKEN_ENV) or None)
