"""The installable app over HTTP: the manifest, the service worker served from the root
with the shell it caches (static files and the offline page, nothing of anyone's), and the
offline page, the same for everyone."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

import app_shell
from app import CONTENT_SECURITY_POLICY

ROOT = Path(__file__).resolve().parents[1]


def shell_of(response_text: str) -> dict:
    """The settings the server puts before the worker's code."""
    first_line = response_text.split("\n", 1)[0]
    assert first_line.startswith("const SHELL = ") and first_line.endswith(";")
    return json.loads(first_line.removeprefix("const SHELL = ").removesuffix(";"))


def test_the_manifest_makes_the_chat_installable(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.data)
    assert manifest["name"] == "Chat" and manifest["short_name"] == "Chat"
    assert manifest["start_url"] == "/chats"
    assert manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["background_color"])
    sizes = {}
    for icon in manifest["icons"]:
        served = client.get(icon["src"])
        assert served.status_code == 200 and served.mimetype == "image/png"
        picture = Image.open(io.BytesIO(served.data))
        assert picture.format == "PNG"
        assert f"{picture.width}x{picture.height}" == icon["sizes"]
        sizes.setdefault(icon.get("purpose", "any"), set()).add(icon["sizes"])
    assert sizes["any"] == {"192x192", "512x512"}
    assert sizes["maskable"] == {"512x512"}


def test_the_service_worker_is_served_from_the_root_without_being_cached(client):
    """At /sw.js its scope is the whole site, with no Service-Worker-Allowed header; the
    browser checks it for a new version on every page load."""
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Service-Worker-Allowed" not in response.headers
    assert "addEventListener('fetch'" in response.get_data(as_text=True)
    # Its own policy allows it to fetch the site (workers fall back to script-src/default-src).
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "worker-src" not in CONTENT_SECURITY_POLICY or "worker-src 'self'" in (
        CONTENT_SECURITY_POLICY
    )


def test_the_shell_is_static_files_and_the_offline_page_only(client):
    shell = shell_of(client.get("/sw.js").get_data(as_text=True))
    assets = shell["assets"]
    assert shell["offline_url"] == "/offline" and "/offline" in assets
    assert {"/static/style.css", "/static/chat.js", "/static/js/app_shell.js"} <= set(assets)
    assert "/static/vendor/socket.io.min.js" in assets
    assert "/static/icons/icon-192.png" in assets and "/static/sounds/notify.wav" in assets
    assert all(url == "/offline" or url.startswith("/static/") for url in assets)
    assert not [url for url in assets if "?" in url or url.endswith((".map", "/sw.js"))]
    for url in assets:  # every one of them is served to a browser nobody logged in to
        assert client.get(url).status_code == 200, url


def test_the_cache_name_changes_with_any_shell_file(tmp_path):
    """A changed file means a new worker, whose new cache replaces the old one."""
    static = tmp_path / "static"
    shutil.copytree(ROOT / "static", static)
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    before = app_shell.get_shell(static)
    assert app_shell.get_shell(static) == before
    with (static / "style.css").open("a") as css:
        css.write("\n/* changed */\n")
    after = app_shell.get_shell(static)
    assert after["version"] != before["version"]
    assert after["assets"] == before["assets"]
    (tmp_path / "templates" / "offline.html").write_text("changed")
    assert app_shell.get_shell(static)["version"] != after["version"]


def test_the_offline_page_is_the_same_for_everyone_and_names_nobody(app, alice):
    anonymous = app.test_client().get("/offline")
    logged_in = alice.http.get("/offline")
    for response in (anonymous, logged_in):
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache"
    # The worker fetches it without cookies: it starts no session either.
    assert "Set-Cookie" not in anonymous.headers
    assert anonymous.data == logged_in.data
    page = logged_in.get_data(as_text=True)
    assert "You are offline" in page
    assert "alice" not in page and "csrf" not in page and "Log out" not in page


@pytest.mark.parametrize("url", ["/login", "/register", "/chats", "/find", "/offline", "/nowhere"])
def test_every_page_links_the_manifest_and_registers_the_worker(alice, url):
    page = alice.http.get(url).get_data(as_text=True)
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert 'src="/static/js/app_shell.js"' in page
    assert re.search(r'name="theme-color" media="\(prefers-color-scheme: dark\)"', page)
    assert re.search(r'name="theme-color" media="\(prefers-color-scheme: light\)"', page)
