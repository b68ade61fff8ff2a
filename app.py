"""The chat's web application: configuration, extensions, pages and error pages.

``create_app`` is the one entry point for production and tests. ``python app.py`` starts the
eventlet server; only then is the standard library monkey-patched, never on import.
"""

if __name__ == "__main__":
    import warnings

    # The chosen server is eventlet; its deprecation banner would bury the addresses we print.
    warnings.filterwarnings("ignore", message="\nEventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from cachelib import FileSystemCache
from flask import Flask, g
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

import admin
import app_shell
import auth
import backup
import broadcast
import channels  # noqa: F401  (its Socket.IO events, registered below)
import db_commands
import errors
import events
import files
import https_pages
import pages
import passwords
import presence
import private_files
import profiles
import serving
import sign_in_links
import socket_budget
import socket_frames
import user_commands
import wire_json
from extensions import csrf, server_session, socketio
from helpers import IdConverter
from login_sessions import LoginSessions
from message_queue import ResyncingRedisManager
from presence import LocalPresence, PresenceTracker, RedisPresence
from rate_limits import event_limiter
from settings import DEFAULTS, load_secret_key, settings_from_environment
from socket_context import ChatFlask, LocalRooms, SocketEventSessions
from socket_guard import SocketGuard

ROOT = Path(__file__).resolve().parent

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Room for the form fields that travel with an uploaded file.
UPLOAD_FORM_OVERHEAD = 64 * 1024

events.register(socketio)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the chat: defaults, then environment variables, then ``config``."""
    app = ChatFlask(__name__, instance_path=str(ROOT / "instance"))
    app.url_map.converters["id"] = IdConverter
    app.config.update(settings_from_environment())
    app.config.update(config or {})
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = load_secret_key(Path(app.instance_path))
    app.config["UPLOAD_PATH"] = Path(app.root_path, app.config["UPLOAD_FOLDER"])
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_MB"] * 1024 * 1024 + (
        UPLOAD_FORM_OVERHEAD
    )
    redis_client = (
        redis.Redis(connection_pool=redis_pool(app.config["REDIS_URL"], app.config))
        if app.config["REDIS_URL"]
        else None
    )

    private_files.make_data_private(app)
    db_commands.init_app(app)
    backup.init_app(app)
    passwords.stand_in_hash(app.config["PASSWORD_HASH_METHOD"])
    _init_sessions(app, redis_client)
    csrf.init_app(app)
    _init_socketio(app)
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    _init_limits(app, redis_client)
    _init_presence(app, redis_client)
    app.after_request(security_headers)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(files.bp)
    app.register_blueprint(errors.bp)
    app.register_blueprint(profiles.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(sign_in_links.bp)
    user_commands.init_app(app)
    https_pages.init_app(app)
    app_shell.init_app(app)
    return app


def redis_pool(url: str, config: Mapping[str, Any]) -> redis.BlockingConnectionPool:
    """A pool of at most ``REDIS_POOL_SIZE`` connections to ``url`` in which a caller waits
    up to ``REDIS_POOL_WAIT_SECONDS`` for a free one; redis-py's default pool fails at once
    ("Too many connections") when a burst takes them all."""
    return redis.BlockingConnectionPool.from_url(
        url, max_connections=config["REDIS_POOL_SIZE"], timeout=config["REDIS_POOL_WAIT_SECONDS"]
    )


def _init_sessions(app: Flask, redis_client: redis.Redis | None) -> None:
    """Server-side sessions: in Redis when workers share one, else in files."""
    if redis_client is not None:
        app.config.update(
            SESSION_TYPE="redis",
            SESSION_REDIS=redis_client,
            SESSION_KEY_PREFIX=f"{app.config['REDIS_PREFIX']}:session:",
        )
    else:
        app.config.update(
            SESSION_TYPE="cachelib",
            SESSION_CACHELIB=FileSystemCache(
                str(Path(app.root_path, app.config["SESSION_FILE_DIR"])),
                threshold=app.config["SESSION_FILE_THRESHOLD"],
                mode=0o600,
            ),
        )
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_PERMANENT=True,
        # A CSRF token lives as long as its session: a chats page left open all day can
        # still upload (the token is still tied to the session and checked on every POST).
        WTF_CSRF_TIME_LIMIT=None,
    )
    server_session.init_app(app)
    app.session_interface = SocketEventSessions(LoginSessions(app.session_interface))


def _init_socketio(app: Flask) -> None:
    """Socket.IO, through Redis's message queue when there are several workers."""
    origins = [o.strip() for o in app.config["PUBLIC_ORIGIN"].split(",") if o.strip()]
    queue = None
    if app.config["REDIS_URL"]:
        queue = ResyncingRedisManager(
            app.config["REDIS_URL"],
            channel=f"{app.config['REDIS_PREFIX']}-socketio",
            pool_size=app.config["REDIS_POOL_SIZE"],
            pool_wait_seconds=app.config["REDIS_POOL_WAIT_SECONDS"],
        )
    socketio.init_app(
        app,
        # None keeps python-socketio's same-origin check: a page on another site cannot
        # open a socket with our users' cookies (cross-site WebSocket hijacking).
        cors_allowed_origins=origins or None,
        # Each app its own: the shared SocketIO object must not keep an earlier app's rooms.
        client_manager=queue or LocalRooms(),
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        max_http_buffer_size=app.config["SOCKET_MAX_MESSAGE_BYTES"],
        transports=[t.strip() for t in app.config["SOCKETIO_TRANSPORTS"].split(",") if t.strip()],
        logger=False,
        engineio_logger=False,
        # A socket's events run one after another in its own reader, in the order sent,
        # instead of a new greenlet each: one spawn less per message, and no handler ever
        # waits for a reply of the same client (the server makes no call() to clients).
        async_handlers=False,
        # Malformed frames are refused while decoding and logged briefly (socket_frames.py).
        serializer=socket_frames.CheckedPacket,
        json=wire_json,
    )
    socket_frames.install(socketio.server)
    socket_frames.install_engine_filter()
    app.wsgi_app = SocketGuard(app.wsgi_app, app.config["SESSION_COOKIE_NAME"])
    # Each socket yields to the others after each of its events; unsent frames are bounded.
    socket_budget.install(socketio.server, app.config["MAX_UNSENT_BYTES_PER_SOCKET"])


def _init_limits(app: Flask, redis_client: redis.Redis | None) -> None:
    """One limiter for HTTP routes and Socket.IO events; its counters in Redis when the
    workers share one (unless RATELIMIT_STORAGE_URI names another storage), through the
    pool of ``redis_client`` (or a blocking pool of its own for another Redis)."""
    storage_uri = app.config["RATELIMIT_STORAGE_URI"]
    if app.config["REDIS_URL"] and storage_uri == DEFAULTS["RATELIMIT_STORAGE_URI"]:
        storage_uri = app.config["REDIS_URL"]
    prefix = app.config["REDIS_PREFIX"]
    storage_options: dict[str, Any] = {}
    if storage_uri.startswith("redis"):
        storage_options["key_prefix"] = f"{prefix}:limits"
    if redis_client is not None and storage_uri == app.config["REDIS_URL"]:
        storage_options["connection_pool"] = redis_client.connection_pool
    elif storage_uri.startswith(("redis://", "rediss://", "redis+unix://")):
        # limits' own client would have redis-py's default pool (sentinel and cluster
        # storages keep theirs).
        url = storage_uri.replace("redis+unix://", "unix://")
        storage_options["connection_pool"] = redis_pool(url, app.config)
    app.extensions["rate_limiter"] = Limiter(
        get_remote_address,
        app=app,
        storage_uri=storage_uri,
        storage_options=storage_options,
        key_prefix=prefix,
        headers_enabled=True,  # Retry-After on a 429 tells a client when to try again
    )
    limiter = app.extensions["rate_limiter"]
    app.extensions["event_limiter"] = event_limiter(limiter.storage if limiter.enabled else None)


def _init_presence(app: Flask, redis_client: redis.Redis | None) -> None:
    """Who is online: in Redis when workers share one, else in this process."""
    ttl = app.config["PRESENCE_TTL_SECONDS"]
    store = (
        RedisPresence(
            redis_client,
            app.config["REDIS_PREFIX"],
            ttl,
            session_lifetime=int(app.permanent_session_lifetime.total_seconds()),
        )
        if redis_client
        else LocalPresence(ttl)
    )
    app.extensions["presence"] = PresenceTracker(store)
    app.extensions["online_count"] = broadcast.OnlineCount(
        socketio, store.online_count, app.config["ONLINE_COUNT_INTERVAL_SECONDS"]
    )


def security_headers(response: Any) -> Any:
    """The headers of every answer: a strict Content-Security-Policy and its companions."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    # A logged-in page must not come back from the browser's cache (Back after logout).
    if g.get("user") is not None and response.mimetype in ("text/html", "application/json"):
        headers.setdefault("Cache-Control", "no-store")
    return response


def main() -> None:
    """Start the chat on eventlet with the settings from the environment."""
    serving.prepare_process()
    listener = serving.listen(settings_from_environment())
    app = create_app({"SOCKETIO_ASYNC_MODE": "eventlet"})
    files.do_sweep_uploads(app)
    socketio.start_background_task(presence.presence_heartbeat, app)
    backup.start_schedule(app, socketio.sleep, socketio.start_background_task)
    serving.serve(app, listener)


if __name__ == "__main__":
    main()
