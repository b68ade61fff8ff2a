"""Unmasking a browser's WebSocket frames (serving.apply_websocket_mask) gives what
eventlet's own byte-by-byte loop gives, for every length and position in the mask's cycle."""

from __future__ import annotations

import random

import pytest
from eventlet import websocket

from serving import apply_websocket_mask

EVENTLETS_OWN = websocket.RFC6455WebSocket.__dict__["_apply_mask"].__func__


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 7, 150, 1000, 65_536])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 9])
def test_the_same_bytes_as_eventlets_loop(length, offset):
    chance = random.Random(length * 10 + offset)
    data = chance.randbytes(length + chance.randint(0, 3))  # longer than length at times
    mask = tuple(chance.randbytes(4))
    assert apply_websocket_mask(data, mask, length=length, offset=offset) == EVENTLETS_OWN(
        data, mask, length=length, offset=offset
    )


def test_a_mask_given_as_a_list_and_no_length():
    """Masking a frame to send passes a list of four ints and the whole message."""
    data = "héllo, wörld".encode()
    mask = [0x12, 0x34, 0x56, 0x78]
    masked = apply_websocket_mask(data, mask)
    assert masked == EVENTLETS_OWN(data, mask)
    assert apply_websocket_mask(masked, mask) == data
