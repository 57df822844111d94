"""Limits every container format shares: zip files that would unpack too far, XML that would
expand forever, streams that would decompress past what a document can be."""

from __future__ import annotations

import io
import zipfile

from searchapp.errors import UnreadableFileError

MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
MAX_ZIP_MEMBERS = 20_000


def open_zip(data: bytes, kind: str) -> zipfile.ZipFile:
    """The zip container of a DOCX, EPUB, ODF or PPTX file, after checking that its declared
    unpacked size and member count are sane: a zip bomb is refused before any XML is parsed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        raise UnreadableFileError(
            f"not a valid {kind} file: its zip container is damaged ({error})"
        ) from None
    unpacked = sum(member.file_size for member in members)
    if len(members) > MAX_ZIP_MEMBERS:
        raise UnreadableFileError(
            f"{kind} holds {len(members)} files (the limit is {MAX_ZIP_MEMBERS}): refused"
        )
    if unpacked > MAX_UNPACKED_BYTES or unpacked > max(len(data), 1) * MAX_COMPRESSION_RATIO:
        raise UnreadableFileError(
            f"{kind} would unpack to {unpacked / 2**20:.0f} MiB from {len(data) / 2**20:.1f} MiB: "
            "refused as a possible zip bomb"
        )
    return archive


def read_member(archive: zipfile.ZipFile, name: str, kind: str) -> bytes:
    """One member's bytes, read no further than it declared (a lying header is caught by
    zipfile's own size check)."""
    try:
        with archive.open(name) as member:
            return member.read(MAX_UNPACKED_BYTES + 1)
    except KeyError:
        raise UnreadableFileError(f"not a valid {kind} file: {name} is missing") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise UnreadableFileError(
            f"{kind} is damaged: {name} cannot be unpacked ({error})"
        ) from None


def parse_xml(data: bytes, kind: str):  # type: ignore[no-untyped-def]
    """Parse untrusted XML: no DTD loaded, no entity expanded, nothing fetched from a network."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True)  # fmt: skip
    try:
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as error:
        if "amplification" in str(error) or "entity" in str(error).lower():
            raise UnreadableFileError(
                f"{kind} holds XML entities that would expand without bound: refused"
            ) from None
        raise UnreadableFileError(f"{kind} holds XML that cannot be parsed ({error})") from None
