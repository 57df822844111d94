"""docs/OPTIONS.md, made from where each setting is stated: the environment variables
(``settings.ENVIRONMENT``), every command's options as the command line builds them (from the
choices and the fields of ``Settings``, ``TrainingOptions`` and the like), and the limits.
A test checks that the file is what this makes.

    python -m searchapp.options_table > docs/OPTIONS.md
"""

from __future__ import annotations

import argparse

HEADER = """# Options

Every setting of searchapp, generated from the code that reads it (`python -m
searchapp.options_table > docs/OPTIONS.md`; a test checks that this file is up to date).
"""


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _commands(parser: argparse.ArgumentParser, prefix: str = "searchapp"):  # type: ignore[no-untyped-def]
    """(command line, its parser) for the parser and every subcommand, in the order of --help."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        name = ", ".join(action.option_strings) or (action.metavar or action.dest)
        if action.choices is not None:
            name += " {" + ",".join(map(str, action.choices)) + "}"
        help_text = formatter._expand_help(action) if action.help else ""
        rows.append(f"| `{_cell(name)}` | {_cell(help_text)} |")
    return rows


def _limits() -> list[tuple[str, object, str]]:
    from searchapp.api import MAX_QUERY_CHARS
    from searchapp.choices import DEFAULT_RESULTS, MAX_RESULTS, RELEVANT_SCORE
    from searchapp.store.keywords.analyzer import MAX_QUERY_TERMS
    from searchapp.store.vectors.faiss import EXACT_LIMIT

    return [
        ("results of a search, unless told", DEFAULT_RESULTS,
         "`searchapp.choices.DEFAULT_RESULTS`"),
        ("results of a search, at most", MAX_RESULTS, "`searchapp.choices.MAX_RESULTS`"),
        ("words of a query keyword search uses", MAX_QUERY_TERMS,
         "`searchapp.store.keywords.analyzer.MAX_QUERY_TERMS`"),
        ("characters of a query the API takes", MAX_QUERY_CHARS,
         "`searchapp.api.MAX_QUERY_CHARS`"),
        ("score from which a judgement is a positive", RELEVANT_SCORE,
         "`searchapp.choices.RELEVANT_SCORE`"),
        ("vectors searched exactly; an IVF index past them", EXACT_LIMIT,
         "`searchapp.store.vectors.faiss.EXACT_LIMIT`"),
    ]  # fmt: skip


def markdown() -> str:
    from searchapp.cli import build_parser
    from searchapp.settings import ENVIRONMENT

    lines = [HEADER, "## Environment variables", "", "| variable | values | meaning |",
             "| --- | --- | --- |"]  # fmt: skip
    for variable in ENVIRONMENT:
        values = ", ".join(variable.choice.values) if variable.choice else ""
        lines.append(f"| `{variable.name}` | {_cell(values)} | {_cell(variable.help)} |")
    lines += ["", "## Commands", ""]
    for command, parser in _commands(build_parser()):
        rows = _options(parser)
        if rows:
            lines += [f"### `{command}`", "", "| option | meaning (and default) |", "| --- | --- |",
                      *rows, ""]  # fmt: skip
    lines += ["## Limits", "", "| limit | value | stated in |", "| --- | --- | --- |"]
    lines += [f"| {what} | {value} | {where} |" for what, value, where in _limits()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
