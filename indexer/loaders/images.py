"""Pictures of text (a photographed note, a scanned page): PNG, JPEG, TIFF (each of its pages)
and WebP, read by OCR. Pillow reads the header first, so an image too large is refused before
it is decoded."""

from __future__ import annotations

import io
from pathlib import Path

from indexer.loaders.base import LoadedText, first_line_title, join_sections
from indexer.ocr import page_key, read_pages
from searchapp.errors import NotADocument, UnreadableFileError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})
MAX_IMAGE_PIXELS = 80_000_000  # an A4 page at 600 dpi is 35 million
MAX_IMAGE_FRAMES = 500


def to_png(image) -> bytes:  # type: ignore[no-untyped-def]
    """Grayscale PNG bytes of a Pillow image, what Tesseract is given."""
    buffer = io.BytesIO()
    image.convert("L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def load_image(data: bytes, path: Path) -> LoadedText:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # checked below, from the header, before anything is decoded
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        frames = getattr(image, "n_frames", 1)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise UnreadableFileError(f"image cannot be read ({error})") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise UnreadableFileError(
            f"image of {width:,} × {height:,} pixels is larger than the "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels OCR reads: refused"
        )
    if frames > MAX_IMAGE_FRAMES:
        raise UnreadableFileError(f"image has {frames} pages (the limit is {MAX_IMAGE_FRAMES})")

    def frame(number: int) -> bytes:
        try:
            image.seek(number)
            return to_png(image)
        except (OSError, ValueError, EOFError) as error:
            raise UnreadableFileError(f"image is damaged ({error})") from None

    texts = read_pages([(page_key(data, n), lambda n=n: frame(n)) for n in range(frames)])
    if frames == 1:
        text, sections = texts[0], ()
    else:
        text, sections = join_sections((f"page {n}", t) for n, t in enumerate(texts, start=1))
    if not text.strip():
        raise NotADocument("image holds no text OCR could read")
    return LoadedText(
        text=text, title=first_line_title(text, path.stem), file_type="image",
        sections=sections, metadata={"ocr": "yes"},
    )  # fmt: skip
