"""Every setting of the chat, with its default, in one place.

An environment variable of the same name overrides a default (converted to the default's
type), and the mapping given to ``create_app`` overrides both. README.md documents each one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "HOST": "0.0.0.0",
    "PORT": 5000,
    "DATABASE_URL": "sqlite:///instance/messenger.db",
    "UPLOAD_FOLDER": "uploads",
    "SECRET_KEY": None,
    "SESSION_FILE_DIR": "instance/sessions",
    "SESSION_FILE_THRESHOLD": 50_000,
    "SESSION_COOKIE_SECURE": False,
    # Seconds a login lasts after its browser's last request (Flask's own setting); its
    # open sockets close at the next presence heartbeat after it ends.
    "PERMANENT_SESSION_LIFETIME": 31 * 24 * 3600,
    "SOCKETIO_ASYNC_MODE": "threading",
    "SOCKETIO_TRANSPORTS": "websocket,polling",
    "MAX_CONNECTIONS": 10_000,
    # One address may hold this many connections at once (a LAN behind one router shares
    # an address); 0: no cap. Off behind a proxy (TRUSTED_PROXIES): every peer is the proxy.
    "MAX_CONNECTIONS_PER_ADDRESS": 200,
    # How long a connection may keep the server waiting on its socket: idle between
    # requests, a request sent halfway, a stalled upload. WebSockets wait at least one
    # Engine.IO ping interval plus its timeout (45 s): their pongs prove them alive.
    "HTTP_TIMEOUT_SECONDS": 60,
    "MAX_MESSAGE_LENGTH": 4000,
    # How long after sending a message its sender may edit it, in seconds; 0: no limit.
    "EDIT_WINDOW_SECONDS": 0,
    "MESSAGES_ON_OPEN": 20,
    "MESSAGES_ON_SCROLL": 10,
    "MAX_MESSAGES_PER_FETCH": 500,
    "FIND_RESULTS_LIMIT": 20,
    # Message search (search_messages): results a page, and the longest query accepted.
    "SEARCH_RESULTS_PER_PAGE": 20,
    "MAX_SEARCH_QUERY_LENGTH": 200,
    "DEFAULT_CHANNEL": "General Talk",
    "SOCKET_MAX_MESSAGE_BYTES": 64 * 1024,
    # The messages of one page (join_chat, scrolling) take at most this many bytes of JSON;
    # the page is cut at a whole message and the rest comes on the next scroll.
    "MAX_REPLY_BYTES": 256 * 1024,
    # A socket whose frames wait unsent past this many bytes (a client that does not read)
    # is disconnected; its page catches up when it reconnects.
    "MAX_UNSENT_BYTES_PER_SOCKET": 4 * 1024 * 1024,
    "MAX_UPLOAD_MB": 10,
    # Pictures are refused from their header above this size, before a pixel is decoded
    # (decoding takes 3-4 bytes a pixel: 40 megapixels, about 160 MB).
    "MAX_PICTURE_MEGAPIXELS": 40,
    # Uploads checked at once (copy, content check, thumbnail, in threads off the event
    # loop); the others wait their turn, which bounds the memory pictures take.
    "UPLOAD_WORKERS": 2,
    "DB_POOL_SIZE": 20,
    # SQLite: how long a write may wait for the write lock (held by another process: a
    # backup, a sqlite3 shell) before it fails with "The database is busy; try again in a
    # moment."; reads never wait for it. And how many threads read, each its own connection.
    "DB_WRITE_TIMEOUT_SECONDS": 5.0,
    "DB_READ_THREADS": 4,
    "PRESENCE_TTL_SECONDS": 60,
    # The online count goes out at most once per this many seconds from each worker (at
    # once after a quiet spell, else at the end of it): a thousand people coming back after
    # a restart would otherwise send a thousand counts to each of them.
    "ONLINE_COUNT_INTERVAL_SECONDS": 1.0,
    # Several workers: one Redis carries Socket.IO's message queue, the sessions, the limit
    # counters and presence, every key under REDIS_PREFIX. Empty: one process, in memory.
    "REDIS_URL": "",
    "REDIS_PREFIX": "chat",
    # Each worker's Redis connections: one pool for sessions, limit counters and presence,
    # one for publishing on the message queue, each of at most REDIS_POOL_SIZE; a caller
    # that finds every connection of its pool in use waits up to REDIS_POOL_WAIT_SECONDS
    # for one (then: "try again").
    "REDIS_POOL_SIZE": 50,
    "REDIS_POOL_WAIT_SECONDS": 5.0,
    "PASSWORD_HASH_METHOD": "scrypt",
    # The browser origin(s) the chat is served from when a reverse proxy changes the scheme
    # or host, e.g. "https://chat.example.org"; empty: only the same origin may connect.
    "PUBLIC_ORIGIN": "",
    # How many reverse proxies in front of the chat set X-Forwarded-For/-Proto/-Host; 0 when
    # browsers connect directly (then those headers are ignored: a client could forge them).
    "TRUSTED_PROXIES": 0,
    # Limits, in the syntax of the `limits` package. Shared by every worker through
    # RATELIMIT_STORAGE_URI (memory:// for one process, redis://... for several).
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    "SEND_RATE_LIMIT": "20 per 2 seconds",
    "TYPING_RATE_LIMIT": "10 per 10 seconds",
    "CHANNEL_RATE_LIMIT": "5 per minute",
    # Every other Socket.IO event has a per-user budget too (see events.py), well above
    # what a person does, including every tab's catch-up after a reconnect.
    "JOIN_CHAT_RATE_LIMIT": "60 per 10 seconds",
    "LIST_CHATS_RATE_LIMIT": "30 per 10 seconds",
    "PAGING_RATE_LIMIT": "120 per 10 seconds",
    "READ_REPORT_RATE_LIMIT": "100 per 10 seconds",
    "SEARCH_RATE_LIMIT": "60 per 10 seconds",
    "JOIN_CHANNEL_RATE_LIMIT": "30 per minute",
    "CHANNEL_CHANGE_RATE_LIMIT": "30 per minute",
    "LIST_MEMBERS_RATE_LIMIT": "60 per minute",
    "MESSAGE_CHANGE_RATE_LIMIT": "30 per 10 seconds",
    "REACTION_RATE_LIMIT": "60 per 10 seconds",
    "UPLOAD_RATE_LIMIT": "30 per minute",
    "LOGIN_RATE_LIMIT": "10 per minute",
    # Failed logins per account from all addresses together, tighter the longer a guessing
    # goes on; a browser that logged in to the account before is spared (login_devices.py).
    "LOGIN_ACCOUNT_RATE_LIMIT": "20 per 10 minutes; 50 per hour; 200 per day",
    "REGISTER_RATE_LIMIT": "20 per hour",
    # HTTPS on the LAN (local_tls.py): a CA and a server certificate made into TLS_FOLDER,
    # or TLS_CERT / TLS_KEY of your own (either one turns HTTPS on).
    "HTTPS": False,
    "TLS_CERT": "",
    "TLS_KEY": "",
    "TLS_FOLDER": "instance/tls",
    # The chat announced as <hostname>.local by mDNS (lan_announce.py), on every interface
    # or on the addresses of MDNS_INTERFACES.
    "MDNS": True,
    "MDNS_INTERFACES": "",
    # Scheduled backups (backup.py): a folder for the archives (empty: none), how often one
    # is taken, and how many of the newest are kept.
    "BACKUP_DIR": "",
    "BACKUP_EVERY_HOURS": 24.0,
    "BACKUP_KEEP": 7,
}


def settings_from_environment() -> dict[str, Any]:
    """Every setting: its environment variable if set, else its default."""
    return {name: from_env(name, default) for name, default in DEFAULTS.items()}


def from_env(name: str, default: Any) -> Any:
    """The environment's value for a setting, converted to the type of its default."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load_secret_key(instance_path: Path) -> str:
    """The key from ``instance/secret_key``, generated on first start, readable by its owner."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return key_file.read_text().strip()
