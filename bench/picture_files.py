"""Pictures for tests and benchmarks: any size in pixels, made without holding them."""

from __future__ import annotations

import struct
import zlib

# PNG colour types: greyscale, truecolour.
GREY = 0
RGB = 2
_CHANNELS = {GREY: 1, RGB: 3}


def huge_png(width: int, height: int, colour_type: int = GREY, rows: int | None = None) -> bytes:
    """A PNG of ``width`` × ``height`` black pixels: a few hundred KB at most, since its rows
    compress to almost nothing, yet every pixel must be decoded to show it. With ``rows``,
    only that many rows follow the header (a picture cut short: only its header is sound)."""
    row = b"\x00" + bytes(width * _CHANNELS[colour_type])  # filter byte "none", then pixels
    packer = zlib.compressobj(9)
    compressed = [packer.compress(row) for _ in range(height if rows is None else rows)]
    compressed.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", b"".join(compressed)),
            _chunk(b"IEND", b""),
        ]
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
