"""Reading BEIR benchmark folders: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/SPLIT.tsv``."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from searchapp.errors import BeirFormatError


@dataclass(frozen=True)
class BeirDocument:
    id: str
    title: str
    text: str


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise BeirFormatError(
            f"{path} not found: a BEIR folder holds corpus.jsonl, queries.jsonl and "
            f"qrels/<split>.tsv ({what} is missing)."
        )
    return path


def read_jsonl(path: Path) -> Iterator[tuple[int, dict | None, str]]:
    """(line number, record or None, what is wrong) for each non-blank line of a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield number, None, f"not valid JSON ({error.msg})"
                continue
            if not isinstance(record, dict):
                yield number, None, "not a JSON object"
                continue
            yield number, record, ""


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for number, record, problem in read_jsonl(path):
        if record is None:
            raise BeirFormatError(f"{path}:{number}: {problem}.")
        if "_id" not in record:
            raise BeirFormatError(f'{path}:{number}: a record needs an "_id" field.')
        yield number, record


def read_corpus(folder: Path) -> Iterator[BeirDocument]:
    """The corpus's documents, in file order."""
    for _, record in _jsonl(_require(folder / "corpus.jsonl", "the corpus")):
        yield BeirDocument(
            id=str(record["_id"]), title=record.get("title") or "", text=record.get("text") or ""
        )


def count_corpus(folder: Path) -> int:
    with _require(folder / "corpus.jsonl", "the corpus").open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def write_corpus(folder: Path, documents: Iterable[BeirDocument]) -> list[BeirDocument]:
    """Write ``documents`` as ``folder/corpus.jsonl`` (a slice of a corpus, say); returns them."""
    written = list(documents)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for d in written:
            handle.write(json.dumps({"_id": d.id, "title": d.title, "text": d.text}) + "\n")
    return written


def read_queries(folder: Path) -> dict[str, str]:
    """Query id -> query text."""
    path = _require(folder / "queries.jsonl", "the queries")
    return {str(record["_id"]): record.get("text") or "" for _, record in _jsonl(path)}


def read_qrels(folder: Path, split: str) -> dict[str, dict[str, int]]:
    """Query id -> {document id: graded relevance} for one split (``qrels/SPLIT.tsv``)."""
    path = folder / "qrels" / f"{split}.tsv"
    if not path.is_file():
        available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise BeirFormatError(
            f"No judgements for split {split!r} ({path} not found); "
            f"available splits: {', '.join(available) or 'none'}."
        )
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(reader, start=1):
            if number == 1 and row and row[0] == "query-id":
                continue
            if len(row) < 3:
                raise BeirFormatError(f"{path}:{number}: expected query-id, corpus-id, score.")
            try:
                score = int(row[2])
            except ValueError:
                raise BeirFormatError(
                    f"{path}:{number}: score {row[2]!r} is not an integer."
                ) from None
            qrels.setdefault(row[0], {})[row[1]] = score
    return qrels
