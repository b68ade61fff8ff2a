"""The JSON of Socket.IO frames (wire_json): what it writes and what it reads."""

from __future__ import annotations

import json
import math

import pytest

import wire_json


def test_frames_are_compact_utf8_json_that_a_browser_reads():
    text = wire_json.dumps({"body": "h\N{GRINNING FACE}", "ids": [1, 2]}, separators=(",", ":"))
    assert text == '{"body":"h\N{GRINNING FACE}","ids":[1,2]}'
    assert wire_json.size({"body": "\N{GRINNING FACE}"}) == len('{"body":""}') + 4


def test_a_float_that_is_not_a_number_is_written_as_null_never_nan():
    assert json.loads(wire_json.dumps([math.nan, math.inf])) == [None, None]


def test_keys_that_are_not_text_and_integers_beyond_64_bits_are_written_as_json_does():
    assert json.loads(wire_json.dumps({3: "a"})) == {"3": "a"}
    assert wire_json.dumps([2**70]) == f"[{2**70}]"


def test_what_the_standard_library_reads_is_still_read():
    """A lone surrogate's escape reaches the message checks, which refuse it with a sentence."""
    assert wire_json.loads('["a\\ud800"]') == ["a\ud800"]
    assert math.isnan(wire_json.loads("[NaN]")[0])


@pytest.mark.parametrize("text", ["[", '{"a":}', "[1]x", "[" * 100_000])
def test_unreadable_or_too_deeply_nested_text_is_a_value_error(text):
    with pytest.raises(ValueError):
        wire_json.loads(text)
