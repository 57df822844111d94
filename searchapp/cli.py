"""The ``searchapp`` command, a thin face over the library: ``index``, ``search``, ``eval``,
``train``, ``models`` (list, promote, rollback), ``migrate``, ``remove``, ``check``, ``jobs``,
``ui`` and ``serve``. Long operations run through ``searchapp.operations`` (in this process, or as
a job with ``--background``).

Heavy imports (torch, sentence-transformers) happen inside the commands, so ``--help`` is instant.
Choices, defaults and help come from ``searchapp.choices`` and the settings and options dataclasses;
a ``SearchappError`` is printed as one line, anything else is a bug and shows its traceback. The
exit codes are listed in ``searchapp.errors``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import traceback
from datetime import datetime
from pathlib import Path

from searchapp.choices import (
    DEFAULT_RESULTS,
    FUSION,
    LOSS,
    POOLING,
    QUERY_BACKEND,
    SEARCH_MODE,
    Choice,
)
from searchapp.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    InvalidOptionError,
    SearchappError,
)
from searchapp.progress import NO_PROGRESS, Progress, TerminalProgress
from searchapp.settings import (
    DATABASE_ENV,
    HOME_ENV,
    QUERY_BACKEND_ENV,
    TOKEN_ENV,
    UI_TOKEN_ENV,
    Settings,
)


def _settings(args: argparse.Namespace, *, create: bool = False) -> Settings:
    """The home's settings; only commands that write may create a home (see Settings.load)."""
    settings = Settings.load(args.home, create=create)
    overrides = {name: getattr(args, name, None) for name in _field_names(Settings)}
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _progress(args: argparse.Namespace) -> Progress:
    """Bars on stderr, unless --quiet; stdout stays for the command's own output."""
    return NO_PROGRESS if getattr(args, "quiet", False) else TerminalProgress()


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The settings given on the command line (``--no-ocr``, ``--backend``…): what a job applies."""
    given = {name: getattr(args, name, None) for name in _field_names(Settings)}
    return {name: value for name, value in given.items() if value is not None}


def _absolute(path: str | os.PathLike[str]) -> str:
    """A path as the job's process will need it: absolute, from where the command was given."""
    return os.path.abspath(os.path.expanduser(path))


def _operate(args: argparse.Namespace, name: str, options: object):  # type: ignore[no-untyped-def]
    """Run operation ``name`` here with progress bars; or, with ``--background``, start it as a
    job, print its id and return None."""
    from searchapp import operations

    if getattr(args, "background", False):
        from searchapp import jobs
        from searchapp.store.database import Database

        settings = _settings(args, create=True)
        db = Database(settings.database_url, lock_path=settings.write_lock_path)
        job_id = jobs.start(settings, db, name, options, _overrides(args))
        if getattr(args, "json", False):
            print(json.dumps({"job": job_id}))
        else:
            print(f"job {job_id} started: `searchapp jobs show {job_id}` to follow it")
        return None
    settings = _settings(args, create=name in ("index", "import", "watch"))
    with _progress(args) as progress:
        return operations.execute(name, settings, options, progress)


def cmd_index(args: argparse.Namespace) -> int:
    from searchapp.operations import ImportOptions, IndexOptions

    if not args.beir and not args.paths:
        raise InvalidOptionError("searchapp index: give one or more folders (or --beir DIR).")
    if args.watch and args.beir:
        raise InvalidOptionError("searchapp index: --watch watches folders, not a --beir corpus.")
    if args.watch:
        return _watch(args)
    if not args.model and (args.query_prompt is not None or args.document_prompt is not None):
        raise InvalidOptionError(
            "searchapp index: --query-prompt and --document-prompt go with --model (the bundled "
            "model takes no prompts)."
        )
    model = _model_choice(args) if args.model else {}
    if args.beir:
        name = "import"
        options = ImportOptions(_absolute(args.beir), args.pooling, args.layer, **model)
    else:
        paths = tuple(map(_absolute, args.paths))
        name = "index"
        options = IndexOptions(paths, tuple(args.ignore), args.pooling, args.layer, **model)
    summary = _operate(args, name, options)
    if summary is None:
        return EXIT_OK
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        from searchapp.status import by_reason

        _print_grouped("ignored", by_reason(summary.ignored))
        _print_grouped("skipped", by_reason(summary.skipped))
        for path, reason in summary.failed:
            print(f"FAILED   {path}: {reason}", file=sys.stderr)
        print(
            f"{summary.files} files: {summary.added} added, {summary.updated} updated, "
            f"{summary.unchanged} unchanged, {len(summary.failed)} failed, "
            f"{len(summary.skipped)} skipped, {len(summary.ignored)} ignored; "
            f"{summary.removed} removed; {summary.chunks} chunks written "
            f"({summary.embedded} embedded, the rest known) in {summary.seconds:.1f} s"
        )
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def _print_grouped(what: str, groups: list[tuple[str, list[str]]]) -> None:
    """One line per file, or per reason with its count once a reason covers several."""
    for reason, paths in groups:
        if len(paths) == 1:
            print(f"{what:8} {paths[0]}: {reason}", file=sys.stderr)
        else:
            print(f"{what:8} {len(paths)} files: {reason} (such as {paths[0]})", file=sys.stderr)


def _watch(args: argparse.Namespace) -> int:
    """``index --watch``: index now, then after every change, until stopped (Ctrl-C, a cancel)."""
    from searchapp.operations import WatchOptions

    options = WatchOptions(tuple(map(_absolute, args.paths)), tuple(args.ignore))
    if args.background:
        _operate(args, "watch", options)
        return EXIT_OK
    from indexer.watch import run_line, watch

    def ran(view) -> None:  # type: ignore[no-untyped-def]
        print(f"{datetime.now():%H:%M:%S} {run_line(view)}", flush=True)

    _stop_on_signals()
    print(f"Watching {', '.join(options.paths)}; Ctrl-C stops.", file=sys.stderr, flush=True)
    watch(_settings(args, create=True), options.paths, ignore=options.ignore, on_run=ran)
    return EXIT_OK


def _stop_on_signals() -> None:
    """Let SIGINT and SIGTERM stop a long-running process the way Ctrl-C does, keeping what it
    committed: even where it was started with SIGINT ignored (``nohup``, ``cmd &`` in a script),
    as Python then leaves it, and a service manager's SIGTERM gets the same clean stop."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)


def cmd_remove(args: argparse.Namespace) -> int:
    from searchapp.operations import RemoveOptions

    result = _operate(args, "remove", RemoveOptions(_absolute(args.folder)))
    if result is None:
        return EXIT_OK
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"Removed {result.folder} ({result.documents} documents) from the index; "
              "its files are untouched.")  # fmt: skip
    return EXIT_OK


def _print_results(query: str, mode: str, results, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        from searchapp.search import answer_json

        print(json.dumps(answer_json(query, mode, results), ensure_ascii=False), flush=True)
        return
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    if not results:
        print(f"No results for {query!r}.")
    for result in results:
        snippet = result.snippet
        while "**" in snippet:
            snippet = snippet.replace("**", bold, 1).replace("**", plain, 1)
        where = f"{result.path} ({result.location})" if result.location else result.path
        print(f"{result.rank:>3}. {result.score:.4f}  {result.title}\n     {where}")
        print(f"     {snippet}\n")
    sys.stdout.flush()


def cmd_search(args: argparse.Namespace) -> int:
    from searchapp.search import Searcher, SearchFilters

    searcher = Searcher(_settings(args))
    filters = SearchFilters(file_types=tuple(args.type or ()), author=args.author or "")
    options = {"k": args.k, "mode": args.mode, "fusion": args.fusion, "filters": filters}
    if args.query == "-":
        for line in sys.stdin:
            query = line.rstrip("\n")
            if query.strip():
                results = searcher.search(query, **options)
                _print_results(query, args.mode, results, args.json)
        return EXIT_OK
    results = searcher.search(args.query, **options)
    _print_results(args.query, args.mode, results, args.json)
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from searchapp.evaluation import evaluate_beir
    from searchapp.search import Searcher

    modes = SEARCH_MODE.values if args.mode == "all" else (args.mode,)
    searcher = Searcher(_settings(args))
    with _progress(args) as progress:
        metrics = evaluate_beir(
            searcher, Path(args.beir_dir), args.split, modes, fusion=args.fusion, progress=progress
        )
    if args.json:
        print(json.dumps({mode: m.to_json() for mode, m in metrics.items()}, indent=2))
    else:
        print(f"{'mode':<8} {'nDCG@10':>8} {'R@100':>8} {'MRR@10':>8}   ({args.split} split)")
        for mode, m in metrics.items():
            print(f"{mode:<8} {m.ndcg_at_10:>8.4f} {m.recall_at_100:>8.4f} {m.mrr_at_10:>8.4f}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from indexer.training.options import PairSources, TrainingOptions, TrainOptions

    sources = PairSources(
        files=tuple(Path(_absolute(p)) for p in args.pairs),
        beir=Path(_absolute(args.beir)) if args.beir else None,
        split=args.split,
        feedback=args.feedback,
    )
    training = TrainingOptions(
        loss=args.loss, pooling=args.pooling, layer=args.layer, force=args.force,
        eval_beir=Path(_absolute(args.eval_beir)) if args.eval_beir else None,
        **{name: getattr(args, name) for name in _field_names(TrainingOptions)},
    )  # fmt: skip
    report = _operate(args, "train", TrainOptions(sources, training))
    if report is None:
        return EXIT_OK
    for where, reason in report.skipped:
        print(f"skipped  {where}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(
            f"version {report.version} ({report.loss}, {report.pooling} pooling, layer "
            f"{report.layer or 'final'}): nDCG@10 {report.before['ndcg@10']:.4f} -> "
            f"{report.after['ndcg@10']:.4f}; {'PROMOTED' if report.promoted else 'not promoted'}"
            f": {report.reason}"
        )
        if report.folds:
            print(f"Cross-validated over {report.folds} folds in {report.folds_seconds:.0f} s "
                  f"of the training's {report.seconds:.0f} s.")  # fmt: skip
        if report.judgements_needed is not None:
            from searchapp.versions import needed_said

            print(needed_said(report.judged_queries, report.judgements_needed) + ".")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from searchapp.encoder import BUNDLED_MODEL_NAME
    from searchapp.operations import PromoteOptions, RollbackOptions
    from searchapp.store.database import Database
    from searchapp.versions import list_versions

    if args.action == "switch":
        return _switch(args)
    if args.action in ("promote", "rollback"):
        if args.action == "promote":
            served = _operate(args, "promote", PromoteOptions(args.id, args.backend))
        else:
            served = _operate(args, "rollback", RollbackOptions())
        if served is None:
            return EXIT_OK
        done = "Serving" if args.action == "promote" else "Rolled back: serving"
        if not args.json:  # JSON: the versions' list alone, which says which one is served
            print(f"{done} model version {served.version} (index generation "
                  f"{served.generation}, backend {served.backend}).")  # fmt: skip
    settings = _settings(args)
    rows = list_versions(Database(settings.database_url, lock_path=settings.write_lock_path))
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
    elif args.action == "list":
        print(f"{'id':>3}  {'status':<9} {'pooling':<7} {'layer':<5} {'nDCG@10':<16} name")
        for row in rows:
            print(
                f"{row.id:>3}  {row.status:<9} {row.pooling:<7} {row.layer or 'final'!s:<5} "
                f"{row.gate:<16} {row.name}  [{row.fingerprint[:12]}]"
            )
            if row.base_model != BUNDLED_MODEL_NAME:
                print(f"{'':>5}from {row.base_model}, {row.dimension} dimensions")
            if row.decided_on != "-":
                print(f"{'':>5}gate {row.decided_on}")
            if row.needed:
                print(f"{'':>5}{row.needed}")
    return EXIT_OK


def _model_choice(args: argparse.Namespace) -> dict[str, str | None]:
    """``--model`` and its prompts as options take them; a model that cannot be found is refused
    here, before anything (even the home) is made."""
    from searchapp.base_models import locate, recorded_name

    locate(args.model)
    return {"model": recorded_name(args.model), "query_prompt": args.query_prompt,
            "document_prompt": args.document_prompt}  # fmt: skip


def _switch(args: argparse.Namespace) -> int:
    from searchapp.operations import SwitchOptions

    options = SwitchOptions(
        pooling=args.pooling, layer=args.layer, force=args.force, eval_split=args.eval_split,
        eval_beir=_absolute(args.eval_beir) if args.eval_beir else None, **_model_choice(args),
    )  # fmt: skip
    result = _operate(args, "switch", options)
    if result is None:
        return EXIT_OK
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"version {result.version} from {result.base_model} ({result.dimension} "
              f"dimensions), generation {result.generation}: {result.reason}")  # fmt: skip
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from searchapp.health import check_store, result_of
    from searchapp.operations import RepairOptions
    from searchapp.store.database import Database

    if args.background and not args.repair:
        raise InvalidOptionError("searchapp check: only `check --repair` runs as a job.")
    if args.repair:  # also what heals by itself later (an index file or the fast keyword index
        result = _operate(args, "repair", RepairOptions())  # behind SQL): brought up to date now
        if result is None:
            return EXIT_OK
    else:
        settings = _settings(args)
        db = Database(settings.database_url, lock_path=settings.write_lock_path)
        result = result_of(check_store(settings, db))
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        for line in result.repaired:
            print(f"repaired: {line}")
        for name, ok, detail in result.checks:
            print(f"{'ok  ' if ok else 'FAIL'}  {name}: {detail}")
        if not result.ok:
            print("Run `searchapp check --repair` to rebuild what can be rebuilt from SQL.")
    return EXIT_OK if result.ok else EXIT_SOME_FAILED


def cmd_migrate(args: argparse.Namespace) -> int:
    from searchapp.store.copy import copy_store
    from searchapp.store.database import Database

    settings = _settings(args)
    source = Database(settings.database_url, lock_path=settings.write_lock_path)
    if args.to == settings.database_url:
        raise InvalidOptionError("migrate --to names the database this home already uses.")
    target = Database(args.to)
    with _progress(args) as progress:
        report = copy_store(source, target, settings.index_dir, progress)
    if args.json:
        print(json.dumps({"target": report.target, "rows": report.rows}, indent=2))
    else:
        copied = ", ".join(f"{rows} {table}" for table, rows in report.rows.items() if rows)
        print(f"copied into {report.target}: {copied}")
        print(f"Use it with --database-url {report.target} (or set {DATABASE_ENV}); this "
              "home's own database is unchanged.")  # fmt: skip
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    from searchapp import jobs
    from searchapp.store.database import Database

    settings = _settings(args)
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    if args.action == "run":
        _stop_on_signals()  # a cancel interrupts the job with SIGINT
        return jobs.run(settings, args.id)
    if args.action == "list":
        views = jobs.list_jobs(db, limit=args.limit)
        if args.json:
            print(json.dumps([view.to_json() for view in views], indent=2))
            return EXIT_OK
        if not views:
            print("No jobs yet.")
        for view in views:
            print(f"{view.id:>4}  {view.state:<11} {view.kind:<8} {view.progress_line()}")
            print(f"      {view.command}")
        return EXIT_OK
    if args.action == "show":
        view = jobs.get_job(db, args.id)
    elif args.action == "cancel":
        view = jobs.cancel(db, args.id)
    else:  # resume, restart
        view = jobs.resume(settings, db, args.id)
    if args.json:
        print(json.dumps(view.to_json(), indent=2))
    else:
        _print_job(view)
    return EXIT_OK


def _print_job(view) -> None:  # type: ignore[no-untyped-def]
    print(f"job {view.id}: {view.command}")
    print(f"  state     {view.state}{' (cancel requested)' if view.cancel_requested else ''}")
    print(f"  progress  {view.progress_line()}")
    for label, moment in (("created", view.created_at), ("started", view.started_at),
                          ("ended", view.ended_at)):  # fmt: skip
        if moment is not None:
            print(f"  {label:<9} {moment:%Y-%m-%d %H:%M:%S} UTC")
    if view.error:
        print(f"  error     {view.error}")
    if view.again:
        print(f"  {view.again} it: searchapp jobs resume {view.id}")
    if view.result is not None:
        print("  result    " + json.dumps(view.result, indent=2).replace("\n", "\n  "))


def cmd_ui(args: argparse.Namespace) -> int:
    import ui
    from searchapp.api import is_loopback

    local = is_loopback(args.address)
    token = os.environ.get(UI_TOKEN_ENV) or (None if local else os.environ.get(TOKEN_ENV))
    if not local and not token:
        raise InvalidOptionError(
            f"The UI on {args.address} reaches beyond this machine, so it must ask for a token: "
            f"set {UI_TOKEN_ENV} (or {TOKEN_ENV}) to a secret, for instance the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe())'`, and give it to the "
            "people who may use it."
        )
    settings = _settings(args, create=True)  # a new user's first stop may be the Index page
    app = Path(ui.__file__).with_name("app.py")
    env = dict(os.environ, SEARCHAPP_HOME=str(settings.home))
    if token:
        env[UI_TOKEN_ENV] = token  # every browser session gives it once (ui/access.py)
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", args.address,
        "--server.port", str(args.port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    asks = ", token required" if token else ""
    print(f"searchapp UI on http://{args.address}:{args.port} (home {settings.home}{asks})",
          flush=True)  # fmt: skip
    # Become the Streamlit server, so that stopping this process stops the server (a child would
    # be orphaned by a SIGTERM).
    os.execve(sys.executable, command, env)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from searchapp.api import is_loopback

    settings = _settings(args)
    token = args.token or os.environ.get(TOKEN_ENV)
    if not is_loopback(args.host) and not token:
        raise InvalidOptionError(
            f"Serving on {args.host} reaches beyond this machine, so every request must bear a "
            f"token: set {TOKEN_ENV} (or pass --token) to a secret, for instance the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe())'`."
        )
    os.environ[HOME_ENV] = str(settings.home)  # the worker processes' settings
    os.environ[DATABASE_ENV] = settings.database_url
    if token:
        os.environ[TOKEN_ENV] = token
    print(
        f"searchapp API on http://{args.host}:{args.port} (home {settings.home}; "
        f"OpenAPI at /docs{', bearer token required' if token else ''})",
        flush=True,
    )
    uvicorn.run(
        "searchapp.api:from_environment", factory=True, host=args.host, port=args.port,
        workers=args.workers, log_level="warning",
    )  # fmt: skip
    return EXIT_OK


def _field_names(cls: type) -> list[str]:
    """The fields of a settings or options dataclass that the command line exposes."""
    return [f.name for f in dataclasses.fields(cls) if "help" in f.metadata]


def _add_fields(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    override: bool = False,
    only: tuple[str, ...] | None = None,
) -> None:
    """One option per documented field of ``cls`` (or of those named ``only``), with its type,
    choices, default and help.

    ``override``: the option is None unless given, so that the loaded value stays (settings).
    """
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata or (only is not None and f.name not in only):
            continue
        if isinstance(f.default, bool):  # a switch that turns the default off (--no-ocr)
            parser.add_argument(
                f.metadata["flag"], dest=f.name, action="store_const", const=not f.default,
                default=None if override else f.default, help=f.metadata["help"],
            )  # fmt: skip
            continue
        parser.add_argument(
            f.metadata.get("flag", "--" + f.name.replace("_", "-")),
            dest=f.name,
            type=type(f.default),
            choices=f.metadata.get("choices"),
            default=None if override else f.default,
            metavar=f.metadata.get("metavar"),
            help=f"{f.metadata['help']} (default {f.default})",
        )


def _add_choice(parser: argparse.ArgumentParser, flag: str, choice: Choice) -> None:
    """An option whose values, default and help are ``choice``'s."""
    parser.add_argument(
        flag, choices=choice.values, default=choice.default,
        help=f"{choice.help} (default {choice.default})",
    )  # fmt: skip


def _add_prompts(parser: argparse.ArgumentParser) -> None:
    """--query-prompt and --document-prompt: what a model's texts start with, over its own."""
    parser.add_argument("--query-prompt", metavar="TEXT",
                        help="put before every query, over the model's own prompt (e5: "
                        "'query: '; '' for none)")  # fmt: skip
    parser.add_argument("--document-prompt", metavar="TEXT",
                        help="put before every document, over the model's own prompt (e5: "
                        "'passage: '; '' for none)")  # fmt: skip


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line: the options every command shares, then each group of commands."""
    parser = argparse.ArgumentParser(
        prog="searchapp",
        description="Semantic search over your own documents, on your own machine.",
    )
    parser.add_argument(
        "--home",
        help=f"data directory (database, index, models); default: ${HOME_ENV}, "
        "else a per-user data directory",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="the SQL database (SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db); "
        f"default: ${DATABASE_ENV}, else SQLite in the home",
    )
    parser.add_argument(
        "--query-backend",
        choices=QUERY_BACKEND.values,
        help=f"{QUERY_BACKEND.help} (default: ${QUERY_BACKEND_ENV}, else {QUERY_BACKEND.default})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = _add_index_command(commands)
    _add_search_commands(commands)
    train, promote, rollback, switch = _add_training_commands(commands)
    remove, check = _add_store_commands(commands)
    _add_jobs_command(commands)
    _add_server_commands(commands)
    background = "run as a job: print its id and return at once (see `searchapp jobs`)"
    for sub in (index, train, promote, rollback, switch, check, remove):
        sub.add_argument("--background", action="store_true", help=background)
    return parser


def _add_index_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    index = commands.add_parser("index", help="index folders, incrementally")
    index.add_argument("paths", nargs="*", metavar="PATH", help="folders or files to index")
    index.add_argument("--beir", metavar="DIR", help="import a BEIR corpus.jsonl instead")
    index.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                       help="skip files and folders matching GLOB (repeatable)")  # fmt: skip
    new_home = f"a new home's pooling: {POOLING.help} (default {POOLING.default})"
    index.add_argument("--pooling", choices=POOLING.values, help=new_home)
    index.add_argument("--layer", type=int, metavar="N",
                       help="token embeddings from hidden layer N (default: final)")  # fmt: skip
    index.add_argument("--model", metavar="NAME_OR_PATH",
                       help="a new home's model: a sentence-transformers folder, or a model name "
                       "(from the Hugging Face cache, or downloaded unless $HF_HUB_OFFLINE is "
                       "set); its pooling, maximum length and prompts come with it (default: the "
                       "bundled all-MiniLM-L6-v2)")  # fmt: skip
    _add_prompts(index)
    _add_fields(index, Settings, override=True)
    index.add_argument("--watch", action="store_true",
                       help="keep indexing: re-index the folders whenever a file in them changes, "
                       "until stopped")  # fmt: skip
    index.add_argument("--json", action="store_true", help="print the summary as JSON")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.set_defaults(func=cmd_index)
    return index


def _add_search_commands(commands: argparse._SubParsersAction) -> None:
    search = commands.add_parser("search", help="search the index")
    search.add_argument("query", metavar="QUERY", help="the query, or - to read one per line")
    search.add_argument("--k", type=_at_least_one, default=DEFAULT_RESULTS,
                        help=f"number of documents (default {DEFAULT_RESULTS})")  # fmt: skip
    _add_choice(search, "--mode", SEARCH_MODE)
    search.add_argument("--json", action="store_true", help="print JSON (one object per query)")
    _add_choice(search, "--fusion", FUSION)
    search.add_argument(
        "--type",
        action="append",
        metavar="TYPE",
        help="only documents of this file type (pdf, email, pptx…); repeatable",
    )
    search.add_argument(
        "--author",
        metavar="TEXT",
        help="only documents whose author (an e-mail's sender) contains TEXT",
    )
    search.set_defaults(func=cmd_search)

    evaluate = commands.add_parser("eval", help="score search on a BEIR benchmark folder")
    evaluate.add_argument("beir_dir", metavar="BEIR_DIR")
    evaluate.add_argument("--split", default="test", help="the split to score (default test)")
    evaluate.add_argument("--mode", choices=(*SEARCH_MODE.values, "all"), default="all",
                          help="the search mode to score, or all (default all)")  # fmt: skip
    evaluate.add_argument("--json", action="store_true")
    _add_choice(evaluate, "--fusion", FUSION)
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=cmd_eval)


def _add_store_commands(
    commands: argparse._SubParsersAction,
) -> tuple[argparse.ArgumentParser, ...]:
    """migrate, remove and check; returns the parsers of those that can run as jobs."""
    migrate = commands.add_parser(
        "migrate", help="copy this home's store into another database (PostgreSQL), vectors too"
    )
    migrate.add_argument(
        "--to", required=True, metavar="URL",
        help="the empty target database, e.g. postgresql+psycopg://user@host/db",
    )  # fmt: skip
    migrate.add_argument("--json", action="store_true")
    migrate.add_argument("--quiet", action="store_true", help="no progress bars")
    migrate.set_defaults(func=cmd_migrate)

    remove = commands.add_parser(
        "remove", help="forget an indexed folder: its documents leave the index, files stay"
    )
    remove.add_argument("folder", metavar="FOLDER", help="the folder, as it was indexed")
    remove.add_argument("--json", action="store_true")
    remove.add_argument("--quiet", action="store_true", help="no progress bar")
    remove.set_defaults(func=cmd_remove)

    check = commands.add_parser("check", help="verify the store; --repair rebuilds from SQL")
    check.add_argument("--repair", action="store_true",
                       help="rebuild from SQL what disagrees with it: the keyword indexes, the "
                            "served generation's vectors (never re-encoded); remove leftover "
                            "files")  # fmt: skip
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_check)
    return remove, check


def _add_training_commands(
    commands: argparse._SubParsersAction,
) -> tuple[argparse.ArgumentParser, ...]:
    """train and models; returns the parsers of those that can run as jobs: train, models
    promote, models rollback and models switch."""
    from indexer.training.options import PairSources, TrainingOptions  # light: no torch

    train = commands.add_parser(
        "train", help="fine-tune the model on (query, document) pairs; promote it if better"
    )
    train.add_argument("pairs", nargs="*", metavar="PAIRS",
                       help="JSONL or CSV: query, positive[, negative][, label|score]")  # fmt: skip
    train.add_argument("--beir", metavar="DIR", help="take pairs from a BEIR folder's split")
    split = PairSources.split
    train.add_argument("--split", default=split, help=f"the split to train on (default {split})")
    train.add_argument("--feedback", action="store_true",
                       help="use the UI feedback too (alone if nothing else is given)")  # fmt: skip
    _add_choice(train, "--loss", LOSS)
    train.add_argument("--pooling", choices=POOLING.values,
                       help="pooling of the new version (default: the served model's)")  # fmt: skip
    train.add_argument("--layer", type=int, metavar="N",
                       help="layer of the new version (default: the served model's)")  # fmt: skip
    train.add_argument("--eval-beir", metavar="DIR", help="gate on this BEIR folder instead")
    _add_fields(train, TrainingOptions)
    _add_fields(train, Settings, override=True, only=("backend",))
    train.add_argument("--force", action="store_true", help="promote even if not better")
    train.add_argument("--json", action="store_true")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

    models = commands.add_parser("models", help="list, promote or roll back model versions")
    models_actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    models_actions.add_parser("list", help="every model version and its status")
    promote = models_actions.add_parser("promote", help="serve model version ID")
    promote.add_argument("id", type=int, metavar="ID")
    _add_fields(promote, Settings, override=True, only=("backend",))
    models_actions.add_parser("rollback", help="serve the previous version again")
    switch = models_actions.add_parser(
        "switch", help="serve a model made from another base model: every chunk is embedded "
        "again while search goes on, then it is served unless worse",
    )  # fmt: skip
    switch.add_argument("model", metavar="NAME_OR_PATH",
                        help="a sentence-transformers folder, or a model name (from the Hugging "
                        "Face cache, or downloaded unless $HF_HUB_OFFLINE is set)")  # fmt: skip
    switch.add_argument("--pooling", choices=POOLING.values,
                        help="its pooling (default: the model's own)")  # fmt: skip
    switch.add_argument("--layer", type=int, metavar="N",
                        help="token embeddings from hidden layer N (default: final)")  # fmt: skip
    switch.add_argument("--eval-beir", metavar="DIR",
                        help="compare the two models on this BEIR folder's split (default: the "
                        "queries earlier trainings held out, if any)")  # fmt: skip
    switch.add_argument("--eval-split", default="test", help="the split (default test)")
    switch.add_argument("--force", action="store_true", help="serve it even if worse")
    _add_prompts(switch)
    _add_fields(switch, Settings, override=True, only=("backend",))
    for sub in models_actions.choices.values():
        sub.add_argument("--json", action="store_true")
        sub.add_argument("--quiet", action="store_true", help="no progress bars")
    models.set_defaults(func=cmd_models)
    return train, promote, models_actions.choices["rollback"], switch


def _add_jobs_command(commands: argparse._SubParsersAction) -> None:
    jobs = commands.add_parser("jobs", help="list, follow, cancel or resume background jobs")
    jobs_actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = jobs_actions.add_parser("list", help="recent jobs, newest first")
    listing.add_argument("--limit", type=_at_least_one, default=20, help="how many (default 20)")
    for action, what in (("show", "a job's state, progress and result"),
                         ("cancel", "stop a job; what it committed is kept"),
                         ("resume", "run an interrupted, failed or cancelled job again"),
                         ("restart", "the same as resume")):  # fmt: skip
        jobs_actions.add_parser(action, help=what).add_argument("id", type=int, metavar="ID")
    run = jobs_actions.add_parser("run")  # the job's own process; not for people
    run.add_argument("id", type=int, metavar="ID")
    for sub in jobs_actions.choices.values():
        sub.add_argument("--json", action="store_true")
    jobs.set_defaults(func=cmd_jobs)


def _add_server_commands(commands: argparse._SubParsersAction) -> None:
    web = commands.add_parser("ui", help="start the web UI (Streamlit)")
    web.add_argument("--port", type=int, default=8501)
    web.add_argument("--address", "--host", dest="address", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine; any other "
                     f"needs ${UI_TOKEN_ENV} or ${TOKEN_ENV}, which every browser session "
                     "must then give)")  # fmt: skip
    web.set_defaults(func=cmd_ui)

    serve = commands.add_parser("serve", help="serve the HTTP JSON API (search, feedback, jobs)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine; any other "
                       "needs a bearer token)")  # fmt: skip
    serve.add_argument("--token", help="the bearer token requests must send (better: "
                       "$SEARCHAPP_API_TOKEN, which other users cannot read)")  # fmt: skip
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes (each loads the model once)")  # fmt: skip
    serve.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.database_url:  # as the environment variable: jobs and servers started inherit it
        os.environ[DATABASE_ENV] = args.database_url
    if args.query_backend:
        os.environ[QUERY_BACKEND_ENV] = args.query_backend
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("Interrupted; everything committed so far is kept.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SearchappError as error:
        print(f"searchapp {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except Exception:
        traceback.print_exc()
        print(
            f"searchapp {args.command}: internal error (a bug, not something you did); "
            "the traceback above says where. Please report it.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
