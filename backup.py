"""Backups: one archive holding a consistent copy of the database and every upload, put back
into an empty installation by ``flask restore``, and taken on a schedule by ``python app.py``.

An archive is a ``.tar.gz`` with ``database/chat.db`` (SQLite, copied with its online backup
API) or ``database/chat.sql`` (PostgreSQL, ``pg_dump``'s plain format), ``uploads/<name>``
for each stored file and thumbnail, and ``manifest.json`` last: the format and schema
versions, the database kind, the time, and each file's size and SHA-256. It holds every
message, so it is written owner-only (0600), under a temporary name renamed when complete.

It never holds the secret key or the sessions: an archive is the file most likely to be
copied elsewhere, and with the key anyone holding it could sign a session cookie. A
restored chat keeps its own key, so everyone logs in again once; nothing else is lost.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import hashlib
import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

import db_commands
import off_loop
import private_files
from attachments import owner_names
from database import SCHEMA_FILES, Connection, Database, schema_versions

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE_MEMBERS = {"sqlite": "database/chat.db", "postgresql": "database/chat.sql"}
UPLOADS = "uploads/"
# Pages the SQLite copy takes per step: between steps other threads get the interpreter.
SQLITE_PAGES_PER_STEP = 1024
_CHUNK = 1024 * 1024
# Scheduled archives: their names sort in time order.
SCHEDULED_PREFIX = "chat-backup-"
SCHEDULED_SUFFIX = ".tar.gz"
_STAMP = "%Y-%m-%dT%H-%M-%S.%fZ"
LOCK_FILE = ".backup.lock"
# Any constant (beside database.SCHEMA_LOCK_KEY): one PostgreSQL session at a time backs up.
BACKUP_LOCK_KEY = 7_201_002
# The schedule looks at the folder this often at most (a tenth of the interval when shorter).
CHECK_INTERVAL_S = 60.0
# A scheduled backup that takes longer than this is stopped (and retried at the next check).
SCHEDULED_TIMEOUT_S = 6 * 3600

log = logging.getLogger("chat")


class BackupError(click.ClickException):
    """A backup or restore that cannot go on; the message says why and nothing was changed."""


# -- taking a backup ----------------------------------------------------------------------


def do_backup(database: Database, upload_folder: Path, target: Path) -> dict[str, Any]:
    """Write an archive of the database and the uploads to ``target``; return its manifest.

    The database is copied first; the uploads after it, so every file a copied row names is
    there (an upload's files are written before its row and never removed after).
    """
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=target.parent) as work:
        copy = Path(work, Path(DATABASE_MEMBERS[database.dialect]).name)
        manifest: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "database": database.dialect,
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        if database.dialect == "sqlite":
            copy_sqlite(database.path, copy)
            snapshot = Database(f"sqlite:///{copy}", "/", pool_size=1)
            names = _read(snapshot, db_commands.list_stored_names)
            manifest["schema_version"] = _read(snapshot, db_commands.get_schema_version)
            snapshot.close()
        else:
            manifest["schema_version"] = _read(database, db_commands.get_schema_version)
            manifest["schema"] = dump_postgresql(database, copy)
            # Read after the dump: every name of its snapshot, and perhaps a few newer ones.
            names = _read(database, db_commands.list_stored_names)
        files = [(DATABASE_MEMBERS[database.dialect], copy)]
        files += [
            (UPLOADS + name, upload_folder / name) for name in _kept_files(upload_folder, names)
        ]
        _write_archive(target, files, manifest)
    return manifest


def copy_sqlite(source: str, copy: Path) -> None:
    """Copy a live SQLite database with its online backup API, in steps, from one moment.

    A read transaction is held on the source for the whole copy: in WAL mode it keeps the
    copy at that moment while writers go on (they are never waited for), and the steps
    never restart because of their writes.
    """
    reader = Database(f"sqlite:///{source}", "/", pool_size=1)
    conn = reader.connect()
    target = sqlite3.connect(copy)
    try:
        db_commands.do_begin_snapshot(conn)
        conn.raw.backup(target, pages=SQLITE_PAGES_PER_STEP)
        db_commands.do_end_snapshot(conn)
    finally:
        target.close()
        conn.raw.close()
        reader.close()


def dump_postgresql(database: Database, copy: Path) -> str:
    """``pg_dump`` the chat's schema into ``copy`` (plain SQL, one consistent snapshot, no
    owners or grants, so it loads under any role); return the schema's name."""
    schema = _read(database, db_commands.get_current_schema)
    _run(
        [
            "pg_dump",
            "--format=plain",
            "--no-owner",
            "--no-privileges",
            f"--schema={schema}",
            f"--file={copy}",
        ],
        "pg_dump",
        database.url,
    )
    return schema


def _kept_files(upload_folder: Path, stored_names: list[str]) -> list[str]:
    """The files of the upload folder that a stored name owns (the file, its thumbnail)."""
    if not upload_folder.is_dir():
        return []
    wanted = set(stored_names)
    return sorted(
        entry.name
        for entry in os.scandir(upload_folder)
        if entry.is_file(follow_symlinks=False) and owner_names(entry.name) & wanted
    )


def _write_archive(target: Path, files: list[tuple[str, Path]], manifest: dict[str, Any]) -> None:
    """The archive at ``target``, or nothing there: written to a private temporary file
    beside it, flushed to disk, then renamed over it."""
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, private_files.FILE_MODE)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            manifest["files"] = [_add_file(archive, name, path) for name, path in files]
            text = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(text), private_files.FILE_MODE, time.time()
            archive.addfile(info, io.BytesIO(text))
            archive.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)


def _add_file(archive: tarfile.TarFile, name: str, path: Path) -> dict[str, Any]:
    """Add one file under ``name``; its size and SHA-256 as read into the archive."""
    with path.open("rb") as source:
        size = os.fstat(source.fileno()).st_size
        hashing = _Hashing(source)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, private_files.FILE_MODE, time.time()
        archive.addfile(info, hashing)
    if hashing.count != size:
        raise BackupError(f"{path} changed size while it was being copied")
    return {"name": name, "size": size, "sha256": hashing.digest.hexdigest()}


class _Hashing(io.RawIOBase):
    """A file read through, hashing what is read."""

    def __init__(self, source: IO[bytes]):
        self.source = source
        self.digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


# -- restoring ----------------------------------------------------------------------------


def do_restore(
    database: Database, upload_folder: Path, archive: Path, force: bool = False
) -> dict[str, Any]:
    """Put an archive back: the database and the upload folder become the archive's.

    Refuses an installation that has users, messages or uploads unless ``force``. The
    archive is unpacked and checked against its manifest beside the upload folder first;
    the database is restored into a copy (SQLite) or a schema of its own (PostgreSQL) and
    upgraded there; only then are the uploads and the database swapped in. A failure before
    the swap leaves the installation as it was. Stop the chat before restoring.
    """
    if not force:
        check_empty(database, upload_folder)
    upload_folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=upload_folder.parent) as work:
        staging = Path(work)
        manifest = unpack_archive(archive, staging)
        check_restorable(manifest, database.dialect)
        member = staging / DATABASE_MEMBERS[database.dialect]
        if database.dialect == "sqlite":
            _upgrade(f"sqlite:///{member}")
            swap_database = functools.partial(_swap_sqlite, member, database)
        else:
            schema = load_postgresql(database, member, manifest["schema"])
            swap_database = functools.partial(_swap_postgresql, database, schema)
        try:
            _swap_uploads(staging, upload_folder, swap_database)
        except BaseException:
            if database.dialect == "postgresql":
                _drop_schema(database, schema)
            raise
    return manifest


def check_empty(database: Database, upload_folder: Path) -> None:
    """Raise BackupError when the installation holds anything a restore would replace."""
    conn = database.connect()
    try:
        used = db_commands.count_people_and_messages(conn)
    finally:
        database.release(conn)
    files = upload_folder.is_dir() and any(
        not name.startswith(".") for name in os.listdir(upload_folder)
    )
    if used or files:
        held = "users or messages" if used else "uploaded files"
        raise BackupError(
            f"This installation is not empty (it has {held}). Restore into an empty one, "
            "or add --force to replace everything it holds with the archive."
        )


def unpack_archive(archive: Path, staging: Path) -> dict[str, Any]:
    """Unpack an archive into ``staging`` and check every file against the manifest
    (names, sizes, SHA-256); return the manifest, or raise BackupError."""
    found: dict[str, dict[str, Any]] = {}
    manifest: dict[str, Any] | None = None
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for info in tar:
                if not info.isfile() or not _acceptable_name(info.name):
                    raise BackupError(f"The archive holds an unexpected entry: {info.name!r}")
                if info.name in found or (info.name == MANIFEST and manifest is not None):
                    raise BackupError(f"The archive holds {info.name!r} twice")
                source = tar.extractfile(info)
                if info.name == MANIFEST:
                    manifest = json.loads(source.read())
                    continue
                found[info.name] = _unpack_file(source, staging / info.name)
    except (OSError, EOFError, tarfile.TarError, ValueError) as error:
        raise BackupError(f"{archive} is not a readable backup archive ({error})") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise BackupError(f"{archive} has no manifest: it is not a backup of this chat")
    try:
        listed = {entry["name"]: (entry["size"], entry["sha256"]) for entry in manifest["files"]}
    except (KeyError, TypeError) as error:
        raise BackupError(f"{archive} has a damaged manifest ({error!r})") from error
    if set(listed) != set(found):
        missing, extra = sorted(set(listed) - set(found)), sorted(set(found) - set(listed))
        raise BackupError(
            f"The archive's files do not match its manifest (missing: {missing}, extra: {extra})"
        )
    for name, expected in listed.items():
        if expected != (found[name]["size"], found[name]["sha256"]):
            raise BackupError(
                f"Checksum mismatch for {name}: the archive is damaged; nothing was restored."
            )
    return manifest


def _acceptable_name(name: str) -> bool:
    """The manifest, the database, or a plain file name under ``uploads/``."""
    if name == MANIFEST or name in DATABASE_MEMBERS.values():
        return True
    rest = name.removeprefix(UPLOADS)
    return rest != name and re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", rest) is not None


def _unpack_file(source: IO[bytes], path: Path) -> dict[str, Any]:
    """Write one file owner-only; its size and SHA-256."""
    path.parent.mkdir(mode=private_files.FOLDER_MODE, parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, private_files.FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def check_restorable(manifest: dict[str, Any], dialect: str) -> None:
    """Raise BackupError unless this chat can restore an archive with this manifest."""
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"Unknown archive format {manifest.get('format')!r}")
    if manifest.get("database") != dialect:
        raise BackupError(
            f"The archive holds a {manifest.get('database')} database; this installation "
            f"uses {dialect}. Restore it into an installation of the same kind."
        )
    if dialect == "postgresql" and not isinstance(manifest.get("schema"), str):
        raise BackupError("The archive's manifest does not name the schema it was dumped from")
    newest = schema_versions(SCHEMA_FILES[dialect].read_text())[-1][0]
    if not isinstance(manifest.get("schema_version"), int) or manifest["schema_version"] > newest:
        raise BackupError(
            f"The archive is of schema version {manifest.get('schema_version')}, newer than "
            f"this chat's {newest}: restore it with the version of the chat that made it."
        )


def _swap_sqlite(restored: Path, database: Database) -> None:
    """Copy the restored database over the installation's in one step of the backup API:
    SQLite writes it as one transaction, so it is whole or not at all."""
    database.close()
    source = sqlite3.connect(restored)
    target = sqlite3.connect(database.path, timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def load_postgresql(database: Database, dump: Path, dumped_schema: str) -> str:
    """Load a dump into a new schema of the installation's database, upgrade it there, and
    return that schema's name (dropped again if anything fails)."""
    schema = f"restore_{uuid.uuid4().hex[:12]}"
    conn = database.connect()
    try:
        db_commands.do_create_schema(conn, schema)
    finally:
        database.release(conn)
    try:
        script = dump.with_suffix(".restore.sql")
        with dump.open() as source, script.open("w") as out:
            dumped = _read(database, lambda conn: db_commands.get_quoted_name(conn, dumped_schema))
            out.writelines(into_schema(source, dumped, schema))
        command = ["psql", "--no-psqlrc", "--quiet", "--single-transaction"]
        command += ["--set=ON_ERROR_STOP=1", f"--file={script}"]
        _run(command, "psql", database.url)
        _upgrade(with_search_path(database.url, schema))
    except BaseException:
        _drop_schema(database, schema)
        raise
    return schema


def into_schema(lines: Iterator[str], dumped: str, schema: str) -> Iterator[str]:
    """pg_dump's plain SQL with every name of the schema ``dumped`` (as pg_dump writes it)
    moved to ``schema``; COPY data lines pass unchanged, and the schema itself is not
    created (``schema`` already exists)."""
    qualified = re.compile(r"(?<![\w$\"])" + re.escape(dumped) + r"\.")
    in_data = False
    for line in lines:
        if in_data:
            in_data = line.rstrip("\n") != "\\."
            yield line
        elif line.startswith(("CREATE SCHEMA ", "COMMENT ON SCHEMA ", "ALTER SCHEMA ")):
            continue
        else:
            in_data = line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;")
            yield qualified.sub(lambda _match: schema + ".", line)


def _upgrade(database_url: str) -> None:
    """Bring a restored database up to this chat's schema (``Database.init_schema``)."""
    restored = Database(database_url, "/", pool_size=1)
    try:
        restored.init_schema()
    finally:
        restored.close()


def with_search_path(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections put their tables in ``schema``."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "options"]
    options = dict(parse_qsl(parts.query)).get("options", "")
    query.append(("options", f"{options} -csearch_path={schema}".strip()))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _swap_postgresql(database: Database, schema: str) -> None:
    """Move the restored schema's tables into the installation's, in one transaction."""
    database.close()
    conn = database.connect()
    try:
        target = db_commands.get_current_schema(conn)
        db_commands.do_move_schema_contents(conn, schema, target)
    finally:
        database.release(conn)


def _drop_schema(database: Database, schema: str) -> None:
    conn = database.connect()
    try:
        db_commands.do_drop_schema(conn, schema)
    finally:
        database.release(conn)


def _swap_uploads(staging: Path, upload_folder: Path, swap_database: Callable[[], None]) -> None:
    """Put the unpacked uploads in place, then swap the database; if that fails, the
    installation's own uploads go back where they were."""
    restored = staging / UPLOADS
    restored.mkdir(mode=private_files.FOLDER_MODE, exist_ok=True)
    before = staging / "uploads-before"
    if upload_folder.exists():
        upload_folder.rename(before)
    restored.rename(upload_folder)
    try:
        swap_database()
    except BaseException:
        upload_folder.rename(restored)
        if before.exists():
            before.rename(upload_folder)
        raise
    private_files.make_private_tree(upload_folder)


# -- scheduled backups --------------------------------------------------------------------


def scheduled_name(moment: datetime.datetime) -> str:
    """The file name of a scheduled archive taken at ``moment`` (UTC): sorts in time order."""
    return f"{SCHEDULED_PREFIX}{moment.strftime(_STAMP)}{SCHEDULED_SUFFIX}"


def list_scheduled(folder: Path) -> list[Path]:
    """The scheduled archives in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.name.startswith(SCHEDULED_PREFIX) and path.name.endswith(SCHEDULED_SUFFIX)
    )


def is_due(folder: Path, every_seconds: float, now: datetime.datetime) -> bool:
    """Whether the newest scheduled archive in ``folder`` is ``every_seconds`` old (or
    there is none)."""
    archives = list_scheduled(folder)
    if not archives:
        return True
    stamp = archives[-1].name.removeprefix(SCHEDULED_PREFIX).removesuffix(SCHEDULED_SUFFIX)
    try:
        taken = datetime.datetime.strptime(stamp, _STAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        return True
    return (now - taken).total_seconds() >= every_seconds


def do_scheduled_backup(
    database: Database,
    upload_folder: Path,
    folder: Path,
    every_seconds: float,
    keep: int,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> Path | None:
    """Take a backup into ``folder`` when one is due and keep the newest ``keep``; return
    the new archive, or None when another process holds the folder's lock or none was due.

    The locks (a file lock on ``folder/.backup.lock``; on PostgreSQL also an advisory lock,
    for workers on several machines sharing the folder) and the due check under them make
    one worker of several take each backup, whichever comes first.
    """
    folder.mkdir(mode=private_files.FOLDER_MODE, parents=True, exist_ok=True)
    with _folder_lock(folder) as held, _database_lock(database) as also_held:
        if not (held and also_held) or not is_due(folder, every_seconds, now()):
            return None
        archive = folder / scheduled_name(now())
        do_backup(database, upload_folder, archive)
        for old in list_scheduled(folder)[: -max(keep, 1)]:
            old.unlink(missing_ok=True)
        return archive


@contextlib.contextmanager
def _database_lock(database: Database) -> Iterator[bool]:
    """PostgreSQL: hold the backup's advisory lock if no other session does; yield whether
    it is held. SQLite: nothing to hold (its workers share one machine and the file lock)."""
    if database.dialect != "postgresql":
        yield True
        return
    conn = database.connect()
    try:
        held = db_commands.do_try_advisory_lock(conn, BACKUP_LOCK_KEY)
        try:
            yield held
        finally:
            if held:
                db_commands.do_advisory_unlock(conn, BACKUP_LOCK_KEY)
    finally:
        database.release(conn)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[bool]:
    """Hold ``folder``'s backup lock if no other process does; yield whether it is held."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, private_files.FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the file lets the lock go


def start_schedule(app: Flask, sleep: Callable[[float], None], spawn: Callable[..., Any]) -> None:
    """With ``BACKUP_DIR`` set, check on a background task whether a backup is due."""
    if app.config["BACKUP_DIR"]:
        spawn(keep_backing_up, app, sleep)


def keep_backing_up(app: Flask, sleep: Callable[[float], None]) -> None:
    """Forever: when a backup is due, take it in a process of its own (``flask backup
    --scheduled``), so its reading, hashing and compressing never hold the event loop."""
    folder = backup_folder(app)
    every = app.config["BACKUP_EVERY_HOURS"] * 3600
    interval = min(CHECK_INTERVAL_S, every / 10)
    log.info(
        "Backups every %g hours into %s, the last %d kept",
        every / 3600,
        folder,
        app.config["BACKUP_KEEP"],
    )
    while True:
        sleep(interval)
        try:
            now = datetime.datetime.now(datetime.UTC)
            if off_loop.run(is_due, folder, every, now):
                _take_scheduled(app)
        except Exception:  # the schedule keeps going; the next check tries again
            log.exception("Scheduled backup failed")


def _take_scheduled(app: Flask) -> None:
    """Run ``flask backup --scheduled`` with this process's settings and wait for it
    (under eventlet the wait yields to the loop)."""
    command = [sys.executable, "-m", "flask", "--app", "app", "backup", "--scheduled"]
    done = subprocess.run(
        command,
        cwd=app.root_path,
        env={**os.environ},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=SCHEDULED_TIMEOUT_S,
    )
    output = (done.stdout + done.stderr).decode(errors="replace").strip()
    if done.returncode != 0:
        log.error("Scheduled backup failed (exit %d): %s", done.returncode, output)
    elif output:
        log.info("%s", output)


def backup_folder(app: Flask) -> Path:
    """Where scheduled archives go (``BACKUP_DIR``, relative to the project folder)."""
    return Path(app.root_path, app.config["BACKUP_DIR"])


# -- commands -------------------------------------------------------------------------------


@click.command("backup")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--scheduled",
    is_flag=True,
    help="Into BACKUP_DIR under a dated name, if one is due; keep the last BACKUP_KEEP.",
)
@with_appcontext
def backup_command(file: Path | None, scheduled: bool) -> None:
    """Write a backup archive of the database and the uploads, while the chat runs."""
    app = current_app
    database: Database = app.extensions["database"]
    uploads = Path(app.config["UPLOAD_PATH"])
    if scheduled:
        if not app.config["BACKUP_DIR"]:
            raise BackupError("BACKUP_DIR is not set")
        archive = do_scheduled_backup(
            database,
            uploads,
            backup_folder(app),
            app.config["BACKUP_EVERY_HOURS"] * 3600,
            app.config["BACKUP_KEEP"],
        )
        click.echo(f"Backup written to {archive}" if archive else "No backup due")
        return
    if file is None:
        raise click.UsageError("Name the archive to write, e.g. flask backup chat.tar.gz")
    manifest = do_backup(database, uploads, file)
    click.echo(
        f"Backup written to {file}: {manifest['database']} database at schema version "
        f"{manifest['schema_version']}, {len(manifest['files']) - 1} uploaded files."
    )


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the users, messages and uploads already here.")
@with_appcontext
def restore_command(file: Path, force: bool) -> None:
    """Put a backup archive back into this installation (stop the chat first)."""
    app = current_app
    manifest = do_restore(
        app.extensions["database"], Path(app.config["UPLOAD_PATH"]), file, force=force
    )
    click.echo(
        f"Restored {file} (taken {manifest['created_at']}, schema version "
        f"{manifest['schema_version']}, {len(manifest['files']) - 1} uploaded files)."
    )


def init_app(app: Flask) -> None:
    """Register ``flask backup`` and ``flask restore``."""
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


def _read(database: Database, query: Callable[[Connection], Any]) -> Any:
    """One query on a connection of ``database``, given back after."""
    conn = database.connect()
    try:
        return query(conn)
    finally:
        database.release(conn)


def _run(command: list[str], name: str, database_url: str) -> None:
    """Run a PostgreSQL client program on ``database_url``; BackupError with its output
    when it fails. A password travels in the environment, never in the command line, where
    every user of the machine could read it."""
    parts = urlsplit(database_url)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        host = parts.netloc.rsplit("@", 1)[1]
        user = quote(unquote(parts.username or ""), safe="")
        database_url = urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))
    try:
        done = subprocess.run(
            [*command, f"--dbname={database_url}"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except FileNotFoundError as error:
        raise BackupError(
            f"{name} is not installed (Debian: apt-get install postgresql-client)"
        ) from error
    if done.returncode != 0:
        raise BackupError(f"{name} failed: {(done.stderr or done.stdout).strip()}")


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` survive a crash of the machine."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
