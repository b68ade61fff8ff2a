"""The chat's data readable by its owner only: files 0600, folders 0700, whatever the umask.

Two layers, because neither covers everything alone:

- ``python app.py`` sets the process umask to 077 at start (``PROCESS_UMASK``), so every
  file the process creates later is born private, including the ones it does not create
  itself: SQLite makes the database's ``-wal`` and ``-shm`` files, Pillow the thumbnails.
- ``make_data_private`` (run by ``create_app``) sets the modes explicitly: the chat may run
  under a host whose umask it does not own (the tests, ``flask init-db``, a WSGI server),
  and an installation from before keeps its 0644 files until something fixes them. The
  database file is created 0600 before SQLite opens it: SQLite gives a new ``-wal`` and
  ``-shm`` the database file's own mode, so they stay private even under a loose umask.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from flask import Flask

from database import dialect_of, sqlite_path

FILE_MODE = 0o600
FOLDER_MODE = 0o700
PROCESS_UMASK = 0o077
# Files SQLite keeps beside the database.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")

log = logging.getLogger("chat")


def make_data_private(app: Flask) -> None:
    """Give the instance folder, the database (and its companions), the upload folder and
    the session folder, with every file in them, owner-only modes; create what is missing
    that way. Run before the database is first opened."""
    database = _database_file(app)
    if database is not None:
        database.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        _create_private_file(database)
        make_private(database, *(Path(f"{database}{end}") for end in SQLITE_COMPANIONS))
    # The folder's own mode keeps others out of everything in it (the secret key, sessions,
    # whatever an administrator puts there); its files are not walked.
    make_private(Path(app.instance_path))
    folders = [Path(app.config["UPLOAD_PATH"])]
    if not app.config["REDIS_URL"]:
        folders.append(Path(app.root_path, app.config["SESSION_FILE_DIR"]))
    for folder in folders:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        make_private_tree(folder)


def make_private_tree(folder: Path) -> None:
    """``folder``, the folders under it and every file in them: owner-only."""
    make_private(folder)
    for parent, folders, files in os.walk(folder):
        make_private(*(Path(parent, name) for name in [*folders, *files]))


def make_private(*paths: Path) -> None:
    """Owner-only modes for these files and folders; missing ones and symbolic links are
    left alone (a link's target may be anything of ours)."""
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        wanted = FOLDER_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
        if stat.S_IMODE(info.st_mode) == wanted:
            continue
        try:
            path.chmod(wanted)
        except PermissionError:
            log.warning("Cannot make %s private: it belongs to another user", path)


def _database_file(app: Flask) -> Path | None:
    url = app.config["DATABASE_URL"]
    if dialect_of(url) != "sqlite":
        return None
    return Path(sqlite_path(url, app.root_path))


def _create_private_file(path: Path) -> None:
    with contextlib.suppress(FileExistsError):  # there already, or another worker made it
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
