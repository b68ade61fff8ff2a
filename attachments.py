"""Attachments: which files are allowed, how their content is checked, where they are kept.

A file is stored under a random name chosen here, never under the sender's name, and only
after its content proved to be what its extension says. Pictures get a thumbnail, made once
at upload and kept beside them.

Everything here blocks (file copies, checks, decoding pictures): the server calls it from a
thread of its pool, never on the event loop (docs/architecture.md, "Where the work of an
upload runs").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from helpers import ValidationError, without_hidden_characters

THUMBNAIL_SIZE = 480
MAX_NAME_LENGTH = 200
# A leftover (a ".part" file, a file no attachment row names) is removed only once it is this
# old: an upload in flight owns its files for seconds (checks, then the database write).
LEFTOVER_AGE_SECONDS = 3600
_CHUNK = 64 * 1024
# glibc's mallopt parameter: allocations from this size up are mapped on their own.
_M_MMAP_THRESHOLD = -3
_MAPPED_FROM_BYTES = 1024 * 1024
# EXIF orientations that turn the picture a quarter: width and height swap when shown.
_QUARTER_TURNS = {5, 6, 7, 8}

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


class PictureTooLarge(FileTooLarge):
    """The picture has more pixels than may be decoded."""


@dataclass(frozen=True)
class StoredFile:
    """A checked file kept in the upload folder."""

    stored_name: str
    mime_type: str
    size: int
    width: int | None = None
    height: int | None = None

    def row(self, uploaded_name: str) -> dict[str, Any]:
        """The attachment's row for ``db_commands.insert_message``."""
        return {
            "original_name": clean_name(uploaded_name),
            "stored_name": self.stored_name,
            "mime_type": self.mime_type,
            "size_bytes": self.size,
            "width": self.width,
            "height": self.height,
        }


def do_give_back_picture_memory() -> None:
    """Have the C allocator map every allocation of 1 MB or more on its own, so that a
    decoded picture's memory goes back to the system as soon as it is freed.

    glibc otherwise raises that threshold after the first big free, and each thread of the
    pool then keeps the pictures it decoded in its own arena: the server stayed at 716 MB
    after five 40-megapixel uploads, 244 MB with this (bench/pictures.py). Not glibc: no-op.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(_M_MMAP_THRESHOLD, _MAPPED_FROM_BYTES)
    except (OSError, AttributeError, TypeError):
        pass


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


def store_upload(
    stream: IO[bytes], original_name: str, folder: Path, max_bytes: int, max_pixels: int
) -> StoredFile:
    """Check an uploaded file and keep it under a new random name; raise ValidationError
    (FileTooLarge for bytes, PictureTooLarge for pixels) and keep nothing when it is refused.

    Blocking: file copies and picture decoding. Call it off the event loop.
    """
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
                partial, picture_format, folder / thumbnail_name(stored_name), max_pixels
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


def owner_names(file_name: str) -> set[str]:
    """The stored names that would own a file of the upload folder (itself, or the picture
    of a thumbnail); empty for a ".part" file, which nothing owns."""
    if file_name.endswith(".part"):
        return set()
    stem, _, rest = file_name.partition(".")
    if rest == "thumb.png":
        return {f"{stem}.png", f"{stem}.gif"}
    if rest == "thumb.jpg":
        return {f"{stem}.jpg"}
    return {file_name}


def sweep_leftovers(
    folder: Path, referenced: Iterable[str], min_age_seconds: float = LEFTOVER_AGE_SECONDS
) -> list[str]:
    """Remove what an interrupted upload left in ``folder`` (".part" files, files and
    thumbnails no stored name in ``referenced`` owns) once older than ``min_age_seconds``;
    return the names removed."""
    if not folder.is_dir():
        return []
    kept = set(referenced)
    cutoff = time.time() - min_age_seconds
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False) or entry.name.startswith("."):
                continue
            if owner_names(entry.name) & kept or entry.stat().st_mtime > cutoff:
                continue
            Path(entry.path).unlink(missing_ok=True)
            removed.append(entry.name)
    return sorted(removed)


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


def check_picture_size(width: int, height: int, max_pixels: int) -> None:
    """Refuse a picture whose pixels would take too much memory to decode."""
    if width * height > max_pixels:
        raise PictureTooLarge(
            f"This picture is {width}×{height} pixels ({width * height / 1e6:.1f} megapixels); "
            f"pictures of at most {max_pixels / 1e6:g} megapixels can be sent."
        )


def _check_picture(
    path: Path, expected_format: str, thumbnail: Path, max_pixels: int
) -> tuple[int, int]:
    """Prove the file is a picture of the claimed format; write its thumbnail; return the
    size as shown (after the camera's rotation)."""
    refused = f"This file is not a real {expected_format} picture."
    try:
        with Image.open(path, formats=[expected_format]) as image:
            # Opening reads the header only: the size is known before a pixel is decoded.
            check_picture_size(image.width, image.height, max_pixels)
            image.verify()
        with Image.open(path, formats=[expected_format]) as image:
            width, height = image.size
            # Shrink first, in place, then turn the small copy: a JPEG is decoded at 1/2 to
            # 1/8 of its size (draft), other pictures are decoded once and reduced, and no
            # full-size copy is made (exif_transpose of the full picture would make one).
            image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
            if image.getexif().get(ExifTags.Base.Orientation, 1) in _QUARTER_TURNS:
                width, height = height, width
            small = ImageOps.exif_transpose(image)
            if thumbnail.suffix == ".jpg":
                small.convert("RGB").save(thumbnail, "JPEG", quality=85)
            else:
                if small.mode not in {"RGB", "RGBA", "L", "LA"}:
                    small = small.convert("RGBA")
                small.save(thumbnail, "PNG", optimize=True)
    except Image.DecompressionBombError:
        # Pillow's own guard fires at open for sizes far past any sensible setting.
        raise PictureTooLarge(
            f"This picture has far too many pixels; pictures of at most "
            f"{max_pixels / 1e6:g} megapixels can be sent."
        ) from None
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(refused) from None
    return width, height
