"""E-mail: one message (``.eml``) or a mailbox of them (``.mbox``), read by the standard
library's ``email`` package.

Each message is a document of its own: its subject is the title; sender, recipients and date are
kept as metadata (and can be filtered on); the body is its plain-text part, or its HTML part as
text. Attachments of a type the indexer reads become documents too, each naming its message.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from email.message import EmailMessage
from pathlib import Path

from indexer.loaders.base import LoadedText
from indexer.loaders.text import html_to_text
from searchapp.errors import NotADocument, UnreadableFileError

MAX_MESSAGES = 20_000
MAX_ATTACHMENT_DEPTH = 3
_MBOX_FROM = re.compile(rb"^From [^\n]*\n", re.MULTILINE)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


def load_eml(data: bytes, path: Path, depth: int = 0) -> list[LoadedText]:
    message = _parse(data)
    documents = _message_documents(message, "", path, depth)
    if not documents:
        raise NotADocument("e-mail with no subject, text or readable attachment")
    return documents


def load_mbox(data: bytes, path: Path) -> list[LoadedText]:
    """Every message of an mbox file (mboxo or mboxrd: ``>From`` lines are unquoted)."""
    starts = [match.start() for match in _MBOX_FROM.finditer(data)]
    if not starts or data[: starts[0]].strip():
        raise UnreadableFileError("not an mbox file (it does not start with a 'From ' line)")
    if len(starts) > MAX_MESSAGES:
        raise UnreadableFileError(
            f"mailbox holds {len(starts):,} messages (the limit is {MAX_MESSAGES:,}): "
            "split it into smaller mailboxes"
        )
    documents: list[LoadedText] = []
    for number, (start, end) in enumerate(
        zip(starts, [*starts[1:], len(data)], strict=True), start=1
    ):
        raw = data[start:end].split(b"\n", 1)[1] if b"\n" in data[start:end] else b""
        message = _parse(_QUOTED_FROM.sub(rb"\1", raw))
        documents.extend(_message_documents(message, f"message {number}", path, 0))
    if not documents:
        raise NotADocument("mailbox with no message that holds text")
    return documents


def _parse(data: bytes) -> EmailMessage:
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
    except (ValueError, TypeError, IndexError) as error:
        raise UnreadableFileError(f"e-mail cannot be parsed ({error})") from None
    assert isinstance(message, EmailMessage)
    return message


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name, "")
    # A malformed header is left out, not fatal; AttributeError: the standard library's address
    # parser fails on some broken group syntax ("'Group' object has no attribute 'local_part'").
    except (ValueError, TypeError, IndexError, AttributeError):
        return ""
    return " ".join(str(value).split())


def _iso_date(value: str) -> str:
    try:
        return email.utils.parsedate_to_datetime(value).isoformat() if value else ""
    except (ValueError, TypeError):
        return ""


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset, a broken encoding
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        return html_to_text(content)[0]
    return content.strip()


def _message_documents(
    message: EmailMessage, part: str, path: Path, depth: int
) -> list[LoadedText]:
    subject = _header(message, "subject")
    sender, recipients = _header(message, "from"), _header(message, "to")
    cc, date = _header(message, "cc"), _iso_date(_header(message, "date"))
    body = _body(message)
    if not (subject or body):
        return []
    metadata = {key: value for key, value in
                (("from", sender), ("to", recipients), ("cc", cc)) if value}  # fmt: skip
    fields = (("Subject", subject), ("From", sender), ("To", recipients), ("Cc", cc))
    head = "\n".join(f"{name}: {value}" for name, value in fields if value)
    title = subject or f"(no subject) {part or path.stem}".strip()
    documents = [
        LoadedText(
            text=f"{head}\n\n{body}".strip(), title=title, file_type="email", author=sender,
            date=date, metadata=metadata, part=part,
        )
    ]  # fmt: skip
    if depth < MAX_ATTACHMENT_DEPTH:
        documents.extend(_attachments(message, part, title, path, depth))
    return documents


def _attachments(
    message: EmailMessage, part: str, title: str, path: Path, depth: int
) -> list[LoadedText]:
    """Attachments of a type the indexer reads, each a document naming its message."""
    from indexer.loaders import LOADERS, load_file
    from indexer.loaders.text import TEXT_SUFFIXES

    documents = []
    for number, attachment in enumerate(message.iter_attachments(), start=1):
        name = Path(attachment.get_filename() or f"attachment-{number}").name
        suffix = Path(name).suffix.lower()
        if suffix not in LOADERS and suffix not in TEXT_SUFFIXES:
            continue
        payload = attachment.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        try:
            loaded = (load_eml(payload, Path(name), depth + 1) if suffix == ".eml"
                      else load_file(Path(name), payload))  # fmt: skip
        except (NotADocument, UnreadableFileError):
            continue  # the message itself is still indexed; an unreadable attachment is not
        label = f"{part}/{name}" if part else name
        for document in loaded:
            documents.append(
                LoadedText(
                    text=document.text, title=document.title, file_type=document.file_type,
                    author=document.author, date=document.date, sections=document.sections,
                    metadata={**document.metadata, "message": title},
                    part=f"{label}/{document.part}" if document.part else label,
                )
            )  # fmt: skip
    return documents
