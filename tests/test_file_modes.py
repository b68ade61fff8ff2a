"""The chat's data is its owner's only: the database and its -wal/-shm, the instance, session
and upload folders, stored files and thumbnails are 0600 files in 0700 folders, under a
loose umask too, for a new installation and for one that was made before."""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from app import create_app
from tests.conftest import make_config, register
from tests.live_server import RealClient, start_server

LOOSE_UMASK = 0o022


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loose(paths: list[Path]) -> dict[str, str]:
    """The paths that are not owner-only, with their modes (empty when all are private)."""
    found = {}
    for path in paths:
        wanted = 0o700 if path.is_dir() else 0o600
        if mode(path) != wanted:
            found[str(path)] = oct(mode(path))
    return found


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (600, 400), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The process creates files 0644 and folders 0755 unless the chat says otherwise."""
    previous = os.umask(LOOSE_UMASK)
    yield
    os.umask(previous)


def test_a_new_installation_is_private_whatever_the_umask(tmp_path, loose_umask):
    folder = tmp_path / "new"
    app = create_app(make_config(folder, DATABASE_URL=f"sqlite:///{folder / 'data' / 'chat.db'}"))
    try:
        http = app.test_client()
        assert register(http, "alice").status_code == 303  # a write: the WAL is in use
        database = folder / "data" / "chat.db"
        paths = [
            database.parent,
            database,
            Path(f"{database}-wal"),
            Path(f"{database}-shm"),
            folder / "uploads",
            folder / "sessions",
            *(folder / "sessions").iterdir(),
        ]
        assert loose([path for path in paths if path.exists()]) == {}
        assert all(path.exists() for path in paths), [p for p in paths if not p.exists()]
    finally:
        app.extensions["database"].close()


def test_an_older_installation_is_made_private_at_start(tmp_path, loose_umask):
    """Files left 0644 in 0755 folders by an earlier version are fixed when the chat starts."""
    folder = tmp_path / "old"
    database = folder / "chat.db"
    uploads = folder / "uploads"
    sessions = folder / "sessions"
    for path in (uploads, sessions):
        path.mkdir(parents=True)
        path.chmod(0o755)
    old_files = [
        database,
        Path(f"{database}-wal"),
        Path(f"{database}-shm"),
        uploads / "0a1b.png",
        uploads / "0a1b.thumb.png",
        uploads / "0c2d.pdf",
        sessions / "2029f1e0c4",
    ]
    for path in old_files:
        path.write_bytes(b"")
        path.chmod(0o644)
    app = create_app(make_config(folder))
    try:
        assert loose([*old_files, uploads, sessions]) == {}
    finally:
        app.extensions["database"].close()


def test_an_upload_and_its_thumbnail_are_private(tmp_path, loose_umask):
    folder = tmp_path / "upload"
    app = create_app(make_config(folder))
    try:
        http = app.test_client()
        register(http, "alice")
        response = http.post(
            "/upload",
            data={"chat_id": "1", "client_id": "p1", "file": (io.BytesIO(png()), "p.png")},
            content_type="multipart/form-data",
            headers={"Accept": "application/json"},
        )
        assert response.status_code == 201, response.get_json()
        stored = sorted((folder / "uploads").iterdir())
        assert len(stored) == 2  # the picture and its thumbnail
        assert loose([folder / "uploads", *stored]) == {}
    finally:
        app.extensions["database"].close()


def test_the_real_server_keeps_its_database_and_uploads_private(tmp_path, loose_umask):
    """``python app.py`` started under a loose umask: the database, the -wal and -shm that
    SQLite creates itself while serving, the uploads and their thumbnails are owner-only."""
    server = start_server(tmp_path / "live")
    try:
        alice = RealClient(server, "alice").register()
        alice.connect()
        assert alice.call("message_sent", {"chat_id": 1, "body": "hi", "client_id": "m1"})["ok"]
        page = alice.http.get(f"{server.url}/chats").text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        response = alice.http.post(
            f"{server.url}/upload",
            data={"chat_id": "1", "client_id": "p1"},
            files={"file": ("p.png", png(), "image/png")},
            headers={"Accept": "application/json", "X-CSRFToken": token},
        )
        assert response.status_code == 201, response.text[:300]
        database = server.database_path
        uploads = server.folder / "uploads"
        paths = [
            database,
            Path(f"{database}-wal"),
            Path(f"{database}-shm"),
            uploads,
            *uploads.iterdir(),
            server.folder / "sessions",
            *(server.folder / "sessions").iterdir(),
        ]
        assert all(path.exists() for path in paths), [p for p in paths if not p.exists()]
        assert len(list(uploads.iterdir())) == 2
        assert loose(paths) == {}
        alice.disconnect()
    finally:
        server.stop()
