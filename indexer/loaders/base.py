"""What a loader returns, and the helpers every loader shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """Where a part of a document's text starts: ``label`` is "page 3", "slide 2", "sheet Q3"."""

    start: int
    label: str


@dataclass(frozen=True)
class LoadedText:
    """One document read from a file.

    ``part`` is empty for the file itself; a file holding several documents (a mailbox, an
    e-mail's attachments) names each one within the file ("message 3", "message 3/report.pdf").
    ``sections`` say where in ``text`` each page, slide, sheet or chapter starts; ``metadata``
    holds what the format records beyond author and date (an e-mail's sender and recipients).
    """

    text: str
    title: str
    file_type: str
    author: str = ""
    date: str = ""  # ISO 8601, as precise as the format says
    sections: tuple[Section, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    part: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.text, "title": self.title, "file_type": self.file_type,
            "author": self.author, "date": self.date, "part": self.part,
            "sections": [[s.start, s.label] for s in self.sections],
            "metadata": dict(self.metadata),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LoadedText:
        sections = data.get("sections") or []
        metadata = data.get("metadata") or {}
        if not isinstance(sections, list) or not isinstance(metadata, dict):
            raise TypeError("sections must be a list and metadata an object")
        return cls(
            text=str(data["text"]), title=str(data["title"]), file_type=str(data["file_type"]),
            author=str(data.get("author") or ""), date=str(data.get("date") or ""),
            sections=tuple(Section(int(start), str(label)) for start, label in sections),
            metadata={str(k): str(v) for k, v in metadata.items()},
            part=str(data.get("part") or ""),
        )  # fmt: skip


def first_line_title(text: str, fallback: str) -> str:
    """The first non-empty line (without Markdown's #, at most 200 characters), else
    ``fallback``."""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return fallback


def join_sections(
    parts: Iterable[tuple[str, str]], separator: str = "\n\n"
) -> tuple[str, tuple[Section, ...]]:
    """Join (label, text) parts into one text and the sections saying where each starts; parts
    with no text are left out."""
    pieces: list[str] = []
    sections: list[Section] = []
    offset = 0
    for label, text in parts:
        text = text.strip()
        if not text:
            continue
        if pieces:
            pieces.append(separator)
            offset += len(separator)
        sections.append(Section(offset, label))
        pieces.append(text)
        offset += len(text)
    return "".join(pieces), tuple(sections)
