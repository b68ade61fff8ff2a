"""The stack's ceiling: python-socketio on eventlet relaying each message to a room.

No login, no database, no Flask: a socket joins a room with ``join_chat {chat_id}`` and
each ``message_sent {chat_id, body, client_id}`` is acknowledged and emitted once to the
room, skipping the sender. The event names and shapes are the chat's, so the load
generator drives both servers with the same code, and like the chat it declines the
client's offer of websocket compression (permessage-deflate): both servers write the same
plain frames, so neither pays a cost the other does not.

Run: ``python bench/baseline_relay.py --port 5001 [--max-connections 10000]``.
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import eventlet

eventlet.monkey_patch()

import socketio  # noqa: E402

from serving import disable_websocket_compression  # noqa: E402

MAX_MESSAGE_BYTES = 64 * 1024


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (one file per connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted) if hard == resource.RLIM_INFINITY else min(max(soft, wanted), hard)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def create_relay() -> socketio.Server:
    """A Socket.IO server that relays ``message_sent`` to the sender's room."""
    sio = socketio.Server(
        async_mode="eventlet", cors_allowed_origins=[], max_http_buffer_size=MAX_MESSAGE_BYTES
    )
    next_id = iter(range(1, 2**62))

    @sio.on("join_chat")
    def join_chat(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Put the socket in the room of ``chat_id``."""
        sio.enter_room(sid, f"chat:{payload['chat_id']}")
        return {"ok": True}

    @sio.on("message_sent")
    def message_sent(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Acknowledge the message and emit it once to its room."""
        message = {
            "id": next(next_id),
            "chat_id": payload["chat_id"],
            "body": payload["body"],
            "client_id": payload["client_id"],
            "created_at": time.time_ns() // 1_000_000,
        }
        sio.emit(
            "message_received_from_current_chat",
            {"message": message},
            to=f"chat:{payload['chat_id']}",
            skip_sid=sid,
        )
        return {"ok": True, "message": message}

    return sio


def main() -> None:
    """Serve the relay on loopback until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--max-connections", type=int, default=10_000)
    args = parser.parse_args()
    raise_open_files_limit(args.max_connections + 100)
    disable_websocket_compression()  # as the chat does (serving.py)
    app = socketio.WSGIApp(create_relay())
    listener = eventlet.listen((args.host, args.port), backlog=4096)
    print(f"relay listening on http://{args.host}:{args.port}/", flush=True)
    # Like the chat, eventlet's server would stop accepting at 1,024 connections.
    eventlet.wsgi.server(listener, app, max_size=args.max_connections, log_output=False)


if __name__ == "__main__":
    main()
