"""The command line as a user meets it: one-line errors for their mistakes, tracebacks for bugs,
choices and defaults that are the library's own, and nothing created by a read."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import indexer
import searchapp
from indexer.training.options import TrainingOptions
from searchapp.choices import FUSION, LOSS, POOLING, SEARCH_MODE
from searchapp.cli import build_parser
from searchapp.errors import EXIT_INTERNAL, EXIT_USAGE, SearchappError
from searchapp.settings import Settings


def _modules(package) -> list[str]:  # type: ignore[no-untyped-def]
    """The package's modules, less scripts that only run inside another program (``__main__``,
    Alembic's ``env.py``)."""
    return [
        info.name
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
        if not info.name.endswith(("__main__", ".migrations.env"))
    ]


def test_every_error_class_a_user_can_meet_is_a_searchapp_error() -> None:
    classes = []
    for name in _modules(searchapp) + _modules(indexer):
        module = importlib.import_module(name)
        classes += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == name
        ]
    assert len(classes) >= 10  # the walk found the error module and the rest
    outside = [f"{c.__module__}.{c.__name__}" for c in classes if not issubclass(c, SearchappError)]
    assert outside == []


def test_a_mistyped_home_is_refused_in_one_line_and_nothing_is_created(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mistyped = tmp_path / "serach-home"
    for command in (["search", "bees"], ["eval", str(tmp_path)], ["models", "list"], ["check"]):
        run = cli("--home", mistyped, *command)
        assert run.code == EXIT_USAGE, command
        assert run.err.count("\n") == 1 and "no searchapp index at" in run.err, run.err
        assert "Traceback" not in run.err
    assert not mistyped.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_internal_error_shows_its_traceback_and_a_distinct_status(
    cli, sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("operands could not be broadcast together")  # a numpy bug, say

    monkeypatch.setattr("searchapp.search.Searcher.search_many", broken)
    run = cli("--home", sample_home.home, "search", "bees")
    assert run.code == EXIT_INTERNAL
    assert "Traceback (most recent call last)" in run.err
    assert "operands could not be broadcast" in run.err and "internal error" in run.err


def test_a_users_mistake_exits_2_without_a_traceback(cli, sample_home: Settings) -> None:  # type: ignore[no-untyped-def]
    run = cli("--home", sample_home.home, "models", "promote", "99")
    assert run.code == EXIT_USAGE
    assert "No model version 99" in run.err and "Traceback" not in run.err
    run = cli("--home", sample_home.home, "index")
    assert run.code == EXIT_USAGE and "give one or more folders" in run.err


def _options(parser: argparse.ArgumentParser, command: str) -> dict[str, argparse.Action]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions}


def test_the_commands_choices_and_defaults_are_the_librarys() -> None:
    parser = build_parser()
    search = _options(parser, "search")
    assert tuple(search["mode"].choices) == SEARCH_MODE.values
    assert search["mode"].default == SEARCH_MODE.default
    assert tuple(search["fusion"].choices) == FUSION.values
    assert search["fusion"].default == FUSION.default
    assert tuple(_options(parser, "index")["pooling"].choices) == POOLING.values

    train = _options(parser, "train")
    assert tuple(train["loss"].choices) == LOSS.values and train["loss"].default == LOSS.default
    documented = [f for f in dataclasses.fields(TrainingOptions) if "help" in f.metadata]
    assert {f.name for f in documented} <= set(train)
    for f in documented:
        assert train[f.name].default == f.default, f.name
        assert f"default {f.default}" in train[f.name].help


def test_cli_defaults_build_the_default_training_options() -> None:
    args = build_parser().parse_args(["train"])
    chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingOptions)
              if hasattr(args, f.name) and f.name not in ("eval_beir",)}  # fmt: skip
    assert TrainingOptions(**chosen) == TrainingOptions()


def test_k_below_one_is_refused_by_the_parser(cli, sample_home: Settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_info:
        cli("--home", sample_home.home, "search", "bees", "--k", "0")
    assert exit_info.value.code == EXIT_USAGE
