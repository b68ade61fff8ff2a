"""Attachments: which files are allowed, how their content is checked, where they are kept.

A file is stored under a random name chosen here, never under the sender's name, and only
after its content proved to be what its extension says. Pictures get a thumbnail, made once
at upload and kept beside them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from helpers import ValidationError, without_hidden_characters

THUMBNAIL_SIZE = 480
# Refuse pictures whose pixels alone would take hundreds of MB to decode (decompression bombs).
MAX_PIXELS = 40_000_000
MAX_NAME_LENGTH = 200
_CHUNK = 64 * 1024

# extension -> (type served, Pillow format for pictures or None)
KINDS: dict[str, tuple[str, str | None]] = {
    "txt": ("text/plain; charset=utf-8", None),
    "pdf": ("application/pdf", None),
    "png": ("image/png", "PNG"),
    "jpg": ("image/jpeg", "JPEG"),
    "jpeg": ("image/jpeg", "JPEG"),
    "gif": ("image/gif", "GIF"),
}
REFUSED_KIND = "Only txt, pdf, png, jpg and gif files can be sent."


class FileTooLarge(ValidationError):
    """The file is over the upload limit."""


@dataclass(frozen=True)
class StoredFile:
    """A checked file kept in the upload folder."""

    stored_name: str
    mime_type: str
    size: int
    width: int | None = None
    height: int | None = None


def is_picture(mime_type: str) -> bool:
    """Whether files of this type are shown inline with a thumbnail."""
    return mime_type.startswith("image/")


def thumbnail_name(stored_name: str) -> str:
    """The thumbnail's file name beside the picture (PNG, or JPEG for a JPEG)."""
    stem, ext = stored_name.rsplit(".", 1)
    return f"{stem}.thumb.{'jpg' if ext == 'jpg' else 'png'}"


def thumbnail_mime_type(stored_name: str) -> str:
    """The type of a picture's thumbnail."""
    return "image/jpeg" if stored_name.endswith(".jpg") else "image/png"


def clean_name(original_name: str | None) -> str:
    """The name to show and offer at download: as sent, without control characters and
    without the invisible or text-direction characters that let ``a\u202egnp.txt``
    pass for ``atxt.png``."""
    name = without_hidden_characters(original_name or "")
    name = name.strip()[:MAX_NAME_LENGTH]
    return name or "file"


def extension(name: str) -> str:
    """The lower-case extension of a file name, or an empty string."""
    return name.rsplit(".", 1)[1].lower() if "." in name else ""


def store_upload(stream: IO[bytes], original_name: str, folder: Path, max_bytes: int) -> StoredFile:
    """Check an uploaded file and keep it under a new random name; raise ValidationError
    (FileTooLarge for size) and keep nothing when it is refused."""
    ext = extension(original_name)
    if ext not in KINDS:
        raise ValidationError(REFUSED_KIND)
    mime_type, picture_format = KINDS[ext]
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = f"{secrets.token_hex(16)}.{'jpg' if ext == 'jpeg' else ext}"
    partial = folder / f"{stored_name}.part"
    try:
        size = _copy_limited(stream, partial, max_bytes)
        width = height = None
        if picture_format:
            width, height = _check_picture(
                partial, picture_format, folder / thumbnail_name(stored_name)
            )
        elif ext == "pdf":
            _check_pdf(partial)
        else:
            _check_text(partial)
        partial.rename(folder / stored_name)
    except BaseException:
        partial.unlink(missing_ok=True)
        (folder / thumbnail_name(stored_name)).unlink(missing_ok=True)
        raise
    return StoredFile(stored_name, mime_type, size, width, height)


def delete_stored(folder: Path, stored_name: str) -> None:
    """Remove a stored file and its thumbnail, if any."""
    (folder / stored_name).unlink(missing_ok=True)
    (folder / thumbnail_name(stored_name)).unlink(missing_ok=True)


def _copy_limited(stream: IO[bytes], target: Path, max_bytes: int) -> int:
    size = 0
    with target.open("wb") as out:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise FileTooLarge(f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
            out.write(chunk)
    if size == 0:
        raise ValidationError("The file is empty.")
    return size


def _check_pdf(path: Path) -> None:
    with path.open("rb") as handle:
        if handle.read(5) != b"%PDF-":
            raise ValidationError("This file is not a real PDF document.")


def _check_text(path: Path) -> None:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("A .txt file must be UTF-8 text.") from None
    if "\x00" in text:
        raise ValidationError("A .txt file must be text, without NUL bytes.")


def _check_picture(path: Path, expected_format: str, thumbnail: Path) -> tuple[int, int]:
    """Prove the file is a picture of the claimed format; write its thumbnail; return the
    size as shown (after the camera's rotation)."""
    refused = f"This file is not a real {expected_format} picture."
    try:
        with Image.open(path) as image:
            if image.format != expected_format:
                raise ValidationError(refused)
            if image.width * image.height > MAX_PIXELS:
                raise ValidationError("This picture has too many pixels.")
            image.verify()
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image)
            width, height = upright.size
            upright.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
            if thumbnail.suffix == ".jpg":
                upright.convert("RGB").save(thumbnail, "JPEG", quality=85)
            else:
                if upright.mode not in {"RGB", "RGBA", "L", "LA"}:
                    upright = upright.convert("RGBA")
                upright.save(thumbnail, "PNG", optimize=True)
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationError(refused) from None
    return width, height
