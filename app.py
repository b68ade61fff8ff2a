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

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import redis
from cachelib import FileSystemCache
from flask import (
    Flask,
    abort,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_session import Session
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

import attachments
import db_commands
import events
import login_devices
import messaging
import passwords
import private_files
import socket_budget
import socket_frames
from helpers import (
    MAX_CHANNEL_NAME_LENGTH,
    MAX_USERNAME_LENGTH,
    IdConverter,
    ValidationError,
    check_id,
    check_password,
    check_username,
    login_required,
    parse_id,
    safe_next_url,
    serialize_chat,
    serialize_message,
    user_room,
    wants_json,
)
from login_sessions import LoginSessions
from message_queue import ResyncingRedisManager
from presence import LocalPresence, PresenceTracker, RedisPresence
from rate_limits import event_limiter
from settings import DEFAULTS, load_secret_key, settings_from_environment
from socket_context import ChatFlask, LocalRooms, SocketEventSessions
from socket_guard import SocketGuard
from transient import is_transient, log_transient, unavailable_answer

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
# Connections the kernel queues before the server accepts them (capped by somaxconn).
LISTEN_BACKLOG = 4096
# Room for the form fields that travel with an uploaded file.
UPLOAD_FORM_OVERHEAD = 64 * 1024

T = TypeVar("T")

socketio = SocketIO()
events.register(socketio)
server_session = Session()
csrf = CSRFProtect()
log = logging.getLogger("chat")


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
        redis.Redis.from_url(app.config["REDIS_URL"]) if app.config["REDIS_URL"] else None
    )

    private_files.make_data_private(app)
    db_commands.init_app(app)
    passwords.stand_in_hash(app.config["PASSWORD_HASH_METHOD"])
    _init_sessions(app, redis_client)
    csrf.init_app(app)
    _init_socketio(app)
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    _init_limits(app)
    ttl = app.config["PRESENCE_TTL_SECONDS"]
    store = (
        RedisPresence(redis_client, app.config["REDIS_PREFIX"], ttl)
        if redis_client
        else LocalPresence(ttl)
    )
    app.extensions["presence"] = PresenceTracker(store)
    app.extensions["online_count"] = events.OnlineCount(
        socketio, store.online_count, app.config["ONLINE_COUNT_INTERVAL_SECONDS"]
    )
    _register_pages(app)
    _register_uploads(app)
    _register_errors(app)
    return app


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
            app.config["REDIS_URL"], channel=f"{app.config['REDIS_PREFIX']}-socketio"
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
        json=socket_frames.SafeJSON,
    )
    socket_frames.install(socketio.server)
    socket_frames.install_engine_filter()
    app.wsgi_app = SocketGuard(app.wsgi_app, app.config["SESSION_COOKIE_NAME"])
    # Each socket yields to the others after each of its events; unsent frames are bounded.
    socket_budget.install(socketio.server, app.config["MAX_UNSENT_BYTES_PER_SOCKET"])


def _init_limits(app: Flask) -> None:
    """One limiter for HTTP routes and Socket.IO events; its counters in Redis when the
    workers share one (unless RATELIMIT_STORAGE_URI names another storage)."""
    storage_uri = app.config["RATELIMIT_STORAGE_URI"]
    if app.config["REDIS_URL"] and storage_uri == DEFAULTS["RATELIMIT_STORAGE_URI"]:
        storage_uri = app.config["REDIS_URL"]
    prefix = app.config["REDIS_PREFIX"]
    app.extensions["rate_limiter"] = Limiter(
        get_remote_address,
        app=app,
        storage_uri=storage_uri,
        storage_options={"key_prefix": f"{prefix}:limits"}
        if storage_uri.startswith("redis")
        else {},
        key_prefix=prefix,
        headers_enabled=True,  # Retry-After on a 429 tells a client when to try again
    )
    limiter = app.extensions["rate_limiter"]
    app.extensions["event_limiter"] = event_limiter(limiter.storage if limiter.enabled else None)


# -- pages ---------------------------------------------------------------------------


def _register_pages(app: Flask) -> None:
    limiter: Limiter = app.extensions["rate_limiter"]

    def failed(response: Any) -> bool:
        return response.status_code != 303

    def typed_account() -> str:
        return "account:" + login_devices.account_name(request.form.get("username", ""))

    @app.before_request
    def load_user() -> None:
        user_id = session.get("user_id")
        g.user = db_commands.get_user(user_id) if user_id is not None else None
        if user_id is not None and g.user is None:
            session.clear()

    @app.after_request
    def security_headers(response: Any) -> Any:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        # A logged-in page must not come back from the browser's cache (Back after logout).
        if g.get("user") is not None and response.mimetype in ("text/html", "application/json"):
            headers.setdefault("Cache-Control", "no-store")
        return response

    @app.context_processor
    def inject_user() -> dict[str, Any]:
        user = g.get("user")
        return {"current_user": {"id": user["id"], "username": user["username"]} if user else None}

    @app.route("/register", methods=["GET", "POST"])
    @limiter.limit(lambda: app.config["REGISTER_RATE_LIMIT"], methods=["POST"])
    def register() -> Any:
        if request.method == "GET":
            return render_template("register.html", username="", errors={}, next=_next_arg())
        errors: dict[str, str] = {}
        raw_username = request.form.get("username", "")
        try:
            username = check_username(raw_username)
        except ValidationError as error:
            errors["username"] = str(error)
        try:
            password = check_password(
                request.form.get("password", ""), request.form.get("confirmation", "")
            )
        except ValidationError as error:
            key = "confirmation" if "match" in str(error) else "password"
            errors[key] = str(error)
        if not errors:
            try:
                user_id = db_commands.insert_user(
                    username,
                    passwords.make_hash(password, app.config["PASSWORD_HASH_METHOD"]),
                    app.config["DEFAULT_CHANNEL"],
                )
            except db_commands.IntegrityError:
                errors["username"] = "This username is taken."
        if errors:
            return render_template(
                "register.html", username=raw_username, errors=errors, next=_next_arg()
            ), 400
        _log_in(app, user_id)
        return _redirect_after_login(app, username)

    @app.route("/login", methods=["GET", "POST"])
    @limiter.limit(
        lambda: app.config["LOGIN_RATE_LIMIT"],
        methods=["POST"],
        deduct_when=failed,
        override_defaults=False,
    )
    @limiter.limit(
        lambda: app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
        methods=["POST"],
        key_func=typed_account,
        # The owner's own browser is spared, so nobody can lock them out by guessing.
        exempt_when=lambda: login_devices.is_known(app, request.form.get("username", "")),
        deduct_when=failed,
        override_defaults=False,
    )
    def login() -> Any:
        if request.method == "GET":
            return render_template("login.html", username="", errors={}, next=_next_arg())
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        user = db_commands.get_user_credentials(username) if username else None
        stored_hash = user["password_hash"] if user is not None else None
        if not passwords.is_correct(stored_hash, password, app.config["PASSWORD_HASH_METHOD"]):
            errors = {"form": "Wrong username or password."}
            return render_template(
                "login.html", username=username, errors=errors, next=_next_arg()
            ), 400
        _log_in(app, user["id"])
        return _redirect_after_login(app, username)

    @app.post("/logout")
    def logout() -> Any:
        key = events.session_key(request.cookies.get(app.config["SESSION_COOKIE_NAME"]))
        session.clear()
        if key:
            events.close_session_sockets(key)
        return redirect(url_for("login"), 303)

    @app.get("/")
    @login_required
    def index() -> Any:
        chats = db_commands.list_chats_for_member(g.user["id"])
        unread_total = sum(chat["unread_count"] for chat in chats)
        return render_template("index.html", unread_total=unread_total)

    @app.get("/find")
    @login_required
    def find() -> Any:
        query = request.args.get("q")
        if query is None:
            return render_template("find.html", max_query_length=MAX_USERNAME_LENGTH)
        query = query.strip()
        if len(query) > MAX_USERNAME_LENGTH:  # longer than any name: it matches nobody
            return jsonify([])
        return jsonify(db_commands.list_users_matching(query, app.config["FIND_RESULTS_LIMIT"]))

    @app.post("/add")
    @login_required
    def add() -> Any:
        try:
            partner_id = check_id(_int_or_none(request.form.get("user_id")), "user_id")
        except ValidationError as error:
            return _apology(400, str(error))
        if db_commands.get_user(partner_id) is None:
            return _apology(404, "There is no such person.")
        chat_id, created = db_commands.get_or_insert_direct_chat(g.user["id"], partner_id)
        if created:
            for member_id in {g.user["id"], partner_id}:
                chat = db_commands.get_chat_for_member(chat_id, member_id)
                socketio.emit("chat_added", {"chat": serialize_chat(chat)}, to=user_room(member_id))
        return redirect(url_for("chats", chat=chat_id), 303)

    @app.get("/chats")
    @login_required
    def chats() -> Any:
        open_chat_id = g.user["last_chat_id"]
        if "chat" in request.args:
            open_chat_id = _int_or_none(request.args["chat"])
            if open_chat_id is None or not db_commands.get_chat_for_member(
                open_chat_id, g.user["id"]
            ):
                return _apology(404, "This chat does not exist or you are not in it.")
        elif open_chat_id is not None and not db_commands.get_chat_for_member(
            open_chat_id, g.user["id"]
        ):
            open_chat_id = None
        settings = {
            "max_message_length": app.config["MAX_MESSAGE_LENGTH"],
            "max_channel_name_length": MAX_CHANNEL_NAME_LENGTH,
            "transports": app.config["SOCKETIO_TRANSPORTS"],
            "max_upload_bytes": app.config["MAX_UPLOAD_MB"] * 1024 * 1024,
        }
        return render_template("chats.html", open_chat_id=open_chat_id, settings=settings)


def _register_uploads(app: Flask) -> None:
    limiter: Limiter = app.extensions["rate_limiter"]
    # Green under `python app.py` (threading is monkey-patched): a waiting upload yields.
    upload_slots = threading.BoundedSemaphore(app.config["UPLOAD_WORKERS"])

    @app.post("/upload")
    @csrf.exempt  # checked below, after the login, so a logged-out browser hears 401
    @login_required
    @limiter.limit(
        lambda: app.config["UPLOAD_RATE_LIMIT"], key_func=lambda: f"upload:{g.user['id']}"
    )
    def upload() -> Any:
        if app.config["WTF_CSRF_ENABLED"]:
            csrf.protect()
        user_id = g.user["id"]
        form = request.form
        try:
            draft = messaging.check_message(
                user_id,
                parse_id(form.get("chat_id")),
                form.get("caption", ""),
                form.get("client_id"),
                caption=True,
            )
        except messaging.NotAMember as error:
            return _json_error(404, str(error))
        except ValidationError as error:
            return _json_error(400, str(error))
        stored = db_commands.get_message_by_client_id(user_id, draft.client_id)
        if stored is not None:  # a retry of an upload that already made its message
            return jsonify({"ok": True, "message": serialize_message(stored)}), 200
        file = request.files.get("file")
        if file is None or not file.filename:
            return _json_error(400, "Choose a file to send.")
        folder = app.config["UPLOAD_PATH"]
        try:
            with upload_slots:
                kept = _off_the_loop(
                    app,
                    attachments.store_upload,
                    file.stream,
                    file.filename,
                    folder,
                    app.config["MAX_UPLOAD_MB"] * 1024 * 1024,
                    int(app.config["MAX_PICTURE_MEGAPIXELS"] * 1_000_000),
                )
        except attachments.FileTooLarge as error:
            return _json_error(413, str(error))
        except ValidationError as error:
            return _json_error(400, str(error))
        # Born private under `python app.py`'s umask; made so here under any other host.
        private_files.make_private(
            folder / kept.stored_name, folder / attachments.thumbnail_name(kept.stored_name)
        )
        try:
            message, created = messaging.do_send_message(draft, kept.row(file.filename))
        except BaseException:
            # No row names the files: they go, and a retry (the browser sends the file again
            # after a 503 for a locked database) stores them afresh.
            attachments.delete_stored(folder, kept.stored_name)
            raise
        if not created:
            attachments.delete_stored(folder, kept.stored_name)
            return jsonify({"ok": True, "message": message}), 200
        return jsonify({"ok": True, "message": message}), 201

    @app.get("/uploads/<id:attachment_id>")
    @login_required
    def download(attachment_id: int) -> Any:
        found = db_commands.get_attachment_for_member(attachment_id, g.user["id"])
        if found is None:
            abort(404)
        picture = attachments.is_picture(found["mime_type"])
        return _send_stored(
            found["stored_name"],
            found["mime_type"],
            as_attachment=not picture,
            # Names stored before look-alike characters were removed are cleaned here.
            download_name=attachments.clean_name(found["original_name"]),
        )

    @app.get("/uploads/<id:attachment_id>/thumbnail")
    @login_required
    def thumbnail(attachment_id: int) -> Any:
        found = db_commands.get_attachment_for_member(attachment_id, g.user["id"])
        if found is None or not attachments.is_picture(found["mime_type"]):
            abort(404)
        return _send_stored(
            attachments.thumbnail_name(found["stored_name"]),
            attachments.thumbnail_mime_type(found["stored_name"]),
            as_attachment=False,
            download_name=attachments.clean_name(found["original_name"]),
        )

    def _send_stored(name: str, mime_type: str, *, as_attachment: bool, download_name: str) -> Any:
        path = Path(app.config["UPLOAD_PATH"], name)
        if not path.is_file():
            abort(404)
        response = send_file(
            path,
            mimetype=mime_type,
            as_attachment=as_attachment,
            download_name=download_name,
            max_age=0,
            conditional=True,
        )
        # A stored file never changes; only the people of its chat may keep a copy.
        response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
        return response


def _off_the_loop(app: Flask, function: Callable[..., T], *args: Any) -> T:
    """Run blocking work (files, pictures) in a real thread under eventlet, whose event loop
    would otherwise stop every socket of the worker while it runs; a plain call in
    threading mode, where each request has its own thread already."""
    if app.config["SOCKETIO_ASYNC_MODE"] == "eventlet":
        from eventlet import tpool

        return tpool.execute(function, *args)
    return function(*args)


def _json_error(code: int, message: str) -> Any:
    return jsonify({"ok": False, "error": message}), code


def _unavailable() -> Any:
    """503 for a passing failure (an upload's client sends it again by itself)."""
    if wants_json():
        response = jsonify(unavailable_answer())
    else:
        response = make_response(
            render_template("apology.html", code=503, message=unavailable_answer()["error"])
        )
    # No Retry-After: on a rate-limited route Flask-Limiter would raise it to its window's
    # end; the browser waits with its own backoff instead.
    response.status_code = 503
    return response


def _next_arg() -> str:
    return safe_next_url(request.values.get("next")) or ""


def _int_or_none(raw: str | None) -> int | None:
    return parse_id(raw)


def _log_in(app: Flask, user_id: int) -> None:
    """Start a fresh session for ``user_id`` under a new session id (no fixation). The login
    session it replaces (a login on a browser already logged in) ends with its sockets."""
    replaced = None
    if session.get("user_id") is not None:
        replaced = events.session_key(request.cookies.get(app.config["SESSION_COOKIE_NAME"]))
    session.clear()
    session["user_id"] = user_id
    app.session_interface.regenerate(session)
    if replaced:
        events.close_session_sockets(replaced)


def _redirect_after_login(app: Flask, username: str) -> Any:
    response = redirect(_next_arg() or url_for("chats"), 303)
    login_devices.remember(app, response, username)
    return response


# -- errors --------------------------------------------------------------------------


def _apology(code: int, message: str) -> Any:
    if wants_json():
        return jsonify({"ok": False, "error": message}), code
    return render_template("apology.html", code=code, message=message), code


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> Any:
        return _apology(400, "The form expired or came from another site. Please try again.")

    @app.errorhandler(429)
    def too_many(error: HTTPException) -> Any:
        if request.endpoint in {"login", "register"}:
            errors = {"form": "Too many attempts. Please wait a minute and try again."}
            page = render_template(
                f"{request.endpoint}.html",
                username=request.form.get("username", ""),
                errors=errors,
                next=_next_arg(),
            )
            return page, 429
        if wants_json():
            return jsonify({"ok": False, "error": events.TOO_FAST, "code": "rate_limited"}), 429
        return _apology(429, events.TOO_FAST)

    @app.errorhandler(ClientDisconnected)
    def stalled(error: ClientDisconnected) -> Any:
        # The body stopped coming (HTTP_TIMEOUT_SECONDS without a byte) or was cut short.
        return _apology(408, "The request stopped arriving before its end. Please try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        return _apology(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Any:
        if is_transient(error):
            log_transient(f"{request.method} {request.path}", error)
            return _unavailable()
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        return _apology(500, "Something went wrong on the server. Please try again.")


# -- starting the server -------------------------------------------------------------


def lan_address() -> str | None:
    """This machine's address on the local network, or None when it has none."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # Connecting a UDP socket sends nothing; it only asks the kernel which local
        # address would route to a documentation-range address (RFC 5737).
        probe.connect(("192.0.2.1", 9))
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (one file per connection)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def print_addresses(host: str, port: int) -> None:
    """Tell the person who started the chat where to open it, with a QR code for phones."""
    import segno

    print(f"\n  Chat is running.\n  On this computer:  http://localhost:{port}/")
    lan = lan_address() if host in {"0.0.0.0", "::"} else None
    if lan:
        url = f"http://{lan}:{port}/"
        print(f"  On your network:   {url}\n  Point a phone's camera at this code:\n")
        segno.make(url, error="m").terminal(compact=True)
    print(flush=True)


def disable_websocket_compression() -> None:
    """Answer no to the browser's offer of permessage-deflate on eventlet's WebSockets.

    Chat frames are small JSON: compressing each one for each socket saves few bytes, yet
    it took a tenth of the server's time per message and a zlib state per socket.
    eventlet has no setting for it, hence the patch of its negotiation.
    """
    from eventlet import websocket

    websocket.WebSocketWSGI._negotiate_permessage_deflate = lambda self, extensions: None


def main() -> None:
    """Start the chat on eventlet with the settings from the environment."""
    import connections

    # Everything this process creates from now on is its owner's only (private_files.py).
    os.umask(private_files.PROCESS_UMASK)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings_from_environment()
    # First of all, so that a second server on the same port stops before touching anything.
    listener = connections.open_listener(settings["HOST"], settings["PORT"], LISTEN_BACKLOG)
    if os.environ.get("DATABASE_URL", "").startswith(("postgresql:", "postgres:")):
        # psycopg2 waits on its socket through eventlet's hub instead of blocking the process.
        from eventlet.support import psycopg2_patcher

        psycopg2_patcher.make_psycopg_green()
    app = create_app({"SOCKETIO_ASYNC_MODE": "eventlet"})
    do_sweep_uploads(app)
    attachments.do_give_back_picture_memory()
    max_connections = app.config["MAX_CONNECTIONS"]
    raise_open_files_limit(max_connections + 100)
    disable_websocket_compression()
    print_addresses(app.config["HOST"], app.config["PORT"])
    socketio.start_background_task(events.presence_heartbeat, app)
    serve(app, listener, max_connections)


def do_sweep_uploads(app: Flask) -> None:
    """Remove what interrupted uploads left in the upload folder (see
    ``attachments.sweep_leftovers``): at start, before any upload can be in flight here."""
    with app.app_context():
        referenced = db_commands.list_stored_names()
    removed = attachments.sweep_leftovers(app.config["UPLOAD_PATH"], referenced)
    if removed:
        log.info("Removed %d leftover files from the upload folder", len(removed))


def serve(app: Flask, listener: Any, max_connections: int) -> None:
    """What ``socketio.run`` does on eventlet, with a listen backlog for a crowd (after a
    restart every open page reconnects at once, and eventlet's default backlog of 50 would
    leave the rest waiting for SYN retries: 1 s, 3 s, 7 s...), a timeout on every wait for a
    client, and a cap on the connections of one address."""
    import eventlet.wsgi

    import connections

    # Behind a reverse proxy every connection comes from the proxy: the proxy caps per
    # client address (limit_conn in deploy/nginx.conf), the chat cannot.
    per_address = 0 if app.config["TRUSTED_PROXIES"] else app.config["MAX_CONNECTIONS_PER_ADDRESS"]
    eventlet.wsgi.server(
        listener,
        app,
        # At most max_connections at once (eventlet's default stops accepting at 1,024).
        custom_pool=connections.AddressCappedPool(max_connections, per_address),
        protocol=connections.HeadDeadlineProtocol,
        # Each wait on a client's socket (an upload's next bytes, room to write a reply)
        # ends after this, and a request's whole head is due within it; python-engineio
        # sets its own, longer one (ping interval + ping timeout) on a WebSocket.
        socket_timeout=app.config["HTTP_TIMEOUT_SECONDS"],
        log_output=False,
    )


if __name__ == "__main__":
    main()
