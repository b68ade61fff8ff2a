"""The installable app: the web app manifest, the service worker at the root and the page it
shows offline.

The service worker caches the app shell (the pages' static assets and the offline page),
never a user's data: its list of what to cache is made here, from the files under
``static/``, and its cache is named after a hash of their contents, so any change to them
installs a new worker that replaces the old cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template

bp = Blueprint("app_shell", __name__)

# What the worker caches: the static files the pages load, never source maps or itself.
SHELL_SUFFIXES = (".css", ".js", ".svg", ".png", ".wav")
SERVICE_WORKER_SOURCE = "sw.js"
OFFLINE_URL = "/offline"
APP_NAME = "Chat"
# The header's colours (style.css's --surface) and the page's background (--bg).
LIGHT = {"theme": "#ffffff", "background": "#f3f5f7"}
DARK = {"theme": "#161b22", "background": "#0d1117"}
ICONS = [
    {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
    {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
    {
        "src": "/static/icons/icon-maskable-512.png",
        "sizes": "512x512",
        "type": "image/png",
        "purpose": "maskable",
    },
]


def init_app(app: Flask) -> None:
    """Serve the manifest, the service worker and the offline page from ``app``."""
    static_folder = Path(app.static_folder or "static")
    shell = get_shell(static_folder)
    # Made once: the worker is fetched on every page load, and never changes while we run.
    source = (static_folder / SERVICE_WORKER_SOURCE).read_text()
    app.extensions["app_shell"] = f"const SHELL = {json.dumps(shell)};\n{source}"
    app.register_blueprint(bp)


def get_shell(static_folder: Path) -> dict[str, Any]:
    """The worker's settings: the URLs it caches and the version naming its cache."""
    files = sorted(
        path
        for path in static_folder.rglob("*")
        if path.is_file() and path.suffix in SHELL_SUFFIXES and path.name != SERVICE_WORKER_SOURCE
    )
    digest = hashlib.sha256()
    for path in [*files, static_folder / SERVICE_WORKER_SOURCE]:
        digest.update(path.relative_to(static_folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    # The offline page is cached too; its template changes the version as well.
    templates = Path(static_folder).parent / "templates"
    for name in ("offline.html", "layout.html"):
        digest.update((templates / name).read_bytes())
    urls = [f"/static/{path.relative_to(static_folder).as_posix()}" for path in files]
    return {
        "version": digest.hexdigest()[:16],
        "offline_url": OFFLINE_URL,
        "assets": [OFFLINE_URL, *urls],
    }


def get_manifest() -> dict[str, Any]:
    """The web app manifest: what a phone needs to install the chat to its home screen."""
    return {
        "name": APP_NAME,
        "short_name": APP_NAME,
        "description": "The team chat of this network.",
        "id": "/chats",
        "start_url": "/chats",
        "scope": "/",
        "display": "standalone",
        "theme_color": LIGHT["theme"],
        "background_color": LIGHT["background"],
        "icons": ICONS,
    }


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    """The manifest, under the media type browsers expect of it."""
    response = Response(json.dumps(get_manifest(), indent=1), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/sw.js")
def service_worker() -> Response:
    """The worker, from the root so that its scope is the whole site, with its settings."""
    response = Response(current_app.extensions["app_shell"], mimetype="text/javascript")
    # Checked on every page load: a new version of the assets reaches everyone at once.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get(OFFLINE_URL)
def offline() -> Any:
    """The page the worker shows for a page it cannot fetch: the same for everyone."""
    response = Response(render_template("offline.html", current_user=None))
    response.headers["Cache-Control"] = "no-cache"
    return response
