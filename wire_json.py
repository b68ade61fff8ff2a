"""The JSON of Socket.IO frames: python-socketio's and python-engineio's json module.

Every frame the server sends is encoded by ``dumps`` and every frame it receives decoded by
``loads``. orjson does both about ten times faster than the standard library: the ack and
the member emit of one message cost about 12 µs of encoding with ``json.dumps`` and 1 µs
with orjson. Its text is compact and UTF-8 as it is (an emoji is its 4 bytes, not a 12-byte
``\\ud83d\\ude00`` escape); a float that is not a number becomes ``null``, never ``NaN``,
which no browser's ``JSON.parse`` reads.

Reading is orjson's where it reads the text, else the standard library's (``\\ud800``
escapes of lone surrogates, which the message checks refuse with a sentence of their own,
see helpers.check_storable_text; ``NaN``). An integer beyond 64 bits is read as a float, which
every id check refuses as it refused the integer (too large). Nesting too deep for the parser
is a decoding error like any other (the standard library would raise RecursionError), so a
frame of ``[[[[...`` is refused as unreadable, never a crash.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from engineio import json as engineio_json

# Keys that are not text (an int) are written as text, as the standard library does.
OPTIONS = orjson.OPT_NON_STR_KEYS


def encode(value: Any) -> bytes:
    """``value`` as compact JSON, UTF-8 bytes: what goes on the wire."""
    try:
        return orjson.dumps(value, option=OPTIONS)
    except TypeError:  # an integer beyond 64 bits: the standard library writes it
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def dumps(value: Any, **_options: Any) -> str:
    """JSON text of ``value``, compact whatever separators are asked for (python-socketio
    asks for the compact ones)."""
    return encode(value).decode()


def size(value: Any) -> int:
    """The bytes ``value`` takes in a frame."""
    return len(encode(value))


def loads(text: str | bytes, **_options: Any) -> Any:
    """Decode ``text``; ValueError when it is not JSON or nested too deeply."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # not JSON, or JSON that orjson does not take: the standard library decides
    try:
        return engineio_json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
